// reflect-metadata must be loaded before @peculiar/x509 (its ASN.1 schemas use decorators).
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { type Bundle } from "./bundle";
import { splitDerCertificates } from "./der-certificates";
import { SpiffeErrorCode, invalid, quote } from "./errors";
import { type SpiffeId, tryParseSpiffeId } from "./spiffe-id";
import { type TrustDomain } from "./trust-domain";

/** Parameters of {@link validateX509Svid}. */
export interface ValidateX509SvidParams {
  /** The SVID chain, DER each, leaf first, then intermediates (the root may be included). */
  chain: readonly Uint8Array[];
  /** Trust bundle of the trust domain the leaf must belong to. */
  bundle: Bundle;
  /** Instant at which every certificate must be valid. */
  at: Date;
}

/** Result of a successful {@link validateX509Svid}. */
export interface ValidatedX509Svid {
  /** The leaf's SPIFFE ID (a workload ID, never a trust-domain ID). */
  spiffeId: SpiffeId;
  /** The leaf's notAfter. */
  notAfter: Date;
  /** The leaf's notBefore. */
  notBefore: Date;
  /** The parsed leaf certificate. */
  leaf: x509.X509Certificate;
}

/** Where a certificate sits, for error messages and `details`. */
interface Position {
  /** Index in the chain (0 = leaf); -1 for a bundle authority. */
  index: number;
}

function svidError(rule: string, reason: string, pos?: Position, cause?: unknown) {
  const where =
    pos === undefined ? "" : pos.index < 0 ? "bundle authority: " : `certificate ${pos.index}: `;
  return invalid(
    SpiffeErrorCode.svidInvalid,
    rule,
    `invalid X509-SVID: ${where}${reason}`,
    pos === undefined ? {} : { index: pos.index },
    cause,
  );
}

function single<T extends x509.Extension>(
  cert: x509.X509Certificate,
  type: new (raw: ArrayBuffer) => T,
  name: string,
  pos: Position,
): T | undefined {
  const found = cert.getExtensions(type);
  if (found.length > 1) {
    throw svidError("malformed", `the ${name} extension appears ${found.length} times`, pos);
  }
  return found[0];
}

function uriSans(cert: x509.X509Certificate, pos: Position): string[] {
  const san = single(cert, x509.SubjectAlternativeNameExtension, "subjectAltName", pos);
  return (san?.names.items ?? []).filter((n) => n.type === "url").map((n) => n.value);
}

function hasFlag(usages: number, flag: x509.KeyUsageFlags): boolean {
  return (usages & flag) !== 0;
}

/**
 * Checks the X509-SVID leaf profile and returns the leaf's SPIFFE ID: exactly one URI SAN
 * holding a SPIFFE ID with a non-empty path (in `trustDomain` when given); basicConstraints
 * cA=false (or absent); keyUsage present, critical, with digitalSignature and without
 * keyCertSign or cRLSign; extendedKeyUsage, when present, with both serverAuth and clientAuth.
 * Does not check validity dates or signatures.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.svid.invalid` with `details.rule` one of
 *   `leaf-uri-san-count`, `leaf-spiffe-id`, `leaf-trust-domain`, `leaf-ca`,
 *   `leaf-key-usage-missing`, `leaf-key-usage-not-critical`, `leaf-digital-signature`,
 *   `leaf-key-cert-sign`, `leaf-crl-sign`, `leaf-eku`, `malformed`.
 */
