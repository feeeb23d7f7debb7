// Interfaces the agent's domain needs from the outside world; adapters implement them.
import type { EventPayload, EventType, PublishEventOptions } from "@meshid/events";
import type { Selector } from "@meshid/spiffe";
import type { AgentBundle, AgentEntry, WorkloadProcess } from "./domain/types";

/** One page of the CA's SyncAuthorizedEntries stream. */
export interface EntrySyncPage {
  readonly entries: readonly AgentEntry[];
  readonly done: boolean;
  /** Set on the last page: the CA revision the sync reflects. */
  readonly revision: number;
  /** Ids authorised now; the union over the pages of one sync is the whole set. */
  readonly authorizedEntryIds: readonly string[];
}

/** Per-item result of {@link CaClient.batchNewX509Svid}. */
export type SignedSvidResult =
  | {
      readonly ok: true;
      readonly entryId: string;
      readonly certChainDer: readonly Uint8Array[];
      readonly serialHex: string;
      readonly expiresAt: Date;
    }
  | {
      readonly ok: false;
      readonly entryId: string;
      readonly code: string;
      readonly message: string;
    };

/** The agent's view of the CA (gRPC over mTLS with the agent SVID). */
export interface CaClient {
  /** Entries changed after `sinceRevision` (0 = all) that are authorised for this agent. */
  syncAuthorizedEntries(sinceRevision: number, signal?: AbortSignal): AsyncIterable<EntrySyncPage>;
  /** Signs CSRs (DER) for entries; ≤ 500 per call; per-item results in request order. */
  batchNewX509Svid(
    items: readonly { readonly entryId: string; readonly csrDer: Uint8Array }[],
    signal?: AbortSignal,
  ): Promise<SignedSvidResult[]>;
  /** The current bundle at once, then every change, until `signal` aborts. */
  watchBundle(signal: AbortSignal): AsyncIterable<AgentBundle>;
}

/** Proves what a calling process is: one attestor per selector type (`unix`, `k8s`). */
export interface WorkloadAttestor {
  /** The selector type it produces, e.g. `unix`. */
  readonly type: string;
  /**
   * The selectors of the process. Returns [] when the process is not of its kind (e.g. not in
   * a pod for `k8s`); throws MeshidError `agent.attestation.*` on failure.
   */
  attest(process: WorkloadProcess, signal?: AbortSignal): Promise<Selector[]>;
}

/** Time, injectable so rotation is tested without sleeping. */
export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Publishes meshid events (svid.rotated); the NATS publisher of @meshid/events fits. */
export interface EventSink {
  publish<K extends EventType>(
    type: K,
    payload: EventPayload<K>,
    options?: PublishEventOptions,
  ): Promise<unknown>;
}
