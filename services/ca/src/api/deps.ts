// What the gRPC layer needs from the CA's domain. The domain modules implement these
// interfaces; the API only converts messages, checks who is calling, and maps errors.
import type { KeyType, X509SvidIssuer } from "@meshid/pki";
import type { SpiffeId } from "@meshid/spiffe";
import type {
  AttestationType,
  AttestedAgent,
  AuthorityState,
  BatchItemResult,
  BundleRecord,
  CaSettings,
  JoinToken,
  NewRegistrationEntry,
  Page,
  RegistrationEntry,
  RegistrationEntryUpdate,
} from "../domain/types";
import type { ListAgentsParams, ListEntriesParams } from "../ports";

/** An X509-SVID the CA signed (no private key: the caller kept it). */
export interface IssuedSvid {
  readonly spiffeId: SpiffeId;
  /** Leaf first, then the intermediates up to (not including) a bundle root. DER. */
  readonly certChainDer: readonly Uint8Array[];
  readonly serialHex: string;
  readonly expiresAt: Date;
  readonly hint: string;
}

/** One page of SyncAuthorizedEntries. */
export interface SyncPage {
  readonly entries: readonly RegistrationEntry[];
  /** True on the last page only. */
  readonly done: boolean;
  /** Last page only: the revision this sync reflects. */
  readonly revision: number;
  /**
   * Ids of entries authorised for the agent now, on the last page. The agent's authorised set
   * is the UNION over all pages of one sync: above 20,000 ids (≈760 KB) the list is split over
   * the final pages so no message nears gRPC's 4 MiB limit; earlier pages carry none.
   */
  readonly authorizedEntryIds: readonly string[];
  /**
   * Last page only: no ID list was sent, because nothing left or (unchanged) joined the agent's
   * set since the sync's `sinceRevision`; the agent's set is what it held plus `entries`. Only
   * when the request asked for it ({@link SyncAuthorizedOptions.omitUnchangedIds}).
   */
  readonly authorizedIdsOmitted: boolean;
}

/** Options of {@link EntryManager.syncAuthorized}. */
export interface SyncAuthorizedOptions {
  /**
   * The agent understands {@link SyncPage.authorizedIdsOmitted}: a delta may leave out the
   * ID list when no graph change happened since `sinceRevision`. Default false (always send).
   */
  readonly omitUnchangedIds?: boolean;
}

/** Registration entries (domain/entry-manager.ts). */
export interface EntryManager {
  batchCreate(
    entries: readonly NewRegistrationEntry[],
  ): Promise<BatchItemResult<RegistrationEntry>[]>;
  batchUpdate(
    updates: readonly RegistrationEntryUpdate[],
  ): Promise<BatchItemResult<RegistrationEntry>[]>;
  batchDelete(ids: readonly string[]): Promise<BatchItemResult<RegistrationEntry>[]>;
  /** Throws `ca.entry.not_found` (not_found). */
  get(id: string): Promise<RegistrationEntry>;
  list(params: ListEntriesParams): Promise<Page<RegistrationEntry>>;
  /** Entries authorised for `agentId` changed after `sinceRevision` (0 = all), in pages. */
  syncAuthorized(
    agentId: SpiffeId,
    sinceRevision: number,
    pageSize?: number,
    options?: SyncAuthorizedOptions,
  ): AsyncIterable<SyncPage>;
  /** Whether the entry is authorised for the agent (parented to it, directly or transitively). */
  isAuthorized(agentId: SpiffeId, entry: RegistrationEntry): Promise<boolean>;
}

/** X509-SVID signing (domain/svid-signer.ts). */
export interface SvidSigner {
  /** Per item: entry exists and is authorised for `agentId`, CSR valid; else the item's error. */
  batchNewX509Svid(
    agentId: SpiffeId,
    params: readonly { readonly entryId: string; readonly csrDer: Uint8Array }[],
  ): Promise<BatchItemResult<IssuedSvid & { readonly entryId: string }>[]>;
  mintX509Svid(params: {
    readonly csrDer: Uint8Array;
    readonly spiffeId: SpiffeId;
    readonly dnsNames: readonly string[];
    /** 0 = mesh svidTTL. */
    readonly ttlSeconds: number;
  }): Promise<IssuedSvid>;
}

/** Node attestation and agents (domain/agent-manager.ts). */
export interface AgentManager {
  attest(params: {
    readonly attestationType: string;
    readonly token: string;
    readonly cluster: string;
    readonly csrDer: Uint8Array;
  }): Promise<{ readonly agent: AttestedAgent; readonly svid: IssuedSvid }>;
  /** Refuses banned or unknown agents (`ca.agent.banned` / `ca.agent.not_found`: permission_denied). */
  renew(agentId: SpiffeId, csrDer: Uint8Array): Promise<IssuedSvid>;
  createJoinToken(params: {
    readonly ttlSeconds: number;
    readonly token?: string;
  }): Promise<JoinToken>;
  list(params: ListAgentsParams): Promise<Page<AttestedAgent>>;
  ban(agentId: SpiffeId): Promise<AttestedAgent>;
  delete(agentId: SpiffeId): Promise<void>;
  /**
   * Whether a caller presenting an agent SVID (`agentId`, leaf serial) may use the agent APIs:
   * the agent exists, is not banned, and the serial is its current (or just-renewed) one.
   */
  checkAgent(agentId: SpiffeId, serialHex: string): Promise<"ok" | "unknown" | "banned">;
}

/** A view of one authority for the API. */
export interface AuthorityView {
  readonly authorityId: string;
  readonly state: AuthorityState;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly tainted: boolean;
  readonly upstreamAuthorityId: string;
  readonly keyType: KeyType;
}

/** The authority that signs now. */
export interface ActiveSigner {
  readonly authorityId: string;
  readonly notAfter: Date;
  /** Certificates to send after a leaf it signs (none when it is a bundle root). DER. */
  readonly chainDer: readonly Uint8Array[];
  /** Signs a leaf from a CSR; see @meshid/pki createX509SvidIssuer().issueFromCsr. */
  readonly issuer: X509SvidIssuer;
}

/** The CA's own authorities, rotation and the bundle (domain/authority-manager.ts). */
export interface AuthorityManager {
  /** Loads the journal (or makes the first authority) and publishes the bundle. */
  init(): Promise<void>;
  activeSigner(): ActiveSigner;
  bundle(): BundleRecord;
  /** Calls `listener` after every bundle change; returns the unsubscribe function. */
  onBundleChange(listener: (bundle: BundleRecord) => void): () => void;
  state(): {
    readonly active: AuthorityView;
    readonly prepared?: AuthorityView;
    readonly old: readonly AuthorityView[];
  };
  prepare(): Promise<AuthorityView>;
  /** `authorityId` must be the prepared one (`ca.authority.not_prepared`: failed_precondition). */
  activate(authorityId: string): Promise<AuthorityView>;
  /** Only an old authority (`ca.authority.is_active`: failed_precondition). */
  taint(authorityId: string): Promise<AuthorityView>;
  /** Only a tainted old authority. */
  revoke(authorityId: string): Promise<AuthorityView>;
  settings(): CaSettings;
  /** svidTTL at once; caTTL/caKeyType for the next authority, or a rotation now. */
  applySettings(
    settings: Partial<CaSettings>,
    options?: { readonly rotateNow?: boolean },
  ): Promise<void>;
  /** Runs the rotation schedule once at the clock's current time. */
  tick(): Promise<void>;
  /** Runs the schedule until `signal` aborts. */
  run(signal: AbortSignal): Promise<void>;
}

export type { AttestationType };
