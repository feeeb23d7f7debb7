// The X509-SVID profile shared by the fast and the generic issuer: parameter checks, validity
// window, serial numbers and key usage. Both issuers must produce identical certificates.
import { randomFillSync, type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { type KeyType } from "./keys";
import { importSpkiFast, spkiFromKeyObject } from "./spki";

/** Parameters of one X509-SVID issuance (the same for the fast and the generic issuer). */
export interface IssueX509SvidParams {
  /** The workload's SPIFFE ID, e.g. `spiffe://example.org/ns/default/sa/web`; the only URI SAN. */
  readonly spiffeId: string;
  /** The workload's public key: a KeyObject or SubjectPublicKeyInfo DER. */
  readonly publicKey: KeyObject | Uint8Array;
  /** Optional DNS SANs. */
  readonly dnsNames?: readonly string[];
  /** Requested lifetime in seconds (> 0); cut short at the issuer's notAfter. */
  readonly ttlSeconds: number;
  /** Issuance time; notBefore is `now − 10 s`. */
  readonly now: Date;
}

/** A freshly issued X509-SVID leaf certificate. */
export interface IssuedX509Svid {
  /** The certificate, DER. */
  readonly certDer: Uint8Array;
  /** The serial number as lowercase hex (no sign byte). */
  readonly serialHex: string;
  /** Start of validity (second precision, `now − 10 s`). */
  readonly notBefore: Date;
  /** End of validity (second precision, `min(now + ttl, issuer notAfter)`). */
  readonly notAfter: Date;
}

/** How far notBefore is backdated to absorb clock skew, in seconds (SPIRE's value). */
export const NOT_BEFORE_BACKDATE_SECONDS = 10;

/** Size of the random serial number in bytes (128 bits). */
export const SERIAL_BYTES = 16;

/** A source of random bytes (tests inject a deterministic one). */
export type RandomSource = (size: number) => Uint8Array;

const POOL_SIZE = SERIAL_BYTES * 256;
let pool = Buffer.alloc(0);
let poolOffset = POOL_SIZE;

/** The default {@link RandomSource}: node:crypto CSPRNG, refilled in batches. */
export const defaultRandom: RandomSource = (size) => {
  if (size > POOL_SIZE) return randomFillSync(Buffer.alloc(size));
  if (poolOffset + size > pool.length) {
    pool = randomFillSync(Buffer.alloc(POOL_SIZE));
    poolOffset = 0;
  }
  const out = Buffer.from(pool.subarray(poolOffset, poolOffset + size));
  poolOffset += size;
  return out;
};

/**
 * Returns a random positive 128-bit serial as big-endian magnitude bytes (never zero,
 * leading zero octets removed) and its hex form.
 */
export function generateSerial(random: RandomSource): { bytes: Uint8Array; hex: string } {
  for (;;) {
    const r = random(SERIAL_BYTES);
    let start = 0;
    while (start < r.length && r[start] === 0) start++;
    if (start === r.length) continue;
    const bytes = r.subarray(start);
    return { bytes, hex: Buffer.from(bytes).toString("hex") };
  }
}

function invalid(code: string, message: string): MeshidError {
  return new MeshidError("invalid_argument", code, message);
}

const TRUST_DOMAIN_RE = /^[a-z0-9._-]+$/;
const PATH_SEGMENT_RE = /^[a-zA-Z0-9._-]+$/;
const VALID_WORKLOAD_ID_RE =
  /^[sS][pP][iI][fF][fF][eE]:\/\/([a-z0-9._-]{1,255})(?:\/(?!\.\.?(?:\/|$))[a-zA-Z0-9._-]+)+$/;

/**
 * Checks a workload SPIFFE ID string as the SPIFFE standard requires and returns its trust
 * domain. Throws `pki.svid.spiffe_id_invalid` (invalid_argument).
 */
export function checkWorkloadSpiffeId(spiffeId: string): string {
  // Common case in one regex (ASCII only, so length = bytes); the slow path explains failures.
  if (typeof spiffeId === "string" && spiffeId.length <= 2048) {
    const m = VALID_WORKLOAD_ID_RE.exec(spiffeId);
    if (m !== null) return m[1] as string;
  }
  const bad = (why: string): MeshidError =>
    invalid("pki.svid.spiffe_id_invalid", `invalid SPIFFE ID for an X509-SVID: ${why}`);
  if (typeof spiffeId !== "string") throw bad("not a string");
  if (Buffer.byteLength(spiffeId) > 2048) throw bad("longer than 2048 bytes");
  if (!/^spiffe:\/\//i.test(spiffeId)) throw bad('scheme must be "spiffe"');
  const rest = spiffeId.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const td = slash === -1 ? rest : rest.slice(0, slash);
  if (td.length === 0 || td.length > 255 || !TRUST_DOMAIN_RE.test(td)) {
    throw bad("trust domain must be lowercase [a-z0-9._-], 1–255 characters");
  }
  if (slash === -1 || slash === rest.length - 1) throw bad("a workload ID needs a non-empty path");
  for (const seg of rest.slice(slash + 1).split("/")) {
    if (seg === "" || seg === "." || seg === ".." || !PATH_SEGMENT_RE.test(seg)) {
      throw bad("path segments must be non-empty [a-zA-Z0-9._-], not '.' or '..'");
    }
  }
  return td;
}

/** Checks a trust domain name. Throws `pki.trust_domain.invalid` (invalid_argument). */
export function checkTrustDomain(trustDomain: string): void {
  if (
    typeof trustDomain !== "string" ||
    trustDomain.length === 0 ||
    trustDomain.length > 255 ||
    !TRUST_DOMAIN_RE.test(trustDomain)
  ) {
    throw invalid(
      "pki.trust_domain.invalid",
      "trust domain must be lowercase [a-z0-9._-], 1–255 characters",
    );
  }
}

const DNS_NAME_RE =
  /^(\*\.)?([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

/** Checks DNS SANs. Throws `pki.svid.dns_name_invalid` (invalid_argument). */
export function checkDnsNames(dnsNames: readonly string[]): void {
  for (const name of dnsNames) {
    if (typeof name !== "string" || name.length > 253 || !DNS_NAME_RE.test(name)) {
      throw invalid("pki.svid.dns_name_invalid", `invalid DNS name ${JSON.stringify(name)}`);
    }
  }
}

/**
 * Computes an SVID's validity: notBefore = now − 10 s, notAfter = min(now + ttl, issuer
 * notAfter), both truncated to whole seconds. Throws `pki.svid.ttl_invalid` (invalid_argument)
 * for a non-positive TTL and `pki.issuer.expired` (failed_precondition) when the issuer has
 * already expired.
 */
export function computeSvidValidity(params: {
  readonly ttlSeconds: number;
  readonly now: Date;
  readonly issuerNotAfter: Date;
}): { notBefore: Date; notAfter: Date } {
  const { ttlSeconds, now, issuerNotAfter } = params;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw invalid("pki.svid.ttl_invalid", "ttlSeconds must be a positive number");
  }
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) throw invalid("pki.svid.now_invalid", "now is not a valid Date");
  const notBefore = new Date(
    Math.floor((nowMs - NOT_BEFORE_BACKDATE_SECONDS * 1000) / 1000) * 1000,
  );
  const wanted = Math.floor((nowMs + ttlSeconds * 1000) / 1000) * 1000;
  const notAfter = new Date(Math.min(wanted, issuerNotAfter.getTime()));
  if (notAfter.getTime() <= nowMs) {
    throw new MeshidError(
      "failed_precondition",
      "pki.issuer.expired",
      "the issuing CA certificate has expired; nothing can be issued under it",
    );
  }
  return { notBefore, notAfter };
}

/** Resolves the subject public key of an issuance to SPKI DER plus its key type. */
export function resolveSubjectKey(publicKey: KeyObject | Uint8Array): {
  spkiDer: Uint8Array;
  keyType: KeyType;
} {
  if (publicKey instanceof Uint8Array) {
    return { spkiDer: publicKey, keyType: importSpkiFast(publicKey).keyType };
  }
  return spkiFromKeyObject(publicKey);
}

/** Key usage bits for a leaf: digitalSignature, plus keyEncipherment for RSA subject keys. */
export function leafKeyUsage(keyType: KeyType): {
  digitalSignature: true;
  keyEncipherment: boolean;
} {
  return { digitalSignature: true, keyEncipherment: keyType.startsWith("rsa") };
}

/**
 * Returns the trust domain an issuer certificate is restricted to: the one named by its
 * `spiffe://<td>` URI SAN, or undefined when it has none (e.g. an upstream CA).
 */
export function issuerTrustDomain(uris: readonly string[]): string | undefined {
  for (const uri of uris) {
    const m = /^spiffe:\/\/([^/]+)$/i.exec(uri);
    if (m !== null) return m[1];
  }
  return undefined;
}

/**
 * Checks that a workload's trust domain is the issuer's. Throws
 * `pki.svid.trust_domain_mismatch` (invalid_argument) otherwise.
 */
export function checkSameTrustDomain(
  spiffeIdTrustDomain: string,
  issuerTd: string | undefined,
): void {
  if (issuerTd !== undefined && issuerTd !== spiffeIdTrustDomain) {
    throw invalid(
      "pki.svid.trust_domain_mismatch",
      `SPIFFE ID is in trust domain ${JSON.stringify(spiffeIdTrustDomain)} but the issuer is ` +
        `the CA of ${JSON.stringify(issuerTd)}`,
    );
  }
}
