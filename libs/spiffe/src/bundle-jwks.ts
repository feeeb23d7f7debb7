import { type JsonWebKey, X509Certificate, createPublicKey } from "node:crypto";
import { type Bundle, type JwtAuthority, checkCertificateDer, createBundle } from "./bundle";
import { SpiffeErrorCode, invalid } from "./errors";
import { type TrustDomain } from "./trust-domain";

/** `use` of a JWK holding an X.509 authority. */
export const JWK_USE_X509_SVID = "x509-svid";
/** `use` of a JWK holding a JWT authority. */
export const JWK_USE_JWT_SVID = "jwt-svid";

/** Members of a JWK that carry private or secret key material; never allowed in a bundle. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;
/** Members of a public JWK that describe the key itself. */
const KEY_MEMBERS = ["kty", "crv", "x", "y", "n", "e"] as const;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Returns the public-key members (`kty`, `crv`, `x`, `y`, `n`, `e`) of a node KeyObject JWK. */
function publicJwk(jwk: JsonWebKey): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of KEY_MEMBERS) {
    const v = jwk[m];
    if (typeof v === "string") out[m] = v;
  }
  return out;
}

/**
 * Serialises a bundle as a SPIFFE bundle JWK Set: `keys` with one `use: "x509-svid"` JWK per
 * X.509 authority (public key members plus exactly one `x5c`, no `kid`) and one
 * `use: "jwt-svid"` JWK with `kid` per JWT authority, then `spiffe_sequence` and, when
 * non-zero, `spiffe_refresh_hint` (seconds). Returns compact JSON.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.bundle.invalid` (`details.rule` `key`) when
 *   an authority's key type has no JWK form.
 */
