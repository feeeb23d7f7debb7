// Interfaces the CA's domain needs from the outside world. Adapters in ./adapters implement
// them; tests use the real adapters (SQLite, disk/memory key managers) or the testkit.
import type { EventPayload, EventType, PublishEventOptions } from "@meshid/events";
import type { KeyType } from "@meshid/pki";
import type { KeyObject } from "node:crypto";
import type {
  AttestedAgent,
  AuthorityRecord,
  BatchItemResult,
  BundleRecord,
  EntryRef,
  JoinToken,
  NewRegistrationEntry,
  Page,
  RegistrationEntry,
  RegistrationEntryUpdate,
} from "./domain/types";
import type { Selector } from "@meshid/spiffe";

/** How ListEntries compares selectors. */
export type SelectorMatch = "exact" | "subset";

/** Filters and paging of {@link Datastore.listEntries}; filters combine with AND. */
export interface ListEntriesParams {
  /** Default 500, at most 1000. */
  readonly pageSize?: number;
  readonly pageToken?: string;
  /** SPIFFE ID string of the parent. */
  readonly byParentId?: string;
  /** SPIFFE ID string of the entry. */
  readonly bySpiffeId?: string;
  readonly bySelectors?: { readonly selectors: readonly Selector[]; readonly match: SelectorMatch };
  readonly byOwner?: string;
}

/** Paging and filters of {@link Datastore.listAgents}. */
export interface ListAgentsParams {
  readonly pageSize?: number;
  readonly pageToken?: string;
  readonly byAttestationType?: string;
  readonly onlyBanned?: boolean;
}

/** What {@link Datastore.getRevisions} returns. */
export interface StoreRevisions {
  /** The store revision (as {@link Datastore.getRevision}). */
  readonly revision: number;
  /**
   * The store revision of the last entry change that can remove an entry from, or add an
   * unchanged entry to, some agent's authorised set (0 when none ever did): a delete; an update
   * that changes the parent ID or the SPIFFE ID; a create whose SPIFFE ID is the parent ID of
   * an existing entry. Other creates and updates leave it. Always ≤ `revision`; set in the
   * transaction of the write.
   */
  readonly graphRevision: number;
}

/** Result of {@link Datastore.consumeJoinToken}. */
export type ConsumeJoinTokenResult = "consumed" | "not_found" | "expired";

/**
 * The CA's store: entries (with a store-wide revision), agents, join tokens, the authorities
 * journal and the bundle. Every method is atomic; batch methods apply each item on its own
 * (one refused item does not undo the others) and return results in input order. Errors are
 * MeshidErrors: `ca.entry.not_found` (not_found), `ca.entry.duplicate` (already_exists: same
 * SPIFFE ID, parent and selectors), `ca.entry.id_taken` (already_exists), `ca.store.*`
 * (unavailable / internal).
 */
export interface Datastore {
  createEntries(
    entries: readonly NewRegistrationEntry[],
  ): Promise<BatchItemResult<RegistrationEntry>[]>;
  updateEntries(
    updates: readonly RegistrationEntryUpdate[],
  ): Promise<
    BatchItemResult<{ readonly before: RegistrationEntry; readonly after: RegistrationEntry }>[]
  >;
  deleteEntries(ids: readonly string[]): Promise<BatchItemResult<RegistrationEntry>[]>;
  getEntry(id: string): Promise<RegistrationEntry | undefined>;
  listEntries(params: ListEntriesParams): Promise<Page<RegistrationEntry>>;
  /** Entries whose parent ID is one of `parentIds` (SPIFFE ID strings). */
  listEntriesByParents(parentIds: readonly string[]): Promise<RegistrationEntry[]>;
  /**
   * The {@link EntryRef}s (id, SPIFFE ID string, revision) of the entries whose parent ID is
   * one of `parentIds` (SPIFFE ID strings): the cheap form of {@link listEntriesByParents}
   * for walking the entry graph, reading nothing else of a row. Takes any number of parent
   * IDs (callers chunk; adapters must not impose a lower limit); `[]` for none; each entry at
   * most once; order unspecified.
   */
  listEntryRefsByParents(parentIds: readonly string[]): Promise<EntryRef[]>;
  /**
   * The entries with the given ids, each at most once, in no particular order; unknown ids
   * are skipped (no error). Takes any number of ids; `[]` for none.
   */
  getEntriesByIds(ids: readonly string[]): Promise<RegistrationEntry[]>;
  /** The current store revision (0 for an empty store); bumps on every entry change. */
  getRevision(): Promise<number>;
  /**
   * The store revision and the graph revision, read together (see {@link StoreRevisions}).
   */
  getRevisions(): Promise<StoreRevisions>;
  /**
   * The entries whose revision is above `revision` (store-wide, full entries), ordered by
   * revision, at most `limit` of them (an integer ≥ 1). Deleted entries are not returned.
   */
  listEntriesChangedSince(revision: number, limit: number): Promise<RegistrationEntry[]>;

