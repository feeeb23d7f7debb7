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