export function bundleToJwks(b: Bundle): string {
  const keys: Record<string, unknown>[] = [];
  for (const [index, der] of b.x509Authorities.entries()) {
    let jwk: Record<string, string>;
    try {
      jwk = publicJwk(new X509Certificate(der).publicKey.export({ format: "jwk" }));
    } catch (error) {
      throw invalid(
        SpiffeErrorCode.bundleInvalid,
        "key",
        `cannot write JWKS trust bundle: X.509 authority ${index} has a key type JWK cannot express`,
        { index },
        error,
      );
    }
    keys.push({ use: JWK_USE_X509_SVID, ...jwk, x5c: [Buffer.from(der).toString("base64")] });
  }
  for (const a of b.jwtAuthorities) {
    const key = createPublicKey({ key: Buffer.from(a.publicKey), format: "der", type: "spki" });
    keys.push({ use: JWK_USE_JWT_SVID, kid: a.keyId, ...publicJwk(key.export({ format: "jwk" })) });
  }
  const doc: Record<string, unknown> = { keys, spiffe_sequence: b.sequenceNumber };
  if (b.refreshHintSeconds > 0) doc.spiffe_refresh_hint = b.refreshHintSeconds;
  return JSON.stringify(doc);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates a SPIFFE bundle JWK Set (JSON text or UTF-8 bytes). `keys` is required
 * (may be empty); `spiffe_sequence` and `spiffe_refresh_hint` are optional non-negative
 * integers (default 0). Keys with an unknown `use` are skipped, as the SPIFFE bundle format
 * requires. X.509 keys need exactly one `x5c` certificate, no `kid`, and public key members
 * matching the certificate; JWT keys need a unique non-empty `kid` and a valid public key.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.bundle.invalid` with `details.rule` one of
 *   `json`, `keys`, `sequence`, `refresh-hint`, `key`, `use`, `x5c-count`, `x5c-encoding`,
 *   `certificate`, `x509-kid`, `key-mismatch`, `private-key`, `jwt-key-id`,
 *   `jwt-key-id-duplicate`, `jwt-key`; per-key errors carry `details.index`.
 */
export function bundleFromJwks(
  trustDomain: TrustDomain | string,
  json: string | Uint8Array,
): Bundle {
  const text = typeof json === "string" ? json : new TextDecoder().decode(json);
  const fail = (rule: string, reason: string, index?: number, cause?: unknown) =>
    invalid(
      SpiffeErrorCode.bundleInvalid,
      rule,
      `invalid JWKS trust bundle: ${index === undefined ? "" : `key ${index}: `}${reason}`,
      index === undefined ? {} : { index },
      cause,
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw fail("json", "not valid JSON", undefined, error);
  }
  if (!isObject(doc)) throw fail("json", "top level must be a JSON object");
  if (!Array.isArray(doc.keys)) throw fail("keys", '"keys" must be an array');
  const count = (member: string, rule: string): number => {
    const v = doc[member];
    if (v === undefined) return 0;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw fail(rule, `"${member}" must be a non-negative integer`);
    }
    return v;
  };
  const sequenceNumber = count("spiffe_sequence", "sequence");
  const refreshHintSeconds = count("spiffe_refresh_hint", "refresh-hint");

  const x509Authorities: Uint8Array[] = [];
  const jwtAuthorities: JwtAuthority[] = [];
  const kids = new Set<string>();
  (doc.keys as unknown[]).forEach((key, index) => {
    if (!isObject(key)) throw fail("key", "must be a JSON object", index);
    if (typeof key.use !== "string") throw fail("use", '"use" must be a string', index);
    if (key.use !== JWK_USE_X509_SVID && key.use !== JWK_USE_JWT_SVID) return;
    for (const m of PRIVATE_MEMBERS) {
      if (m in key) throw fail("private-key", `member "${m}" holds private key material`, index);
    }
    if (typeof key.kty !== "string" || key.kty === "") {
      throw fail("key", '"kty" must be a non-empty string', index);
    }
    if (key.use === JWK_USE_X509_SVID) {
      x509Authorities.push(parseX509Key(key, index, fail));
      return;
    }
    if (typeof key.kid !== "string" || key.kid === "") {
      throw fail("jwt-key-id", 'a jwt-svid key needs a non-empty "kid"', index);
    }
    if (kids.has(key.kid)) {
      throw fail("jwt-key-id-duplicate", `"kid" ${JSON.stringify(key.kid)} is repeated`, index);
    }
    kids.add(key.kid);
    let spki: Buffer;
    try {
      spki = createPublicKey({ key: key as JsonWebKey, format: "jwk" }).export({
        format: "der",
        type: "spki",
      });
    } catch (error) {
      throw fail("jwt-key", `not a valid ${key.kty} public key`, index, error);
    }
    jwtAuthorities.push({ keyId: key.kid, publicKey: new Uint8Array(spki) });
  });
  return createBundle({
    trustDomain,
    x509Authorities,
    jwtAuthorities,
    sequenceNumber,
    refreshHintSeconds,
  });
}

function parseX509Key(
  key: Record<string, unknown>,
  index: number,
  fail: (rule: string, reason: string, index?: number, cause?: unknown) => Error,
): Uint8Array {
  if ("kid" in key) throw fail("x509-kid", 'an x509-svid key must not have a "kid"', index);
  const x5c = key.x5c;
  if (!Array.isArray(x5c) || x5c.length !== 1) {
    const n = Array.isArray(x5c) ? x5c.length : 0;
    throw fail(
      "x5c-count",
      `an x509-svid key needs exactly one "x5c" certificate, got ${n}`,
      index,
    );
  }
  const b64: unknown = x5c[0];
  if (typeof b64 !== "string" || b64 === "" || b64.length % 4 !== 0 || !BASE64.test(b64)) {
    throw fail("x5c-encoding", '"x5c" must hold standard base64 (not base64url)', index);
  }
  const der = new Uint8Array(Buffer.from(b64, "base64"));
  checkCertificateDer(der, index);
  let certKey: Record<string, string>;
  try {
    certKey = publicJwk(new X509Certificate(der).publicKey.export({ format: "jwk" }));
  } catch (error) {
    throw fail("certificate", '"x5c" is not a valid X.509 certificate', index, error);
  }
  for (const [member, value] of Object.entries(certKey)) {
    if (key[member] !== value) {
      throw fail(
        "key-mismatch",
        `member "${member}" does not match the public key of the "x5c" certificate`,
        index,
      );
    }
  }
  return der;
}
