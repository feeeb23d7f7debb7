import { MeshidError } from "@meshid/errors";
import { PROC_UNPARSABLE_CODE } from "./proc-stat";

/** The credentials of `/proc/<pid>/status`. */
export interface ProcStatus {
  /** Uid: real, effective, saved set, filesystem. */
  readonly uids: {
    readonly real: number;
    readonly effective: number;
    readonly saved: number;
    readonly filesystem: number;
  };
  /** Gid: real, effective, saved set, filesystem. */
  readonly gids: {
    readonly real: number;
    readonly effective: number;
    readonly saved: number;
    readonly filesystem: number;
  };
  /** Supplementary group ids (the `Groups:` line), in the kernel's order. */
  readonly groups: readonly number[];
}

function ids(line: string | undefined, name: string): number[] {
  if (line === undefined) {
    throw new MeshidError(
      "internal",
      PROC_UNPARSABLE_CODE,
      `unparsable /proc/<pid>/status: no ${name}`,
    );
  }
  const parts = line.trim() === "" ? [] : line.trim().split(/\s+/);
  if (!parts.every((p) => /^[0-9]+$/.test(p))) {
    throw new MeshidError(
      "internal",
      PROC_UNPARSABLE_CODE,
      `unparsable /proc/<pid>/status: bad ${name} line`,
    );
  }
  return parts.map(Number);
}

/**
 * Parses the text of `/proc/<pid>/status` for `Uid:`, `Gid:` (real, effective, saved,
 * filesystem) and `Groups:` (supplementary gids; may be empty).
 *
 * @throws MeshidError `internal` / `agent.attestation.proc_unparsable` when a line is missing or
 *   malformed.
 */
export function parseProcStatus(text: string): ProcStatus {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  const four = (name: string) => {
    const v = ids(fields.get(name), name);
    if (v.length !== 4) {
      throw new MeshidError(
        "internal",
        PROC_UNPARSABLE_CODE,
        `unparsable /proc/<pid>/status: ${name} needs 4 ids`,
      );
    }
    return { real: v[0]!, effective: v[1]!, saved: v[2]!, filesystem: v[3]! };
  };
  return { uids: four("Uid"), gids: four("Gid"), groups: ids(fields.get("Groups"), "Groups") };
}
