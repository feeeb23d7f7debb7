import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { readCertificateInfo } from "./certificate-info";
import { readCsrParts, verifyCsrParts } from "./csr";
import { BOOLEAN_TRUE, ctx, NULL, octetString, oid, seq } from "./der";
import { keyTypeOf, type KeyType } from "./keys";
import { OID, readSpki, signingAlgorithmFor } from "./spki";
import {
  checkDnsNames,
  checkSameTrustDomain,
  issuerTrustDomain,
  checkWorkloadSpiffeId,
  computeSvidValidity,
  defaultRandom,
  generateSerial,
  resolveSubjectKey,
  type IssuedX509Svid,
  type IssueX509SvidParams,
  type RandomSource,
} from "./svid-profile";

/** Dependencies of {@link createX509SvidIssuer}. */
export interface X509SvidIssuerDeps {
  /** The signing CA certificate, DER. Must be a CA (basicConstraints cA=true). */
  readonly issuerCertDer: Uint8Array;
  /** The signing CA's private key; must match the certificate's public key. */
  readonly issuerPrivateKey: KeyObject;
  /** Random source for serial numbers. Default: node:crypto CSPRNG (batched). */
  readonly random?: RandomSource;
}

/** Parameters of {@link X509SvidIssuer.issueFromCsr}: the issuance without the public key. */
export type IssueX509SvidFromCsrParams = Omit<IssueX509SvidParams, "publicKey">;

/** Issues X509-SVIDs under one CA certificate, on a precomputed fast path. */
export interface X509SvidIssuer {
  /** The issuer certificate's notAfter: no SVID outlives it. */
  readonly issuerNotAfter: Date;
  /**
   * Issues an X509-SVID for `params.publicKey`. Throws invalid_argument (`pki.svid.*`,
   * `pki.key.*`) or failed_precondition (`pki.issuer.expired`).
   */
  issue(params: IssueX509SvidParams): IssuedX509Svid;
  /**
   * Parses a PKCS#10 CSR (DER), checks its proof of possession and issues an X509-SVID for
   * its key. The CSR's own subject and SANs are ignored: `params` decides. Throws
   * `pki.csr.malformed` / `pki.csr.signature` / `pki.key.unsupported` (invalid_argument) plus
   * the errors of {@link X509SvidIssuer.issue}.
   */
  issueFromCsr(csrDer: Uint8Array, params: IssueX509SvidFromCsrParams): IssuedX509Svid;
}

function extension(id: string, critical: boolean, valueDer: Uint8Array): Buffer {
  return critical
    ? seq(oid(id), BOOLEAN_TRUE, octetString(valueDer))
    : seq(oid(id), octetString(valueDer));
}

// keyUsage BIT STRINGs: digitalSignature (bit 0); digitalSignature + keyEncipherment (bit 2).
const KU_EC = extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x07, 0x80]));
const KU_RSA = extension(OID.keyUsage, true, Buffer.from([0x03, 0x02, 0x05, 0xa0]));
const BASIC_CONSTRAINTS_LEAF = extension(OID.basicConstraints, true, seq());
const EKU_SERVER_CLIENT = extension(
  OID.extKeyUsage,
  false,
  seq(oid(OID.serverAuth), oid(OID.clientAuth)),
);
const VERSION_V3 = ctx(0, Buffer.from([0x02, 0x01, 0x02]), true);
const EMPTY_NAME = seq();
const SAN_HEAD = Buffer.concat([oid(OID.subjectAltName), BOOLEAN_TRUE]);

/** Length of a DER header for content of `len` bytes (certificates stay below 64 KiB). */
function hdrLen(len: number): number {
  return len < 0x80 ? 2 : len < 0x100 ? 3 : 4;
}

function writeHdr(buf: Buffer, o: number, tag: number, len: number): number {
  buf[o++] = tag;
  if (len < 0x80) {
    buf[o++] = len;
  } else if (len < 0x100) {
    buf[o++] = 0x81;
    buf[o++] = len;
  } else if (len < 0x10000) {
    buf[o++] = 0x82;
    buf[o++] = len >> 8;
    buf[o++] = len & 0xff;
  } else {
    throw new RangeError("certificate too large");
  }
  return o;
}

function isUtcTimeYear(date: Date): boolean {
  const y = date.getUTCFullYear();
  return y >= 1950 && y < 2050;
}

/** Length of the TLV {@link writeTime} writes. */
function timeLen(date: Date): number {
  return isUtcTimeYear(date) ? 15 : 17;
}

function write2(buf: Buffer, o: number, n: number): number {
  buf[o] = 0x30 + Math.floor(n / 10);
  buf[o + 1] = 0x30 + (n % 10);
  return o + 2;
}

