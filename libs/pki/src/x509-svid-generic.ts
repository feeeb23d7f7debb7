import { type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { readCertificateInfo } from "./certificate-info";
import { keyIdentifier } from "./spki";
import {
  checkDnsNames,
  checkSameTrustDomain,
  issuerTrustDomain,
  checkWorkloadSpiffeId,
  computeSvidValidity,
  defaultRandom,
  generateSerial,
  leafKeyUsage,
  resolveSubjectKey,
  type IssuedX509Svid,
  type IssueX509SvidParams,
  type RandomSource,
} from "./svid-profile";
import { toSigningCryptoKey, x509 } from "./webcrypto";

/** Parameters of {@link issueX509SvidGeneric}: the issuance plus the signing CA. */
export interface IssueX509SvidGenericParams extends IssueX509SvidParams {
  /** The signing CA: its certificate (DER) and private key. */
  readonly issuer: { readonly certDer: Uint8Array; readonly privateKey: KeyObject };
  /** Random source for the serial number. Default: node:crypto CSPRNG. */
  readonly random?: RandomSource;
}

/**
 * Issues an X509-SVID leaf with @peculiar/x509 (the slow, obviously-correct reference path;
 * {@link createX509SvidIssuer} is the fast one and must produce equivalent certificates).
 * Profile: empty subject, the SPIFFE ID as the only URI SAN (critical, since the subject is
 * empty) plus DNS SANs, cA=false (critical), keyUsage digitalSignature (+ keyEncipherment for
 * RSA keys, critical), EKU serverAuth+clientAuth, SKI/AKI, random 128-bit serial,
 * notBefore = now − 10 s, notAfter = min(now + ttl, issuer notAfter).
 * Throws invalid_argument (`pki.svid.*`, `pki.key.*`) and failed_precondition
 * (`pki.issuer.expired`, `pki.issuer.not_ca`).
 */
export async function issueX509SvidGeneric(
  params: IssueX509SvidGenericParams,
): Promise<IssuedX509Svid> {
  const td = checkWorkloadSpiffeId(params.spiffeId);
  const dnsNames = params.dnsNames ?? [];
  checkDnsNames(dnsNames);
  const info = readCertificateInfo(params.issuer.certDer);
  if (info.basicConstraints?.ca !== true) {
    throw new MeshidError(
      "failed_precondition",
      "pki.issuer.not_ca",
      "the issuer certificate is not a CA (basicConstraints cA is not true)",
    );
  }
  checkSameTrustDomain(td, issuerTrustDomain(info.uris));
  const { notBefore, notAfter } = computeSvidValidity({
    ttlSeconds: params.ttlSeconds,
    now: params.now,
    issuerNotAfter: info.notAfter,
  });
  const { spkiDer, keyType } = resolveSubjectKey(params.publicKey);
  const usage = leafKeyUsage(keyType);
  const { key, signParams } = await toSigningCryptoKey(params.issuer.privateKey);
  const serial = generateSerial(params.random ?? defaultRandom);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.hex,
    issuer: new x509.Name(info.subjectNameDer),
    notBefore,
    notAfter,
    publicKey: spkiDer,
    signingKey: key,
    signingAlgorithm: signParams,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature |
          (usage.keyEncipherment ? x509.KeyUsageFlags.keyEncipherment : 0),
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectKeyIdentifierExtension(Buffer.from(keyIdentifier(spkiDer)).toString("hex")),
      new x509.AuthorityKeyIdentifierExtension(Buffer.from(info.subjectKeyId).toString("hex")),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: "url", value: params.spiffeId },
          ...dnsNames.map((value) => ({ type: "dns" as const, value })),
        ],
        true,
      ),
    ],
  });
  return { certDer: new Uint8Array(cert.rawData), serialHex: serial.hex, notBefore, notAfter };
}
