import { MeshidError } from "@meshid/errors";

/** The fields of `/proc/<pid>/stat` the agent uses. */
export interface ProcStat {
  readonly pid: number;
  /** Executable name as the kernel keeps it (up to 15 bytes; may contain spaces and parentheses). */
  readonly comm: string;
  /** One-letter state: R, S, D, Z (zombie), X (dead), T, t, I, … */
  readonly state: string;
  /** Start time after boot in clock ticks (field 22); with the pid, identifies the process. */
  readonly startTimeTicks: number;
}

/** Error code of {@link parseProcStat} and the other `/proc` parsers. */
export const PROC_UNPARSABLE_CODE = "agent.attestation.proc_unparsable";

/**
 * Parses the text of `/proc/<pid>/stat`. The comm field (2) is parenthesised but may itself
 * contain spaces and parentheses, so the fields after it are read from the LAST `)`.
 *
 * @throws MeshidError `internal` / `agent.attestation.proc_unparsable` when the text is not a
 *   stat line.
 */
export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  const bad = (why: string): MeshidError =>
    new MeshidError("internal", PROC_UNPARSABLE_CODE, `unparsable /proc/<pid>/stat: ${why}`);
  if (open < 0 || close < open) throw bad("no (comm)");
  const pidText = text.slice(0, open).trim();
  if (!/^[1-9][0-9]*$/.test(pidText)) throw bad("no pid");
  // Fields 3.. follow the comm; field 22 (starttime) is index 19 of them.
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const state = rest[0];
  const start = rest[19];
  if (state === undefined || !/^[A-Za-z]$/.test(state)) throw bad("no state");
  if (start === undefined || !/^[0-9]+$/.test(start)) throw bad("no start time");
  return {
    pid: Number(pidText),
    comm: text.slice(open + 1, close),
    state,
    startTimeTicks: Number(start),
  };
}

/** Reports whether a process in `state` has ended (zombie or dead) and only awaits reaping. */
export function isProcStateGone(state: string): boolean {
  return state === "Z" || state === "X" || state === "x";
}

const SPACE = 0x20;
const NEWLINE = 0x0a;
const CLOSE_PAREN = 0x29;

function isSeparator(byte: number | undefined): boolean {
  return byte === SPACE || byte === NEWLINE;
}

/**
 * The state and start time of a `/proc/<pid>/stat` line read into `bytes[0, length)`, without
 * building strings (the per-call PID check reads it on every Workload API call), or undefined
 * when the bytes are not a well-formed line (then {@link parseProcStat} gives the precise error).
 */
export function procStatStartTime(
  bytes: Uint8Array,
  length: number,
): { readonly state: string; readonly startTimeTicks: number } | undefined {
  let close = -1;
  for (let i = length - 1; i >= 0; i--) {
    if (bytes[i] === CLOSE_PAREN) {
      close = i;
      break;
    }
  }
  if (close < 0) return undefined;
  let state = "";
  let field = -1;
  let i = close + 1;
  while (i < length) {
    while (i < length && isSeparator(bytes[i])) i++;
    if (i >= length) break;
    field++;
    const start = i;
    while (i < length && !isSeparator(bytes[i])) i++;
    if (field === 0) {
      const c = bytes[start]!;
      const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
      if (i - start !== 1 || !letter) return undefined;
      state = String.fromCharCode(c);
    } else if (field === 19) {
      let ticks = 0;
      for (let j = start; j < i; j++) {
        const d = bytes[j]! - 0x30;
        if (d < 0 || d > 9) return undefined;
        ticks = ticks * 10 + d;
      }
      return { state, startTimeTicks: ticks };
    }
  }
  return undefined;
}