  /** Creates or replaces the agent with the same SPIFFE ID. */
  putAgent(agent: AttestedAgent): Promise<void>;
  getAgent(spiffeId: string): Promise<AttestedAgent | undefined>;
  listAgents(params: ListAgentsParams): Promise<Page<AttestedAgent>>;
  /** Returns false when there was no such agent. */
  deleteAgent(spiffeId: string): Promise<boolean>;

  /** Throws `ca.join_token.duplicate` (already_exists) when the token exists. */
  createJoinToken(token: JoinToken): Promise<void>;
  /** Deletes the token atomically and says whether it was there and unexpired at `now`. */
  consumeJoinToken(token: string, now: Date): Promise<ConsumeJoinTokenResult>;
  /** Deletes tokens expired at `now`; returns how many. */
  pruneJoinTokens(now: Date): Promise<number>;

  /** The authorities journal, in no particular order. */
  listAuthorities(): Promise<AuthorityRecord[]>;
  /** Replaces the whole journal atomically. */
  saveAuthorities(records: readonly AuthorityRecord[]): Promise<void>;

  getBundle(): Promise<BundleRecord | undefined>;
  saveBundle(bundle: BundleRecord): Promise<void>;

  close(): Promise<void>;
}

/** A private key held by a {@link KeyManager}. */
export interface ManagedKey {
  readonly keyId: string;
  readonly keyType: KeyType;
  readonly publicKey: KeyObject;
  /** Usable with `crypto.sign`. Never logged, never leaves the process. */
  readonly privateKey: KeyObject;
}

/**
 * Keeps the CA's private keys. `disk` keeps them in a 0600 file inside a 0700 data dir so a
 * restart keeps the same authority; `memory` loses them on restart.
 */
export interface KeyManager {
  /** Generates a key under `keyId`, replacing any key of that id. */
  generateKey(keyId: string, keyType: KeyType): Promise<ManagedKey>;
  getKey(keyId: string): Promise<ManagedKey | undefined>;
  listKeys(): Promise<ManagedKey[]>;
  deleteKey(keyId: string): Promise<void>;
}

/** What {@link UpstreamAuthority.mintX509Ca} returns. */
export interface MintedX509Ca {
  /** The new CA certificate first, then any intermediates up to (not including) a root. DER. */
  readonly x509CaChain: readonly Uint8Array[];
  /** The upstream roots that go into the trust bundle. DER. */
  readonly upstreamX509Roots: readonly Uint8Array[];
}

/**
 * An upstream CA under which the meshid CA's authorities are intermediates (disk now; aws_pca,
 * awssecret, vault and cert-manager later). Implementations validate their config at
 * construction and refuse unsuitable upstream certificates (pathLen rules).
 */
export interface UpstreamAuthority {
  /** Signs a CA CSR (DER) for an intermediate of about `ttlSeconds`. */
  mintX509Ca(params: {
    readonly csrDer: Uint8Array;
    readonly ttlSeconds: number;
    readonly signal?: AbortSignal;
  }): Promise<MintedX509Ca>;
  close(): Promise<void>;
}

/** Time, injectable so rotation is tested without sleeping. */
export interface Clock {
  now(): Date;
  /** Resolves after `ms` (of this clock's time) or rejects when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Publishes meshid events; the NATS publisher of @meshid/events fits. */
export interface EventSink {
  publish<K extends EventType>(
    type: K,
    payload: EventPayload<K>,
    options?: PublishEventOptions,
  ): Promise<unknown>;
}

/** What a Kubernetes TokenReview says about a projected service-account token. */
export interface ReviewedServiceAccountToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly podName: string;
  readonly podUid: string;
  readonly nodeName: string;
  /** From the token's extras when the API server sets it; "" otherwise. */
  readonly nodeUid: string;
}

/** Validates projected service-account tokens for k8s_psat node attestation (one cluster). */
export interface TokenReviewer {
  /** Throws `ca.attestation.psat_invalid` (permission_denied) when the API server refuses it. */
  reviewToken(token: string, audiences: readonly string[]): Promise<ReviewedServiceAccountToken>;
  /** The UID of a node; throws `ca.attestation.node_not_found` (permission_denied). */
  getNodeUid(nodeName: string): Promise<string>;
}
