import { createHash, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { readCertificateInfo } from "./certificate-info";
import { readCsrParts, verifyCsrParts } from "./csr";
import {
  BOOLEAN_TRUE,
  ctx,
  NULL,
  octetString,
  oid,
  seq,
  tlv,
  unsignedInteger,
  x509Time,
  bitString,
} from "./der";
import { keyTypeOf, type KeyType } from "./keys";
import { OID, readSpki, signingAlgorithmFor } from "./spki";
import {
  checkDnsNames,
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
  const head = Buffer.concat([VERSION_V3]); // then serial
  const afterSerial = Buffer.concat([sigAlgDer, Buffer.from(info.subjectNameDer)]);
  const aki = extension(OID.authorityKeyIdentifier, false, seq(ctx(0, info.subjectKeyId, false)));
  const issuerNotAfter = info.notAfter;

  function build(
    spiffeId: string,
    dnsNames: readonly string[],
    spkiDer: Uint8Array,
    keyType: KeyType,
    ttlSeconds: number,
    now: Date,
  ): IssuedX509Svid {
    const { notBefore, notAfter } = computeSvidValidity({ ttlSeconds, now, issuerNotAfter });
    const serial = generateSerial(random);
    const ski = createHash("sha1").update(readSpki(spkiDer).subjectPublicKey).digest();
    const names: Buffer[] = [tlv(0x86, Buffer.from(spiffeId, "latin1"))];
    for (const d of dnsNames) names.push(tlv(0x82, Buffer.from(d, "latin1")));
    const extensions = seq(
      BASIC_CONSTRAINTS_LEAF,
      keyType === "rsa-2048" || keyType === "rsa-4096" ? KU_RSA : KU_EC,
      EKU_SERVER_CLIENT,
      Buffer.concat([SKI_PREFIX, ski]),
      aki,
      extension(OID.subjectAltName, true, seq(...names)),
    );
    const tbs = seq(
      head,
      unsignedInteger(serial.bytes),
      afterSerial,
      seq(x509Time(notBefore), x509Time(notAfter)),
      EMPTY_NAME,
      spkiDer,
      ctx(3, extensions, true),
    );
    const signature = sign(alg.hash, tbs, issuerKey);
    const certDer = new Uint8Array(seq(tbs, sigAlgDer, bitString(signature)));
    return { certDer, serialHex: serial.hex, notBefore, notAfter };
  }

  function checkCommon(params: IssueX509SvidFromCsrParams): readonly string[] {
    checkWorkloadSpiffeId(params.spiffeId);
    const dnsNames = params.dnsNames ?? [];
    if (dnsNames.length > 0) checkDnsNames(dnsNames);
    return dnsNames;
  }

  return {
    issuerNotAfter,
    issue(params) {
      const dnsNames = checkCommon(params);
      const { spkiDer, keyType } = resolveSubjectKey(params.publicKey);
      return build(params.spiffeId, dnsNames, spkiDer, keyType, params.ttlSeconds, params.now);
    },
    issueFromCsr(csrDer, params) {
      const dnsNames = checkCommon(params);
      const parts = readCsrParts(csrDer);
      const { keyType } = verifyCsrParts(parts);
      return build(
        params.spiffeId,
        dnsNames,
        parts.spkiDer,
        keyType,
        params.ttlSeconds,
        params.now,
      );
    },
  };
}
