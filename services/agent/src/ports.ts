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
  /**
   * Last page only: the CA left out the ID list (only when asked, on a delta): nothing left
   * the agent's set and nothing unchanged joined it since `sinceRevision`, so the set is the
   * held one plus `entries`.
   */
  readonly authorizedIdsOmitted: boolean;
}

/** Options of {@link CaClient.syncAuthorizedEntries}. */
export interface SyncAuthorizedEntriesOptions {
  /** Let the CA leave out the ID list of a delta when it can (default false). */
  readonly omitUnchangedIds?: boolean;
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
  syncAuthorizedEntries(
    sinceRevision: number,
    signal?: AbortSignal,
    options?: SyncAuthorizedEntriesOptions,
  ): AsyncIterable<EntrySyncPage>;
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

/** PEM TLS material of the agent's own SVID (the shape of grpc-kit's `TlsMaterial`). */
export interface AgentTlsMaterial {
  /** Leaf first, then intermediates, PEM. */
  readonly certChainPem: string;
  /** PKCS#8 PEM. Never logged. */
  readonly keyPem: string;
  /** The trust bundle verifying the CA, PEM. */
  readonly bundlePem: string;
}

/** An X509-SVID the CA signed for the agent itself. */
export interface SignedAgentSvid {
  /** Leaf first, DER. */
  readonly certChainDer: readonly Uint8Array[];
  readonly serialHex: string;
  readonly expiresAt: Date;
}

/** Parameters of {@link AgentAttestationClient.attest}. */
export interface AttestAgentParams {
  readonly attestationType: "join_token" | "k8s_psat";
  /** The join token or the projected service-account token. Never logged. */
  readonly token: string;
  /** k8s_psat: the cluster name configured on the CA; "" for join_token. */
  readonly cluster: string;
  /** PKCS#10 CSR (DER) for the agent's new key. */
  readonly csrDer: Uint8Array;
  /** Bundle (PEM) the CA's server certificate must chain to: no client certificate is sent. */
  readonly bundlePem: string;
}

/** Result of {@link AgentAttestationClient.attest}. */
export interface AttestAgentResult {
  readonly svid: SignedAgentSvid;
  /** The bundle the agent must use from now on. */
  readonly bundle: AgentBundle;
}

/** Parameters of {@link AgentAttestationClient.renew}. */
export interface RenewAgentParams {
  /** PKCS#10 CSR (DER) for the agent's new key. */
  readonly csrDer: Uint8Array;
  /** The agent's current SVID (mTLS client certificate) and bundle. */
  readonly tls: AgentTlsMaterial;
}

/**
 * The CA's node attestation API. Failures are MeshidErrors carrying the CA's error code
 * (`ca.agent.banned`, `ca.authz.agent_unknown`, …).
 */
export interface AgentAttestationClient {
  /** AttestAgent over server-authenticated TLS. */
  attest(params: AttestAgentParams, signal?: AbortSignal): Promise<AttestAgentResult>;
  /** RenewAgent over mTLS with the current agent SVID. */
  renew(params: RenewAgentParams, signal?: AbortSignal): Promise<SignedAgentSvid>;
}

/** What the agent keeps on disk about itself. */
export interface PersistedAgentIdentity {
  /** Leaf first, DER. */
  readonly certChainDer: readonly Uint8Array[];
  /** PKCS#8 DER of the SVID's key. */
  readonly privateKeyPkcs8Der: Uint8Array;
  /** The bundle the agent last saw. */
  readonly bundle: AgentBundle;
}

/** Persists the agent's own SVID, key and last bundle across restarts. */
export interface AgentIdentityStore {
  /** The saved identity, or undefined when none was saved. Throws when files are unsafe. */
  load(): Promise<PersistedAgentIdentity | undefined>;
  /** Replaces the saved identity atomically. */
  save(identity: PersistedAgentIdentity): Promise<void>;
}

/** Supplies the node attestation credential (join token, or PSAT re-read from its file). */
export interface NodeAttestationTokenSource {
  readonly attestationType: "join_token" | "k8s_psat";
  /** k8s_psat cluster name; "" for join_token. */
  readonly cluster: string;
  /** The token to present now. Never logged. */
  token(signal?: AbortSignal): Promise<string>;
}