/** Writes an X.509 Time: UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280). */
function writeTime(buf: Buffer, o: number, date: Date): number {
  const y = date.getUTCFullYear();
  if (isUtcTimeYear(date)) {
    buf[o++] = 0x17;
    buf[o++] = 13;
    o = write2(buf, o, y % 100);
  } else {
    buf[o++] = 0x18;
    buf[o++] = 15;
    o = write2(buf, o, Math.floor(y / 100));
    o = write2(buf, o, y % 100);
  }
  o = write2(buf, o, date.getUTCMonth() + 1);
  o = write2(buf, o, date.getUTCDate());
  o = write2(buf, o, date.getUTCHours());
  o = write2(buf, o, date.getUTCMinutes());
  o = write2(buf, o, date.getUTCSeconds());
  buf[o++] = 0x5a; // "Z"
  return o;
}

const SKI_PREFIX = Buffer.concat([
  Buffer.from([0x30, 0x1d]),
  oid(OID.subjectKeyIdentifier),
  Buffer.from([0x04, 0x16, 0x04, 0x14]),
]);

function keyMismatch(cause?: unknown): MeshidError {
  return new MeshidError(
    "failed_precondition",
    "pki.issuer.key_mismatch",
    "the issuer private key does not match the issuer certificate",
    { cause },
  );
}

/**
 * Creates the fast X509-SVID issuer for one CA: the constant parts of the TBSCertificate
 * (version, signature algorithm, issuer Name, AKI and the fixed extensions) are encoded once;
 * each issuance only writes serial, validity, SPKI, SKI and SANs with a tiny DER writer and
 * signs with `crypto.sign` (P-256 → ECDSA-SHA256, P-384 → ECDSA-SHA384, RSA →
 * sha256WithRSAEncryption). Certificates are equivalent to {@link issueX509SvidGeneric}'s.
 * Throws `pki.issuer.not_ca` / `pki.issuer.key_mismatch` (failed_precondition),
 * `pki.certificate.malformed` and `pki.key.unsupported` (invalid_argument).
 */
