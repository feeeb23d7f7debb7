// What the Workload API layer needs from the agent's domain.
import type { Selector } from "@meshid/spiffe";
import type { AgentBundle, WorkloadIdentity, WorkloadProcess } from "../domain/types";

/** Options of {@link WorkloadIdentitySource.watchIdentity}. */
export interface WatchIdentityOptions {
  readonly signal: AbortSignal;
  /**
   * How long the first message may wait when an entry matches but its SVID is still being
   * minted (default 5000 ms). After that the first message carries what is ready.
   */
  readonly mintWaitMs?: number;
}

/** The SVID cache as workloads see it (domain/svid-cache.ts). */
export interface WorkloadIdentitySource {
  /**
   * Full-state identities of a workload with `selectors`: every cached SVID whose entry's
   * selectors are a subset of them, plus the bundle. Yields at once (after the bounded mint
   * wait), then after every change that affects this workload (rotation, new/changed/deleted
   * matching entry, bundle change). An identity with no SVIDs means none match (now). Ends
   * when `signal` aborts.
   */
  watchIdentity(
    selectors: readonly Selector[],
    options: WatchIdentityOptions,
  ): AsyncIterable<WorkloadIdentity>;
  /** The bundle at once (when known), then every change, until `signal` aborts. */
  watchBundle(signal: AbortSignal): AsyncIterable<AgentBundle>;
}

/** The result of {@link WorkloadAttestation.attestProcess}. */
export interface AttestedProcess {
  readonly selectors: Selector[];
  /** Start time (clock ticks after boot) of the PID, the same before and after attestation. */
  readonly startTimeTicks: number;
}

/** Attests a Workload API caller (adapters/workload-attestation.ts). */
export interface WorkloadAttestation {
  /**
   * The selectors of `process` from every enabled attestor, after checking the PID was not
   * reused during attestation (same start time before and after). Throws MeshidError
   * `agent.attestation.*` (permission_denied when the process vanished or its PID was reused;
   * unavailable when a source such as the kubelet cannot be reached).
   */
  attest(process: WorkloadProcess, signal?: AbortSignal): Promise<Selector[]>;
  /**
   * Like {@link attest}, also returning the start time it checked. Optional: without it (and
   * {@link checkProcess}) a connection's cached attestation is only bounded by its age.
   */
  attestProcess?(process: WorkloadProcess, signal?: AbortSignal): Promise<AttestedProcess>;
  /**
   * Throws MeshidError permission_denied `agent.attestation.pid_reused` when `pid` now names
   * another process than the one started at `startTimeTicks`, or
   * `agent.attestation.process_gone` when it exited. Synchronous and cheap (one procfs read).
   */
  checkProcess?(pid: number, startTimeTicks: number): void;
  /**
   * Opens a handle on the process `pid` started at `startTimeTicks` (its `/proc/<pid>/stat`,
   * which keeps naming that very process: once it exits, reads fail even if the PID is reused),
   * so per-call checks cost one read. Throws like {@link checkProcess} when `pid` already names
   * another process or none; returns undefined when no handle can be opened (e.g. no file
   * descriptors left: callers fall back to {@link checkProcess}).
   */
  openProcess?(pid: number, startTimeTicks: number): ProcessHandle | undefined;
}

/** An open handle on one process (see {@link WorkloadAttestation.openProcess}). */
export interface ProcessHandle {
  /**
   * Throws MeshidError permission_denied `agent.attestation.process_gone` once the process
   * exited (or is a zombie), `agent.attestation.pid_reused` if the file now shows another start
   * time. Synchronous: one read.
   */
  check(): void;
  /** Releases the handle. Safe to call twice. */
  close(): void;
}
