import { X509Certificate, createPublicKey } from "node:crypto";
import { type MeshidError, isMeshidError } from "@meshid/errors";
import { concatDer, splitDerCertificates } from "./der-certificates";
import { SpiffeErrorCode, invalid } from "./errors";
import { type TrustDomain, parseTrustDomain } from "./trust-domain";

/** A JWT-SVID signing authority of a trust bundle. */
export interface JwtAuthority {
  /** Key ID (`kid`) that JWT-SVIDs name in their header; non-empty. */
  keyId: string;
  /** Public key as SubjectPublicKeyInfo DER. */
  publicKey: Uint8Array;
}

/** A SPIFFE trust bundle: the authorities of one trust domain. Frozen once created. */
export interface Bundle {
  /** Trust domain the authorities belong to. */
  trustDomain: TrustDomain;
  /** X.509 authorities (CA certificates), DER each. */
  x509Authorities: readonly Uint8Array[];
  /** JWT authorities. */
  jwtAuthorities: readonly JwtAuthority[];
  /** `spiffe_sequence`: bumped on every change; non-negative integer. */
  sequenceNumber: number;
  /** `spiffe_refresh_hint` in seconds; 0 means no hint. */
  refreshHintSeconds: number;
}

/** Parameters of {@link createBundle}. */
export interface CreateBundleParams {
  /** Trust domain, as object or name (`example.org` or `spiffe://example.org`). */
  trustDomain: TrustDomain | string;
  /** X.509 authorities, DER each; default none. */
  x509Authorities?: readonly Uint8Array[];
  /** JWT authorities; default none. Key IDs must be unique. */
  jwtAuthorities?: readonly JwtAuthority[];
  /** Sequence number; default 0. */
  sequenceNumber?: number;
  /** Refresh hint in seconds; default 0 (no hint). */
  refreshHintSeconds?: number;
}

function bundleError(
  rule: string,
  reason: string,
  extra: Record<string, number> = {},
  cause?: unknown,
): MeshidError {
  return invalid(
    SpiffeErrorCode.bundleInvalid,
    rule,
    `invalid trust bundle: ${reason}`,
    extra,
    cause,
  );
}

/**
 * Checks that `der` is exactly one parseable X.509 certificate.
 * @internal
 */
export function checkCertificateDer(der: Uint8Array, index: number): void {
  let parts: Uint8Array[];
  try {
    parts = splitDerCertificates(der);
  } catch (error) {
    throw bundleError(
      "certificate",
      `X.509 authority ${index} is not DER: ${(error as Error).message}`,
      { index },
      error,
    );
  }
  if (parts.length !== 1) {
    throw bundleError(
      "certificate",
      `X.509 authority ${index} holds ${parts.length} certificates, expected 1`,
      { index },
    );
  }
  try {
    new X509Certificate(der);
  } catch (error) {
    throw bundleError(
      "certificate",
      `X.509 authority ${index} is not a valid certificate`,
      { index },
      error,
    );
  }
}

function checkCount(value: number, what: string, rule: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw bundleError(rule, `${what} must be a non-negative integer, got ${value}`);
  }
}

/**
 * Creates a validated, frozen {@link Bundle}; byte arrays are copied.
 *
 * @throws MeshidError `spiffe.trust_domain.invalid` for a bad trust domain name, or
 *   `invalid_argument` / `spiffe.bundle.invalid` with `details.rule` `certificate`,
 *   `jwt-key-id`, `jwt-key-id-duplicate`, `jwt-key`, `sequence` or `refresh-hint`.
 */
export function createBundle(params: CreateBundleParams): Bundle {
  const trustDomain =
    typeof params.trustDomain === "string"
      ? parseTrustDomain(params.trustDomain)
      : params.trustDomain;
  const sequenceNumber = params.sequenceNumber ?? 0;
  const refreshHintSeconds = params.refreshHintSeconds ?? 0;
  checkCount(sequenceNumber, "sequence number", "sequence");
  checkCount(refreshHintSeconds, "refresh hint", "refresh-hint");
  const x509Authorities = (params.x509Authorities ?? []).map((der, index) => {
    checkCertificateDer(der, index);
    return Uint8Array.from(der);
  });
  const seen = new Set<string>();
  const jwtAuthorities = (params.jwtAuthorities ?? []).map((a, index) => {
    if (typeof a.keyId !== "string" || a.keyId === "") {
      throw bundleError("jwt-key-id", `JWT authority ${index} has an empty key ID`, { index });
    }
    if (seen.has(a.keyId)) {
      throw bundleError(
        "jwt-key-id-duplicate",
        `JWT authority ${index} repeats key ID ${JSON.stringify(a.keyId)}`,
        { index },
      );
    }
    seen.add(a.keyId);
    try {
      createPublicKey({ key: Buffer.from(a.publicKey), format: "der", type: "spki" });
    } catch (error) {
      throw bundleError(
        "jwt-key",
        `JWT authority ${index} public key is not SPKI DER`,
        { index },
        error,
      );
    }
    return Object.freeze({ keyId: a.keyId, publicKey: Uint8Array.from(a.publicKey) });
  });
  return Object.freeze({
    trustDomain,
    x509Authorities: Object.freeze(x509Authorities),
    jwtAuthorities: Object.freeze(jwtAuthorities),
    sequenceNumber,
    refreshHintSeconds,
  });
}

/** Returns the bundle's X.509 authorities as concatenated DER (the Workload API `bundle` form). */
export function bundleDer(b: Bundle): Uint8Array {
  return concatDer(b.x509Authorities);
}

/** Options shared by the bundle decoders ({@link bundleFromDer}, `bundleFromPem`). */
export interface BundleFromCertificatesOptions {
  /** JWT authorities to include; default none. */
  jwtAuthorities?: readonly JwtAuthority[];
  /** Sequence number; default 0. */
  sequenceNumber?: number;
  /** Refresh hint in seconds; default 0 (no hint). */
  refreshHintSeconds?: number;
}

/**
 * Builds a bundle from concatenated DER CA certificates (Workload API form), the inverse of
 * {@link bundleDer}.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.bundle.invalid` (`details.rule` `der` for a
 *   malformed buffer, `certificate` for an unparseable certificate, and those of
 *   {@link createBundle}).
 */
export function bundleFromDer(
  trustDomain: TrustDomain | string,
  der: Uint8Array,
  opts: BundleFromCertificatesOptions = {},
): Bundle {
  let certs: Uint8Array[];
  try {
    certs = splitDerCertificates(der);
  } catch (error) {
    if (!isMeshidError(error)) throw error;
    throw bundleError("der", `DER certificates are malformed: ${error.message}`, {}, error);
  }
  return createBundle({ trustDomain, x509Authorities: certs, ...opts });
}
