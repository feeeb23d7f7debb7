import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { normalizeSelectors, type Selector } from "@meshid/spiffe";
import type { Logger } from "@meshid/telemetry";
import type { AttestedProcess, ProcessHandle, WorkloadAttestation } from "../api/deps";
import { isProcStateGone, parseProcStat, procStatStartTime } from "../domain/proc-stat";
import type { WorkloadProcess } from "../domain/types";
import type { WorkloadAttestor } from "../ports";
import { PROCESS_GONE_CODE, procReadError } from "./unix-attestor";

/** Error code when the PID names another process than the one attested. */
export const PID_REUSED_CODE = "agent.attestation.pid_reused";

/** Parameters of {@link createWorkloadAttestation}. */
export interface CreateWorkloadAttestationParams {
  /** Every enabled attestor; all run for each caller and their selectors are merged. */
  readonly attestors: readonly WorkloadAttestor[];
  /** Where `/proc` is mounted. Default `/proc`. */
  readonly procRoot?: string;
  readonly logger: Logger;
}

const DURING_ATTESTATION = "during attestation";

function replaced(pid: number, when: string): MeshidError {
  return new MeshidError(
    "permission_denied",
    PID_REUSED_CODE,
    `process ${pid} was replaced by another process ${when}`,
    { details: { pid } },
  );
}

function gone(pid: number): MeshidError {
  return new MeshidError("permission_denied", PROCESS_GONE_CODE, `process ${pid} is gone`, {
    details: { pid },
  });
}

/**
 * Creates the {@link WorkloadAttestation} of the Workload API: reads the caller's start time
 * from `<procRoot>/<pid>/stat`, runs every attestor (concurrently), reads the start time again,
 * and returns the merged selectors normalised (deduplicated, sorted). A different start time means the PID now names another process.
 * `attestProcess` also returns the start time, and `checkProcess` compares a PID's start time
 * with an attested one (one read of `<procRoot>/<pid>/stat`), for per-connection caching.
 *
 * `attest` throws MeshidError `permission_denied` / `agent.attestation.process_gone` (the
 * process exited: no stat file, or a zombie) or `agent.attestation.pid_reused`; when an
 * attestor fails and the process is gone or replaced, that is reported instead of the
 * attestor's error; otherwise the attestor's error. The `/proc/<pid>/stat` reads are
 * synchronous (procfs; microseconds).
 */
export function createWorkloadAttestation(
  params: CreateWorkloadAttestationParams,
): WorkloadAttestation {
  const procRoot = params.procRoot ?? "/proc";
  const logger = params.logger;

  // procfs is in memory: a synchronous read costs microseconds, the thread pool far more.
  // One buffer for every read (synchronous: no two reads overlap); a stat line is ~300 bytes.
  const statBytes = Buffer.alloc(4096);
  /** State and start time from an open stat file descriptor, or the text parser's verdict. */
  const readStat = (
    fd: number,
    file: string,
  ): { readonly state: string; readonly startTimeTicks: number } => {
    const length = readSync(fd, statBytes, 0, statBytes.length, 0);
    const stat = length < statBytes.length ? procStatStartTime(statBytes, length) : undefined;
    // A line the byte parser refuses: the text parser says why (or copes with a long one).
    return stat ?? parseProcStat(readFileSync(file, "utf8"));
  };

  const startTime = (pid: number): number => {
    const file = join(procRoot, String(pid), "stat");
    let stat: { readonly state: string; readonly startTimeTicks: number };
    try {
      const fd = openSync(file, "r");
      try {
        stat = readStat(fd, file);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw procReadError(err, pid, "stat");
    }
    if (isProcStateGone(stat.state)) throw gone(pid);
    return stat.startTimeTicks;
  };

  const openProcess = (pid: number, startTimeTicks: number): ProcessHandle | undefined => {
    const file = join(procRoot, String(pid), "stat");
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EMFILE" || code === "ENFILE") return undefined;
      throw procReadError(err, pid, "stat");
    }
    let open = true;
    /** The process's start time read through the descriptor (throws once it is gone). */
    const read = (): number => {
      if (!open) throw gone(pid);
      let stat;
      try {
        stat = readStat(fd, file);
      } catch (err) {
        throw procReadError(err, pid, "stat");
      }
      if (isProcStateGone(stat.state)) throw gone(pid);
      return stat.startTimeTicks;
    };
    const handle: ProcessHandle = {
      check() {
        if (read() !== startTimeTicks) throw replaced(pid, "since it was attested");
      },
      close() {
        if (!open) return;
        open = false;
        closeSync(fd);
      },
    };
    try {
      // The descriptor names the process that has the PID now: it must be the attested one.
      if (read() !== startTimeTicks) throw replaced(pid, "since it was attested");
      return handle;
    } catch (err) {
      handle.close();
      throw err;
    }
  };

  const checkSame = (pid: number, before: number, what: string): void => {
    if (startTime(pid) !== before) throw replaced(pid, what);
  };

  const attestProcess = async (
    process: WorkloadProcess,
    signal?: AbortSignal,
  ): Promise<AttestedProcess> => {
    signal?.throwIfAborted();
    if (!Number.isSafeInteger(process.pid) || process.pid <= 0) {
      throw new MeshidError(
        "permission_denied",
        "agent.attestation.no_pid",
        "caller has no process id",
      );
    }
    const before = startTime(process.pid);
    let results: Selector[][];
    try {
      results =
        params.attestors.length === 1
          ? [await params.attestors[0]!.attest(process, signal)]
          : await Promise.all(params.attestors.map((a) => a.attest(process, signal)));
    } catch (err) {
      signal?.throwIfAborted();
      // A vanished or replaced process explains the failure better than the attestor does.
      checkSame(process.pid, before, DURING_ATTESTATION);
      throw err;
    }
    checkSame(process.pid, before, DURING_ATTESTATION);
    const selectors = normalizeSelectors(results.length === 1 ? results[0]! : results.flat());
    logger.debug(
      { pid: process.pid, uid: process.uid, selectorCount: selectors.length },
      "workload attested",
    );
    return { selectors, startTimeTicks: before };
  };

  return {
    async attest(process, signal) {
      return (await attestProcess(process, signal)).selectors;
    },
    attestProcess,
    checkProcess(pid, startTimeTicks) {
      checkSame(pid, startTimeTicks, "since it was attested");
    },
    openProcess,
  };
}
