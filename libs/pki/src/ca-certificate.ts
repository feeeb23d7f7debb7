import { type KeyObject } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { readCertificateInfo } from "./certificate-info";
import { exportSpkiDer, type KeyPair } from "./keys";
import { encodePem } from "./pem";
import { keyIdentifier } from "./spki";
import {
  checkTrustDomain,
  defaultRandom,
  generateSerial,
  NOT_BEFORE_BACKDATE_SECONDS,
} from "./svid-profile";
import { toSigningCryptoKey, x509 } from "./webcrypto";

/** Parameters of {@link createSelfSignedCa}. */
export interface CreateSelfSignedCaParams {
  /** The CA's key pair (any supported key type). */
  readonly keyPair: KeyPair;
  /** Trust domain name, e.g. `example.org`; written as the URI SAN `spiffe://<td>`. */
  readonly trustDomain: string;
  /** Subject DN in RFC 4514 form. Default `CN=<trustDomain> root CA, O=meshid`. */
  readonly subject?: string;
  /** Lifetime in seconds. */
  readonly ttlSeconds: number;
  /** Issuance time; notBefore is `now − 10 s`. */
  readonly now: Date;
  /** Optional pathLenConstraint; unset means unlimited. */
  readonly pathLen?: number;
}

/** Parameters of {@link createIntermediateCa}. */
export interface CreateIntermediateCaParams {
  /** The signing CA: its certificate (DER) and private key. */
  readonly issuer: { readonly certDer: Uint8Array; readonly privateKey: KeyObject };
  /** The new CA's public key: a KeyObject or SPKI DER. */
  readonly publicKey: KeyObject | Uint8Array;
  /** Trust domain name; written as the URI SAN `spiffe://<td>`. */
  readonly trustDomain: string;
  /** Subject DN in RFC 4514 form. Default `CN=<trustDomain> intermediate CA, O=meshid`. */
  readonly subject?: string;
  /** Requested lifetime in seconds; notAfter is capped at the issuer's notAfter. */
  readonly ttlSeconds: number;
  /** Issuance time; notBefore is `now − 10 s`. */
  readonly now: Date;
  /** Optional pathLenConstraint; unset means unlimited. */
  readonly pathLen?: number;
}

/** A CA certificate made by {@link createSelfSignedCa} or {@link createIntermediateCa}. */
export interface CaCertificate {
  /** The certificate, DER. */
  readonly certDer: Uint8Array;
  /** The certificate as one PEM `CERTIFICATE` block. */
  readonly certPem: string;
  /** Serial number, lowercase hex. */
  readonly serialHex: string;
  /** Start of validity (second precision). */
  readonly notBefore: Date;
  /** End of validity (second precision). */
  readonly notAfter: Date;
}

function invalid(code: string, message: string): MeshidError {
  return new MeshidError("invalid_argument", code, message);
}

function checkCommon(ttlSeconds: number, now: Date, pathLen: number | undefined): void {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw invalid("pki.ca.ttl_invalid", "ttlSeconds must be a positive number");
  }
  if (!Number.isFinite(now.getTime()))
    throw invalid("pki.ca.now_invalid", "now is not a valid Date");
  if (pathLen !== undefined && (!Number.isInteger(pathLen) || pathLen < 0)) {
    throw invalid("pki.ca.path_len_invalid", "pathLen must be a non-negative integer");
  }
}

function toSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

async function buildCa(p: {
  spkiDer: Uint8Array;
  signingKey: KeyObject;
  issuerName: x509.Name | string;
  issuerKeyId: Uint8Array;
  subject: string;
  trustDomain: string;
  notBefore: Date;
  notAfter: Date;
  pathLen: number | undefined;
}): Promise<CaCertificate> {
  const { key, signParams } = await toSigningCryptoKey(p.signingKey);
  const serial = generateSerial(defaultRandom);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial.hex,
    subject: p.subject,
    issuer: p.issuerName,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    publicKey: p.spkiDer,
    signingKey: key,
    signingAlgorithm: signParams,
    extensions: [
      new x509.BasicConstraintsExtension(true, p.pathLen, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      new x509.SubjectAlternativeNameExtension([
        { type: "url", value: `spiffe://${p.trustDomain}` },
      ]),
      new x509.SubjectKeyIdentifierExtension(hex(keyIdentifier(p.spkiDer))),
      new x509.AuthorityKeyIdentifierExtension(hex(p.issuerKeyId)),
    ],
  });
  const certDer = new Uint8Array(cert.rawData);
  return {
    certDer,
    certPem: encodePem("CERTIFICATE", certDer),
    serialHex: serial.hex,
    notBefore: p.notBefore,
    notAfter: p.notAfter,
  };
}