export function validateX509SvidLeaf(
  leaf: x509.X509Certificate,
  trustDomain?: TrustDomain,
): SpiffeId {
  const pos = { index: 0 };
  const uris = uriSans(leaf, pos);
  if (uris.length !== 1) {
    throw svidError(
      "leaf-uri-san-count",
      `leaf must have exactly one URI SAN, found ${uris.length}`,
      pos,
    );
  }
  const uri = uris[0] ?? "";
  const parsed = tryParseSpiffeId(uri);
  if (!parsed.ok) {
    throw svidError(
      "leaf-spiffe-id",
      `leaf URI SAN is not a valid SPIFFE ID: ${parsed.error.message}`,
      pos,
      parsed.error,
    );
  }
  const id = parsed.id;
  if (id.isTrustDomainId()) {
    throw svidError("leaf-spiffe-id", `leaf SPIFFE ID ${quote(uri)} has no path`, pos);
  }
  if (trustDomain !== undefined && !id.memberOf(trustDomain)) {
    throw svidError(
      "leaf-trust-domain",
      `leaf SPIFFE ID ${quote(id.toString())} is not in trust domain ${quote(trustDomain.name)}`,
      pos,
    );
  }
  const bc = single(leaf, x509.BasicConstraintsExtension, "basicConstraints", pos);
  if (bc?.ca === true) {
    throw svidError("leaf-ca", "leaf must not be a CA (basicConstraints cA=true)", pos);
  }
  const ku = single(leaf, x509.KeyUsagesExtension, "keyUsage", pos);
  if (ku === undefined) {
    throw svidError("leaf-key-usage-missing", "leaf has no keyUsage extension", pos);
  }
  if (!ku.critical) {
    throw svidError("leaf-key-usage-not-critical", "leaf keyUsage must be critical", pos);
  }
  if (!hasFlag(ku.usages, x509.KeyUsageFlags.digitalSignature)) {
    throw svidError("leaf-digital-signature", "leaf keyUsage lacks digitalSignature", pos);
  }
  if (hasFlag(ku.usages, x509.KeyUsageFlags.keyCertSign)) {
    throw svidError("leaf-key-cert-sign", "leaf keyUsage must not have keyCertSign", pos);
  }
  if (hasFlag(ku.usages, x509.KeyUsageFlags.cRLSign)) {
    throw svidError("leaf-crl-sign", "leaf keyUsage must not have cRLSign", pos);
  }
  const eku = single(leaf, x509.ExtendedKeyUsageExtension, "extendedKeyUsage", pos);
  if (eku !== undefined) {
    const usages = eku.usages.map(String);
    const missing = [
      [x509.ExtendedKeyUsage.serverAuth, "serverAuth"],
      [x509.ExtendedKeyUsage.clientAuth, "clientAuth"],
    ]
      .filter(([oid]) => !usages.includes(oid as string))
      .map(([, label]) => label);
    if (missing.length > 0) {
      throw svidError(
        "leaf-eku",
        `leaf extendedKeyUsage must have serverAuth and clientAuth, lacks ${missing.join(" and ")}`,
        pos,
      );
    }
  }
  return id;
}

/**
 * Checks the SPIFFE signing-certificate profile (intermediate or root): basicConstraints
 * cA=true, keyUsage with keyCertSign (cRLSign allowed), and a SPIFFE ID URI SAN, if any,
 * without a path. `index` is the certificate's position in its chain, for messages (default 1).
 *
 * @throws MeshidError `invalid_argument` / `spiffe.svid.invalid` with `details.rule`
 *   `signing-not-ca`, `signing-key-cert-sign`, `signing-spiffe-id-path` or `malformed`.
 */
export function validateSigningCertificate(cert: x509.X509Certificate, index = 1): void {
  const pos = { index };
  const bc = single(cert, x509.BasicConstraintsExtension, "basicConstraints", pos);
  if (bc?.ca !== true) {
    throw svidError(
      "signing-not-ca",
      "signing certificate must have basicConstraints cA=true",
      pos,
    );
  }
  const ku = single(cert, x509.KeyUsagesExtension, "keyUsage", pos);
  if (ku === undefined || !hasFlag(ku.usages, x509.KeyUsageFlags.keyCertSign)) {
    throw svidError(
      "signing-key-cert-sign",
      "signing certificate keyUsage must have keyCertSign",
      pos,
    );
  }
  for (const uri of uriSans(cert, pos)) {
    const parsed = tryParseSpiffeId(uri);
    if (parsed.ok && !parsed.id.isTrustDomainId()) {
      throw svidError(
        "signing-spiffe-id-path",
        `signing certificate SPIFFE ID ${quote(uri)} must not have a path`,
        pos,
      );
    }
  }
}

function parseCertificate(der: Uint8Array, pos: Position): x509.X509Certificate {
  let parts: Uint8Array[];
  try {
    parts = splitDerCertificates(der);
  } catch (error) {
    throw svidError("malformed", "not DER", pos, error);
  }
  if (parts.length !== 1) {
    throw svidError("malformed", `expected one certificate, found ${parts.length}`, pos);
  }
  try {
    return new x509.X509Certificate(der);
  } catch (error) {
    throw svidError("malformed", "not a parseable X.509 certificate", pos, error);
  }
}

function checkValidity(cert: x509.X509Certificate, at: Date, pos: Position): void {
  if (at.getTime() > cert.notAfter.getTime()) {
    throw svidError(
      "expired",
      `expired at ${cert.notAfter.toISOString()} (checked at ${at.toISOString()})`,
      pos,
    );
  }
  if (at.getTime() < cert.notBefore.getTime()) {
    throw svidError(
      "not-yet-valid",
      `not valid before ${cert.notBefore.toISOString()} (checked at ${at.toISOString()})`,
      pos,
    );
  }
}

