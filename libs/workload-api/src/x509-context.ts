import { X509Certificate } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { certificatesToPem, encodePem } from "@meshid/pki";
import { parseSpiffeId, splitDerCertificates } from "@meshid/spiffe";

/** Stable error code of a Workload API message that cannot be used. */
export const RESPONSE_INVALID_CODE = "workload_api.response_invalid";

/** One X509-SVID received from the Workload API, in DER and PEM. Never log `keyPkcs8Der`/`keyPem`. */
export interface WorkloadX509Svid {
  /** The SVID's SPIFFE ID (`spiffe://<td>/<path>`). */
  readonly spiffeId: string;
  /** Trust-domain ID of the SVID (`spiffe://<td>`), the key of its bundle in {@link X509Context.bundles}. */
  readonly trustDomainId: string;
  /** Certificates, leaf first, DER. */
  readonly certChainDer: readonly Uint8Array[];
  /** Certificates, leaf first, PEM. */
  readonly certChainPem: string;
  /** Private key of the leaf, PKCS#8 DER. */
  readonly keyPkcs8Der: Uint8Array;
  /** Private key of the leaf, PKCS#8 PEM. */
  readonly keyPem: string;
  /** The X.509 authorities of the SVID's own trust domain, DER. */
  readonly bundleDer: readonly Uint8Array[];
  /** The same authorities as concatenated PEM certificates. */
  readonly bundlePem: string;
  /** Operator-chosen hint telling SVIDs apart (may be empty). */
  readonly hint: string;
  /** Serial number of the leaf (hex, as node:crypto prints it). */
  readonly serialNumber: string;
  /** The leaf's notAfter. */
  readonly expiresAt: Date;
}

/**
 * The full X.509 state the Workload API handed the caller in one message: every SVID (the first
 * is the default) and every trust bundle (own trust domains and federated ones).
 */
export interface X509Context {
  /** The caller's SVIDs in the order received; never empty. */
  readonly svids: readonly WorkloadX509Svid[];
  /** Trust-domain ID (`spiffe://<td>`) → its X.509 authorities (DER). */
  readonly bundles: ReadonlyMap<string, readonly Uint8Array[]>;
}

/** The fields of an X509SVIDResponse this library reads (as generated in `@meshid/proto`). */
export interface X509SvidResponseLike {
  readonly svids: readonly {
    readonly spiffeId: string;
    readonly x509Svid: Uint8Array;
    readonly x509SvidKey: Uint8Array;
    readonly bundle: Uint8Array;
    readonly hint: string;
  }[];
  readonly federatedBundles: Readonly<Record<string, Uint8Array>>;
}

function invalid(message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", RESPONSE_INVALID_CODE, message, { cause });
}

/**
 * Converts one X509SVIDResponse into an {@link X509Context}: splits the concatenated DER,
 * builds PEM forms, reads the leaf's serial and expiry, and maps bundles by trust-domain ID
 * (each SVID's own bundle, then the federated bundles, which never replace an own one).
 *
 * @throws MeshidError `invalid_argument` / {@link RESPONSE_INVALID_CODE} when the message has no
 *   SVID, an SVID has an invalid SPIFFE ID, no certificate, no key or no bundle, or any DER does
 *   not parse. Messages never contain key material.
 */
export function x509ContextFromResponse(response: X509SvidResponseLike): X509Context {
  if (response.svids.length === 0) throw invalid("X509SVIDResponse carries no SVID");
  const bundles = new Map<string, readonly Uint8Array[]>();
  const svids = response.svids.map((raw, index): WorkloadX509Svid => {
    const where = `SVID #${index} (${raw.spiffeId})`;
    let trustDomainId: string;
    try {
      const id = parseSpiffeId(raw.spiffeId);
      trustDomainId = `spiffe://${id.trustDomain.name}`;
    } catch (err) {
      throw invalid(`${where} has an invalid SPIFFE ID`, err);
    }
    let certChainDer: Uint8Array[];
    let bundleDer: Uint8Array[];
    try {
      certChainDer = splitDerCertificates(raw.x509Svid);
      bundleDer = splitDerCertificates(raw.bundle);
    } catch (err) {
      throw invalid(`${where} carries certificates that are not valid DER`, err);
    }
    const leafDer = certChainDer[0];
    if (leafDer === undefined) throw invalid(`${where} has no certificate`);
    if (bundleDer.length === 0) throw invalid(`${where} has no bundle`);
    if (raw.x509SvidKey.length === 0) throw invalid(`${where} has no private key`);
    let leaf: X509Certificate;
    try {
      leaf = new X509Certificate(Buffer.from(leafDer));
    } catch (err) {
      throw invalid(`${where} has a leaf certificate that does not parse`, err);
    }
    if (!bundles.has(trustDomainId)) bundles.set(trustDomainId, bundleDer);
    const keyPkcs8Der = new Uint8Array(raw.x509SvidKey);
    return {
      spiffeId: raw.spiffeId,
      trustDomainId,
      certChainDer,
      certChainPem: certificatesToPem(certChainDer),
      keyPkcs8Der,
      keyPem: encodePem("PRIVATE KEY", keyPkcs8Der),
      bundleDer,
      bundlePem: certificatesToPem(bundleDer),
      hint: raw.hint,
      serialNumber: leaf.serialNumber,
      expiresAt: new Date(leaf.validTo),
    };
  });
  for (const [td, der] of Object.entries(response.federatedBundles)) {
    if (bundles.has(td)) continue;
    try {
      bundles.set(td, splitDerCertificates(der));
    } catch (err) {
      throw invalid(`federated bundle of ${td} is not valid DER`, err);
    }
  }
  return { svids, bundles };
}

/** Chooses one SVID of a context (the sidecar's `spiffeId` setting, or the default). */
export type PickSvid = (svids: readonly WorkloadX509Svid[]) => WorkloadX509Svid | undefined;

/** Picks the first SVID: the default one, as the SPIFFE Workload API defines it. */
export const pickDefaultSvid: PickSvid = (svids) => svids[0];

/** Returns a {@link PickSvid} that picks the SVID whose SPIFFE ID is exactly `spiffeId`. */
export function pickSvidById(spiffeId: string): PickSvid {
  return (svids) => svids.find((s) => s.spiffeId === spiffeId);
}

/**
 * A short description of an SVID for logs: SPIFFE ID, serial, expiry, hint. Never includes the
 * key.
 */
export function describeSvid(svid: WorkloadX509Svid): Record<string, string> {
  return {
    spiffeId: svid.spiffeId,
    serialNumber: svid.serialNumber,
    notAfter: svid.expiresAt.toISOString(),
    ...(svid.hint === "" ? {} : { hint: svid.hint }),
  };
}
