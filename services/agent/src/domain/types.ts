import type { Selector } from "@meshid/spiffe";

/** A registration entry as the agent needs it (synced from the CA). */
export interface AgentEntry {
  readonly id: string;
  /** SPIFFE ID string of the identity the entry grants. */
  readonly spiffeId: string;
  /** SPIFFE ID string of the parent (this agent or an entry above it). */
  readonly parentId: string;
  readonly selectors: readonly Selector[];
  readonly dnsNames: readonly string[];
  /** 0 = the CA's mesh-wide svidTTL. */
  readonly x509SvidTtlSeconds: number;
  readonly hint: string;
  /** Store revision at which the entry last changed at the CA. */
  readonly revision: number;
}

/** An X509-SVID the agent holds for one entry, with its private key. */
export interface CachedSvid {
  readonly entryId: string;
  readonly spiffeId: string;
  readonly hint: string;
  /** Leaf first, then intermediates up to (not including) a bundle root. DER. */
  readonly certChainDer: readonly Uint8Array[];
  /** PKCS#8 DER. Never logged, never sent anywhere but to the entitled workload. */
  readonly privateKeyPkcs8Der: Uint8Array;
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When the agent re-mints it: half-life ± 10 % jitter. */
  readonly rotateAt: Date;
  /** Lowercase hex Authority Key Identifier of the leaf (the signing authority's SKI). */
  readonly authorityId: string;
  /** Revision of the entry the SVID was minted for. */
  readonly entryRevision: number;
}

/** The trust bundle as the agent holds it. */
export interface AgentBundle {
  /** Trust domain name (e.g. `example.org`). */
  readonly trustDomain: string;
  /** X.509 authorities, DER. */
  readonly x509AuthoritiesDer: readonly Uint8Array[];
  /** SKIs (lowercase hex) of tainted authorities: SVIDs they signed are re-minted. */
  readonly taintedAuthorityIds: readonly string[];
  readonly sequenceNumber: number;
}

/** What the Workload API serves to one workload: its SVIDs and the bundle. */
export interface WorkloadIdentity {
  readonly svids: readonly CachedSvid[];
  readonly bundle: AgentBundle;
}

/** The peer of a Workload API connection, from SO_PEERCRED. */
export interface WorkloadProcess {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}
