// Attestation per Workload API connection: the peer credentials belong to the connection, so
// its process is attested once (when it connects) and every call on it reuses the selectors.
import { MeshidError } from "@meshid/errors";
import type { Selector } from "@meshid/spiffe";
import type { AttestedProcess, ProcessHandle, WorkloadAttestation } from "../api/deps";
import type { WorkloadProcess } from "../domain/types";
import { PID_REUSED_CODE } from "./workload-attestation";

/**
 * Default of {@link CreateConnectionAttestationParams.maxAgeMs}: how long a connection's
 * selectors are reused before the process is attested again (an exec may change its path or
 * hash; an open stream keeps the selectors it started with for its whole life anyway).
 */
export const DEFAULT_CONNECTION_ATTESTATION_MAX_AGE_MS = 5_000;

/** The attestation of one Workload API connection's process. */
export interface ConnectionAttestation {
  /** Starts attesting now (at accept time) so the first call finds it done or under way. */
  prime(): void;
  /**
   * The selectors of the connection's process: the cached attestation while it is younger
   * than the max age (after a cheap check that the PID still names the attested process),
   * else a new one. Concurrent calls share one attestation; a failed one is not kept.
   *
   * @throws MeshidError permission_denied `agent.attestation.pid_reused` /
   *   `agent.attestation.process_gone` once the attested process is gone or its PID names
   *   another process; the attestation's own errors; the abort reason when `signal` aborts.
   */
  attest(signal?: AbortSignal): Promise<Selector[]>;
  /** The connection closed: aborts an attestation under way. */
  close(): void;
}

/** Parameters of {@link createConnectionAttestation}. */
export interface CreateConnectionAttestationParams {
  /** The connection's peer (SO_PEERCRED). */
  readonly process: WorkloadProcess;
  readonly attestation: WorkloadAttestation;
  /** Age after which the process is attested again, ms. Default {@link DEFAULT_CONNECTION_ATTESTATION_MAX_AGE_MS}. */
  readonly maxAgeMs?: number;
  /** Monotonic milliseconds. Default `performance.now()`. */
  readonly nowMs?: () => number;
}

interface Attempt {
  readonly promise: Promise<AttestedProcess | { selectors: Selector[]; startTimeTicks: undefined }>;
  /** When it succeeded (monotonic ms); undefined while under way. */
  doneAtMs: number | undefined;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const reason: unknown = signal.reason;
      reject(reason instanceof Error ? reason : new Error(String(reason)));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Creates the {@link ConnectionAttestation} of one connection. The first successful
 * attestation fixes the process's start time and opens a handle on the process
 * ({@link WorkloadAttestation.openProcess}: its `/proc/<pid>/stat`, held until the connection
 * closes): every later call checks the process through it with one read (or, without a
 * handle, its start time through {@link WorkloadAttestation.checkProcess}), and a
 * re-attestation after the max age
 * must find the same start time, so a connection outliving its process (a PID reused by
 * another process) is refused instead of attesting the newcomer.
 */
export function createConnectionAttestation(
  params: CreateConnectionAttestationParams,
): ConnectionAttestation {
  const { process, attestation } = params;
  const maxAgeMs = params.maxAgeMs ?? DEFAULT_CONNECTION_ATTESTATION_MAX_AGE_MS;
  const nowMs = params.nowMs ?? (() => performance.now());
  let closed = false;
  /**
   * Aborts the attestation under way when the connection closes. One per attempt, dropped when
   * it settles: a connection holds no AbortController (≈ 0.6 KB) between attestations.
   */
  let running: AbortController | undefined;
  /** Start time of the process the first successful attestation saw. */
  let startTimeTicks: number | undefined;
  /** An open handle on the attested process, when the attestation offers one. */
  let handle: ProcessHandle | undefined;
  let current: Attempt | undefined;

  /** Throws once the attested process is gone or its PID names another process. */
  const checkProcess = (ticks: number): void => {
    if (handle !== undefined) handle.check();
    else attestation.checkProcess?.(process.pid, ticks);
  };

  const checkSameProcess = (ticks: number): void => {
    if (startTimeTicks === undefined) {
      startTimeTicks = ticks;
      return;
    }
    if (ticks !== startTimeTicks) {
      throw new MeshidError(
        "permission_denied",
        PID_REUSED_CODE,
        `process ${process.pid} was replaced by another process since it was attested`,
        { details: { pid: process.pid } },
      );
    }
  };

  const start = (): Attempt => {
    const controller = new AbortController();
    // A call on a connection that already closed gets an aborted attestation, as before.
    if (closed) controller.abort();
    else running = controller;
    const run = async () => {
      if (attestation.attestProcess === undefined) {
        const selectors = await attestation.attest(process, controller.signal);
        return { selectors, startTimeTicks: undefined };
      }
      const attested = await attestation.attestProcess(process, controller.signal);
      checkSameProcess(attested.startTimeTicks);
      if (handle === undefined && !closed) {
        handle = attestation.openProcess?.(process.pid, attested.startTimeTicks);
      }
      return attested;
    };
    const attempt: Attempt = { promise: run(), doneAtMs: undefined };
    current = attempt;
    attempt.promise.then(
      () => {
        attempt.doneAtMs = nowMs();
        if (running === controller) running = undefined;
      },
      () => {
        if (current === attempt) current = undefined;
        if (running === controller) running = undefined;
      },
    );
    return attempt;
  };

  return {
    prime() {
      if (current === undefined && !closed) start();
    },
    async attest(signal) {
      signal?.throwIfAborted();
      let attempt = current;
      if (attempt?.doneAtMs !== undefined && nowMs() - attempt.doneAtMs > maxAgeMs) {
        attempt = undefined;
      }
      if (attempt === undefined) {
        // The process must still be the one attested before, if any.
        if (startTimeTicks !== undefined) checkProcess(startTimeTicks);
        attempt = start();
      }
      const result = await untilAborted(attempt.promise, signal);
      if (result.startTimeTicks !== undefined) checkProcess(result.startTimeTicks);
      return result.selectors;
    },
    close() {
      closed = true;
      running?.abort();
      running = undefined;
      current = undefined;
      handle?.close();
      handle = undefined;
    },
  };
}