export function createX509SvidIssuer(deps: X509SvidIssuerDeps): X509SvidIssuer {
  const info = readCertificateInfo(deps.issuerCertDer);
  if (info.basicConstraints?.ca !== true) {
    throw new MeshidError(
      "failed_precondition",
      "pki.issuer.not_ca",
      "the issuer certificate is not a CA (basicConstraints cA is not true)",
    );
  }
  const issuerKey = deps.issuerPrivateKey;
  const issuerKeyType = keyTypeOf(issuerKey);
  const alg = signingAlgorithmFor(issuerKeyType);
  // Refuse a key that cannot sign for this certificate now, not at the first issuance.
  try {
    const probe = Buffer.from("meshid issuer key check");
    const certKey = createPublicKey({
      key: Buffer.from(info.spkiDer),
      format: "der",
      type: "spki",
    });
    if (!verify(alg.hash, probe, certKey, sign(alg.hash, probe, issuerKey))) throw keyMismatch();
  } catch (err) {
    if (err instanceof MeshidError) throw err;
    throw keyMismatch(err);
  }
  const random = deps.random ?? defaultRandom;
  const sigAlgDer = alg.nullParams ? seq(oid(alg.oid), NULL) : seq(oid(alg.oid));
  // RSA signatures are exactly the modulus size; ECDSA DER signatures are at most 72/104 bytes.
  const issuerSignatureMax =
    issuerKeyType === "rsa-4096" ? 512 : issuerKeyType === "rsa-2048" ? 256 : 72;
  const afterSerial = Buffer.concat([sigAlgDer, Buffer.from(info.subjectNameDer)]);
  const aki = extension(OID.authorityKeyIdentifier, false, seq(ctx(0, info.subjectKeyId, false)));
  const issuerNotAfter = info.notAfter;

  const constExtsEc = Buffer.concat([BASIC_CONSTRAINTS_LEAF, KU_EC, EKU_SERVER_CLIENT]);
  const constExtsRsa = Buffer.concat([BASIC_CONSTRAINTS_LEAF, KU_RSA, EKU_SERVER_CLIENT]);
  const tailExts = Buffer.concat([aki]);

  // Everything below writes the certificate into one buffer: the TBSCertificate is laid out
  // after room for the outer header, signed in place, then followed by the signature.
  function build(
    spiffeId: string,
    dnsNames: readonly string[],
    spkiDer: Uint8Array,
    subjectPublicKey: Uint8Array,
    keyType: KeyType,
    ttlSeconds: number,
    now: Date,
  ): IssuedX509Svid {
    const { notBefore, notAfter } = computeSvidValidity({ ttlSeconds, now, issuerNotAfter });
    const serial = generateSerial(random);
    const ski = createHash("sha1").update(subjectPublicKey).digest();
    const constExts = keyType === "rsa-2048" || keyType === "rsa-4096" ? constExtsRsa : constExtsEc;

    let namesLen = hdrLen(spiffeId.length) + spiffeId.length;
    for (const d of dnsNames) namesLen += hdrLen(d.length) + d.length;
    const gnSeqLen = hdrLen(namesLen) + namesLen;
    const sanOctetLen = hdrLen(gnSeqLen) + gnSeqLen;
    const sanContent = SAN_HEAD.length + sanOctetLen;
    const sanLen = hdrLen(sanContent) + sanContent;
    const extsContent =
      constExts.length + SKI_PREFIX.length + ski.length + tailExts.length + sanLen;
    const extsSeqLen = hdrLen(extsContent) + extsContent;
    const serialContent = serial.bytes.length + ((serial.bytes[0] as number) & 0x80 ? 1 : 0);
    const nbLen = timeLen(notBefore);
    const naLen = timeLen(notAfter);
    const validityContent = nbLen + naLen;
    const tbsContent =
      VERSION_V3.length +
      2 +
      serialContent +
      afterSerial.length +
      2 +
      validityContent +
      EMPTY_NAME.length +
      spkiDer.length +
      hdrLen(extsSeqLen) +
      extsSeqLen;
    const tbsLen = hdrLen(tbsContent) + tbsContent;
    // Room for: outer header (≤ 4), TBS, algorithm, BIT STRING header (≤ 4) + 0x00 + signature.
    const maxSig = alg.hash === "sha384" ? 104 : issuerSignatureMax;
    const buf = Buffer.allocUnsafe(4 + tbsLen + sigAlgDer.length + 5 + maxSig);
    let o = 4;
    o = writeHdr(buf, o, 0x30, tbsContent);
    o += VERSION_V3.copy(buf, o);
    o = writeHdr(buf, o, 0x02, serialContent);
    if (serialContent > serial.bytes.length) buf[o++] = 0;
    buf.set(serial.bytes, o);
    o += serial.bytes.length;
    o += afterSerial.copy(buf, o);
    o = writeHdr(buf, o, 0x30, validityContent);
    o = writeTime(buf, o, notBefore);
    o = writeTime(buf, o, notAfter);
    o += EMPTY_NAME.copy(buf, o);
    buf.set(spkiDer, o);
    o += spkiDer.length;
    o = writeHdr(buf, o, 0xa3, extsSeqLen);
    o = writeHdr(buf, o, 0x30, extsContent);
    o += constExts.copy(buf, o);
    o += SKI_PREFIX.copy(buf, o);
    o += ski.copy(buf, o);
    o += tailExts.copy(buf, o);
    o = writeHdr(buf, o, 0x30, sanContent);
    o += SAN_HEAD.copy(buf, o);
    o = writeHdr(buf, o, 0x04, gnSeqLen);
    o = writeHdr(buf, o, 0x30, namesLen);
    o = writeHdr(buf, o, 0x86, spiffeId.length);
    o += buf.write(spiffeId, o, "latin1");
    for (const d of dnsNames) {
      o = writeHdr(buf, o, 0x82, d.length);
      o += buf.write(d, o, "latin1");
    }
    const tbsEnd = o;
    const signature = sign(alg.hash, buf.subarray(4, tbsEnd), issuerKey);
    if (signature.length > maxSig) {
      throw new MeshidError("internal", "pki.issuer.signature_size", "unexpected signature size");
    }
    o += sigAlgDer.copy(buf, o);
    o = writeHdr(buf, o, 0x03, signature.length + 1);
    buf[o++] = 0;
    o += signature.copy(buf, o);
    const certContent = o - 4;
    const start = 4 - hdrLen(certContent);
    writeHdr(buf, start, 0x30, certContent);
    // Copy out: `buf` may be a slice of Node's shared pool and has slack at both ends.
    const certDer = new Uint8Array(buf.subarray(start, o));
    return { certDer, serialHex: serial.hex, notBefore, notAfter };
  }

  const issuerTd = issuerTrustDomain(info.uris);

  function checkCommon(params: IssueX509SvidFromCsrParams): readonly string[] {
    checkSameTrustDomain(checkWorkloadSpiffeId(params.spiffeId), issuerTd);
    const dnsNames = params.dnsNames ?? [];
    if (dnsNames.length > 0) checkDnsNames(dnsNames);
    return dnsNames;
  }

  return {
    issuerNotAfter,
    issue(params) {
      const dnsNames = checkCommon(params);
      const { spkiDer, keyType } = resolveSubjectKey(params.publicKey);
      const { subjectPublicKey } = readSpki(spkiDer);
      return build(
        params.spiffeId,
        dnsNames,
        spkiDer,
        subjectPublicKey,
        keyType,
        params.ttlSeconds,
        params.now,
      );
    },
    issueFromCsr(csrDer, params) {
      const dnsNames = checkCommon(params);
      const parts = readCsrParts(csrDer);
      const { keyType, subjectPublicKey } = verifyCsrParts(parts);
      return build(
        params.spiffeId,
        dnsNames,
        parts.spkiDer,
        subjectPublicKey,
        keyType,
        params.ttlSeconds,
        params.now,
      );
    },
  };
}
