import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { normalizeSelectors, type Selector } from "@meshid/spiffe";
import type { Logger } from "@meshid/telemetry";
import type { WorkloadAttestation } from "../api/deps";
import { isProcStateGone, parseProcStat } from "../domain/proc-stat";
import type { WorkloadProcess } from "../domain/types";
import type { WorkloadAttestor } from "../ports";
import { PROCESS_GONE_CODE, procReadError } from "./unix-attestor";

/** Error code when the PID named another process after attestation than before. */
export const PID_REUSED_CODE = "agent.attestation.pid_reused";

/** Parameters of {@link createWorkloadAttestation}. */
export interface CreateWorkloadAttestationParams {
  /** Every enabled attestor; all run for each caller and their selectors are merged. */
  readonly attestors: readonly WorkloadAttestor[];
  /** Where `/proc` is mounted. Default `/proc`. */
  readonly procRoot?: string;
  readonly logger: Logger;
}

function gone(pid: number): MeshidError {
  return new MeshidError("permission_denied", PROCESS_GONE_CODE, `process ${pid} is gone`, {
    details: { pid },
  });
}

/**
 * Creates the {@link WorkloadAttestation} of the Workload API: reads the caller's start time
 * from `<procRoot>/<pid>/stat`, runs every attestor (concurrently), reads the start time again,
 * and returns the merged selectors normalised (deduplicated, sorted). A different start time
 * means the PID now names another process.
 *
 * `attest` throws MeshidError `permission_denied` / `agent.attestation.process_gone` (the
 * process exited: no stat file, or a zombie) or `agent.attestation.pid_reused`; when an
 * attestor fails and the process is gone or replaced, that is reported instead of the
 * attestor's error; otherwise the attestor's error.
 */
export function createWorkloadAttestation(
  params: CreateWorkloadAttestationParams,
): WorkloadAttestation {
  const procRoot = params.procRoot ?? "/proc";
  const logger = params.logger;

  const startTime = async (pid: number): Promise<number> => {
    let text: string;
    try {
      text = await readFile(join(procRoot, String(pid), "stat"), "utf8");
    } catch (err) {
      throw procReadError(err, pid, "stat");
    }
    const stat = parseProcStat(text);
    if (isProcStateGone(stat.state)) throw gone(pid);
    return stat.startTimeTicks;
  };

  const checkSame = async (pid: number, before: number): Promise<void> => {
    const after = await startTime(pid);
    if (after !== before) {
      throw new MeshidError(
        "permission_denied",
        PID_REUSED_CODE,
        `process ${pid} was replaced by another process during attestation`,
        { details: { pid } },
      );
    }
  };

  return {
    async attest(process: WorkloadProcess, signal?: AbortSignal): Promise<Selector[]> {
      signal?.throwIfAborted();
      if (!Number.isSafeInteger(process.pid) || process.pid <= 0) {
        throw new MeshidError(
          "permission_denied",
          "agent.attestation.no_pid",
          "caller has no process id",
        );
      }
      const before = await startTime(process.pid);
      let results: Selector[][];
      try {
        results = await Promise.all(params.attestors.map((a) => a.attest(process, signal)));
      } catch (err) {
        signal?.throwIfAborted();
        // A vanished or replaced process explains the failure better than the attestor does.
        await checkSame(process.pid, before);
        throw err;
      }
      await checkSame(process.pid, before);
      const selectors = normalizeSelectors(results.flat());
      logger.debug(
        { pid: process.pid, uid: process.uid, selectorCount: selectors.length },
        "workload attested",
      );
      return selectors;
    },
  };
}