/**
 * Creates a self-signed root CA certificate: cA=true (critical, optional pathLen),
 * keyCertSign+cRLSign (critical), URI SAN `spiffe://<trustDomain>`, SKI/AKI, random 128-bit
 * serial, notBefore = now − 10 s, notAfter = now + ttl. Throws invalid_argument
 * (`pki.trust_domain.invalid`, `pki.ca.ttl_invalid`, `pki.ca.path_len_invalid`,
 * `pki.key.unsupported`).
 */
export async function createSelfSignedCa(params: CreateSelfSignedCaParams): Promise<CaCertificate> {
  const { keyPair, trustDomain, ttlSeconds, now, pathLen } = params;
  checkTrustDomain(trustDomain);
  checkCommon(ttlSeconds, now, pathLen);
  const spkiDer = exportSpkiDer(keyPair.publicKey);
  const subject = params.subject ?? `CN=${trustDomain} root CA, O=meshid`;
  return buildCa({
    spkiDer,
    signingKey: keyPair.privateKey,
    issuerName: subject,
    issuerKeyId: keyIdentifier(spkiDer),
    subject,
    trustDomain,
    notBefore: toSeconds(now.getTime() - NOT_BEFORE_BACKDATE_SECONDS * 1000),
    notAfter: toSeconds(now.getTime() + ttlSeconds * 1000),
    pathLen,
  });
}

/**
 * Creates an intermediate CA certificate signed by `issuer`, with the same profile as
 * {@link createSelfSignedCa}; notAfter is capped at the issuer's notAfter. Throws
 * `pki.issuer.expired` (failed_precondition) when the issuer has expired,
 * `pki.issuer.not_ca` (failed_precondition) when it is not a CA, and the invalid_argument
 * errors of {@link createSelfSignedCa}.
 */
export async function createIntermediateCa(
  params: CreateIntermediateCaParams,
): Promise<CaCertificate> {
  const { issuer, trustDomain, ttlSeconds, now, pathLen } = params;
  checkTrustDomain(trustDomain);
  checkCommon(ttlSeconds, now, pathLen);
  const info = readCertificateInfo(issuer.certDer);
  if (info.basicConstraints?.ca !== true) {
    throw new MeshidError(
      "failed_precondition",
      "pki.issuer.not_ca",
      "the issuer certificate is not a CA (basicConstraints cA is not true)",
    );
  }
  if (info.basicConstraints.pathLen === 0) {
    throw new MeshidError(
      "failed_precondition",
      "pki.issuer.path_len",
      "the issuer certificate has pathLen 0 and cannot sign another CA",
    );
  }
  const spkiDer =
    params.publicKey instanceof Uint8Array ? params.publicKey : exportSpkiDer(params.publicKey);
  const notAfterMs = Math.min(
    toSeconds(now.getTime() + ttlSeconds * 1000).getTime(),
    info.notAfter.getTime(),
  );
  if (notAfterMs <= now.getTime()) {
    throw new MeshidError(
      "failed_precondition",
      "pki.issuer.expired",
      "the issuing CA certificate has expired; nothing can be issued under it",
    );
  }
  const maxPathLen =
    info.basicConstraints.pathLen === undefined ? undefined : info.basicConstraints.pathLen - 1;
  return buildCa({
    spkiDer,
    signingKey: issuer.privateKey,
    issuerName: new x509.Name(info.subjectNameDer),
    issuerKeyId: info.subjectKeyId,
    subject: params.subject ?? `CN=${trustDomain} intermediate CA, O=meshid`,
    trustDomain,
    notBefore: toSeconds(now.getTime() - NOT_BEFORE_BACKDATE_SECONDS * 1000),
    notAfter: new Date(notAfterMs),
    pathLen: pathLen ?? maxPathLen,
  });
}
