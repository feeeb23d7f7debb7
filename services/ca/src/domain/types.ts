import type { MeshidError } from "@meshid/errors";
import type { KeyType } from "@meshid/pki";
import type { Selector, SpiffeId } from "@meshid/spiffe";

/**
 * A registration entry: workloads whose attested selectors include `selectors`, running
 * under `parentId` (an agent, directly or through other entries), get `spiffeId`.
 */
export interface RegistrationEntry {
  /** UUID assigned by the CA. */
  readonly id: string;
  readonly spiffeId: SpiffeId;
  readonly parentId: SpiffeId;
  /** Never empty; normalised (deduplicated, sorted by `type:value`). */
  readonly selectors: readonly Selector[];
  /** TTL of SVIDs minted for the entry; 0 = the mesh-wide svidTTL. */
  readonly x509SvidTtlSeconds: number;
  readonly dnsNames: readonly string[];
  /** Admin entries may call the CA's admin APIs with their SVID. */
  readonly admin: boolean;
  readonly hint: string;
  /** Component that manages the entry (e.g. `registrar`); "" when none. */
  readonly owner: string;
  /** Store-wide revision at which the entry last changed. */
  readonly revision: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/**
 * The graph fields of a registration entry: what the walk over the entry graph (authorised
 * entries, delta sync) needs, without selectors, DNS names or times to decode.
 */
export interface EntryRef {
  readonly id: string;
  /** The entry's SPIFFE ID as a string. */
  readonly spiffeId: string;
  /** Store-wide revision at which the entry last changed. */
  readonly revision: number;
}

/** The caller-settable fields of an entry. */
export type EntryFields = Omit<RegistrationEntry, "id" | "revision" | "createdAt" | "updatedAt">;

/** A new entry: the settable fields plus an optional caller-chosen UUID. */
export interface NewRegistrationEntry extends EntryFields {
  readonly id?: string;
}

/** An update: the entry id and the new values of every settable field. */
export interface RegistrationEntryUpdate extends EntryFields {
  readonly id: string;
}

/** How attestation proved an agent's node. */
export type AttestationType = "join_token" | "k8s_psat";

/** An attested agent (one per node). */
export interface AttestedAgent {
  /** `spiffe://<td>/meshid/agent/<type>/…` */
  readonly spiffeId: SpiffeId;
  readonly attestationType: AttestationType;
  /** Node selectors learnt at attestation (e.g. `k8s_psat:cluster:…`, `k8s_psat:agent_node_name:…`). */
  readonly selectors: readonly Selector[];
  /** Serial (lowercase hex) of the agent's current SVID; a renewal must present it. */
  readonly x509SvidSerial: string;
  /**
   * Serial of the SVID the last renewal replaced, still accepted by checkAgent so calls made
   * with it during a renewal race succeed; absent after attestation. (Optional: additive.)
   */
  readonly previousX509SvidSerial?: string;
  readonly x509SvidExpiresAt: Date;
  readonly banned: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A single-use join token. */
export interface JoinToken {
  readonly token: string;
  readonly expiresAt: Date;
}

/** Where an X.509 authority is in its life. */
export type AuthorityState = "prepared" | "active" | "old";

/** One X.509 signing authority of the CA, as kept in the authorities journal. */
export interface AuthorityRecord {
  /** Lowercase hex Subject Key Identifier of the CA certificate. */
  readonly authorityId: string;
  readonly state: AuthorityState;
  /** The CA certificate, DER. */
  readonly certDer: Uint8Array;
  /** Certificates between the CA certificate and the upstream roots (DER, lowest first). */
  readonly upstreamChainDer: readonly Uint8Array[];
  /** Key-manager id of the private key. */
  readonly keyId: string;
  readonly keyType: KeyType;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly tainted: boolean;
  /** SKI (hex) of the upstream certificate that signed it; "" when self-signed. */
  readonly upstreamAuthorityId: string;
}

/** One X.509 authority in the trust bundle. */
export interface BundleAuthority {
  readonly certDer: Uint8Array;
  readonly tainted: boolean;
}

/** The trust bundle of the CA's trust domain, as stored. */
export interface BundleRecord {
  readonly trustDomain: string;
  readonly x509Authorities: readonly BundleAuthority[];
  /** Grows by one on every change. */
  readonly sequenceNumber: number;
  readonly refreshHintSeconds: number;
}

/** Outcome of one item of a batch: a value or the error that refused it. */
export type BatchItemResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: MeshidError };

/** One page of a paged listing. */
export interface Page<T> {
  readonly items: readonly T[];
  /** Opaque; "" on the last page. */
  readonly nextPageToken: string;
}

/** Mesh-wide CA settings (MeshConfig's caTTL, svidTTL, caKeyType). */
export interface CaSettings {
  /** Lifetime of the CA's own authorities (minimum 24 h). */
  readonly caTtlSeconds: number;
  /** Default X509-SVID lifetime. */
  readonly svidTtlSeconds: number;
  /** Key type of new authorities. */
  readonly caKeyType: KeyType;
}