function checkPathLength(cert: x509.X509Certificate, intermediatesBelow: number, pos: Position) {
  const limit = cert.getExtension(x509.BasicConstraintsExtension)?.pathLength;
  if (limit !== undefined && intermediatesBelow > limit) {
    throw svidError(
      "path-len",
      `pathLenConstraint ${limit} allows ${limit} intermediate(s) below it, found ${intermediatesBelow}`,
      pos,
    );
  }
}

async function signedBy(
  child: x509.X509Certificate,
  parent: x509.X509Certificate,
): Promise<boolean> {
  if (child.issuer !== parent.subject) return false;
  try {
    return await child.verify(
      { publicKey: parent.publicKey, signatureOnly: true },
      globalThis.crypto,
    );
  } catch {
    // An unsupported or mismatched algorithm means the signature cannot be valid.
    return false;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Validates an X509-SVID chain against a trust bundle at instant `at`, applying every SPIFFE
 * rule: the leaf profile ({@link validateX509SvidLeaf}, in the bundle's trust domain), the
 * signing profile for every other certificate ({@link validateSigningCertificate}), signatures
 * along the chain, a trust anchor in the bundle (the chain may end at an intermediate whose
 * issuer is in the bundle, or include a bundle authority itself), pathLenConstraint of every
 * signing certificate and of the anchor, and validity at `at` of every certificate including
 * the anchor.
 *
 * @throws MeshidError `invalid_argument` / `spiffe.svid.invalid` with `details.rule` (leaf and
 *   signing rules above, `signature`, `untrusted`, `path-len`, `expired`, `not-yet-valid`,
 *   `malformed`) and `details.index` (0 = leaf, -1 = bundle authority) when a certificate is
 *   at fault.
 */
export async function validateX509Svid(params: ValidateX509SvidParams): Promise<ValidatedX509Svid> {
  const { chain, bundle, at } = params;
  if (chain.length === 0) {
    throw svidError("malformed", "the certificate chain is empty");
  }
  const certs = chain.map((der, index) => parseCertificate(der, { index }));
  const leaf = certs[0] as x509.X509Certificate;
  const spiffeId = validateX509SvidLeaf(leaf, bundle.trustDomain);
  certs.slice(1).forEach((cert, i) => validateSigningCertificate(cert, i + 1));

  // The chain is trusted at the first signing certificate that is itself a bundle authority, or
  // else at a bundle authority that signed its last certificate. The leaf never anchors itself:
  // pinning an SVID in a bundle must not bypass the signature check.
  const anchoredAt = chain.findIndex(
    (der, i) => i > 0 && bundle.x509Authorities.some((a) => sameBytes(a, der)),
  );
  const top = anchoredAt < 0 ? certs.length - 1 : anchoredAt;
  for (let i = 0; i < top; i++) {
    const child = certs[i] as x509.X509Certificate;
    const parent = certs[i + 1] as x509.X509Certificate;
    if (!(await signedBy(child, parent))) {
      throw svidError(
        "signature",
        `not signed by certificate ${i + 1} (issuer ${quote(child.issuer)}, next subject ${quote(parent.subject)})`,
        { index: i },
      );
    }
  }
  let anchor: x509.X509Certificate | undefined;
  if (anchoredAt < 0) {
    const last = certs[top] as x509.X509Certificate;
    for (const der of bundle.x509Authorities) {
      let authority: x509.X509Certificate;
      try {
        authority = new x509.X509Certificate(der);
      } catch {
        continue; // createBundle already rejects these; never trust what cannot be parsed.
      }
      if (await signedBy(last, authority)) {
        anchor = authority;
        break;
      }
    }
    if (anchor === undefined) {
      throw svidError(
        "untrusted",
        `issuer ${quote(last.issuer)} is not an authority of trust domain ${quote(bundle.trustDomain.name)}, or its signature does not verify`,
        { index: top },
      );
    }
  }

  for (let i = 1; i <= top; i++) {
    checkPathLength(certs[i] as x509.X509Certificate, i - 1, { index: i });
  }
  if (anchor !== undefined) {
    checkPathLength(anchor, top, { index: -1 });
  }
  for (let i = 0; i <= top; i++) {
    checkValidity(certs[i] as x509.X509Certificate, at, { index: i });
  }
  if (anchor !== undefined) {
    checkValidity(anchor, at, { index: -1 });
  }
  return { spiffeId, notAfter: leaf.notAfter, notBefore: leaf.notBefore, leaf };
}
