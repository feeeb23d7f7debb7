// Test-only certificate factory (excluded from the build). Builds CAs and X509-SVIDs with
// @peculiar/x509 so that each test can break exactly one SPIFFE rule.
import "reflect-metadata";
import { type webcrypto as nodeWebcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

type CryptoKeyPair = nodeWebcrypto.CryptoKeyPair;
type EcKeyGenParams = nodeWebcrypto.EcKeyGenParams;
type RsaHashedKeyGenParams = nodeWebcrypto.RsaHashedKeyGenParams;
type EcdsaParams = nodeWebcrypto.EcdsaParams;
type Algorithm = nodeWebcrypto.Algorithm;

/** Key types the test PKI can generate. */
export type TestKeyType = "ec-p256" | "ec-p384" | "rsa-2048";

/** Fixed reference time for tests: certificates default to being valid around it. */
export const TEST_NOW = new Date("2026-01-01T00:00:00Z");

const HOUR_MS = 3_600_000;

/** A generated certificate with its key pair. */
export interface TestCert {
  cert: x509.X509Certificate;
  der: Uint8Array;
  keys: CryptoKeyPair;
  keyType: TestKeyType;
}

const webcrypto = globalThis.crypto;

function algorithms(keyType: TestKeyType): {
  gen: EcKeyGenParams | RsaHashedKeyGenParams;
  sign: EcdsaParams | Algorithm;
} {
  switch (keyType) {
    case "ec-p256":
      return {
        gen: { name: "ECDSA", namedCurve: "P-256" },
        sign: { name: "ECDSA", hash: "SHA-256" },
      };
    case "ec-p384":
      return {
        gen: { name: "ECDSA", namedCurve: "P-384" },
        sign: { name: "ECDSA", hash: "SHA-384" },
      };
    case "rsa-2048":
      return {
        gen: {
          name: "RSASSA-PKCS1-v1_5",
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: "SHA-256",
        },
        sign: { name: "RSASSA-PKCS1-v1_5" },
      };
  }
}

/** Generates an extractable key pair of the given type. */
export async function generateTestKeys(keyType: TestKeyType = "ec-p256"): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(algorithms(keyType).gen, true, ["sign", "verify"]);
}

/** Parameters of {@link createTestCertificate}; every extension is opt-in. */
export interface CreateTestCertificateParams {
  /** Subject DN, e.g. `CN=leaf`. */
  subject: string;
  /** Issuer; default self-signed. */
  issuer?: TestCert;
  keyType?: TestKeyType;
  /** Reuse this key pair instead of generating one. */
  keys?: CryptoKeyPair;
  notBefore?: Date;
  notAfter?: Date;
  extensions?: x509.Extension[];
}

/** Creates a certificate with exactly the given extensions plus SKI/AKI. */
export async function createTestCertificate(p: CreateTestCertificateParams): Promise<TestCert> {
  const keyType = p.keyType ?? "ec-p256";
  const keys = p.keys ?? (await generateTestKeys(keyType));
  const signer = p.issuer ?? { keys, keyType, cert: undefined };
  const extensions = [
    ...(p.extensions ?? []),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
    await x509.AuthorityKeyIdentifierExtension.create(signer.keys.publicKey, false, webcrypto),
  ];
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: p.subject,
      issuer: p.issuer?.cert.subject ?? p.subject,
      notBefore: p.notBefore ?? new Date(TEST_NOW.getTime() - HOUR_MS),
      notAfter: p.notAfter ?? new Date(TEST_NOW.getTime() + 24 * HOUR_MS),
      publicKey: keys.publicKey,
      signingKey: signer.keys.privateKey,
      signingAlgorithm: algorithms(signer.keyType).sign,
      extensions,
    },
    webcrypto,
  );
  return { cert, der: new Uint8Array(cert.rawData), keys, keyType };
}

/** Parameters of {@link createTestCa}. */
export interface CreateTestCaParams {
  /** Common name; default `test-ca`. */
  name?: string;
  /** Signing CA; default self-signed root. */
  issuer?: TestCert;
  keyType?: TestKeyType;
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA; `null` omits the extension. Default true. */
  ca?: boolean | null;
  pathLength?: number;
  /** keyUsage flags; `null` omits it. Default keyCertSign | cRLSign (critical). */
  keyUsage?: x509.KeyUsageFlags | null;
  /** URI SANs, e.g. `spiffe://example.org`. */
  uris?: string[];
}

/** Creates a CA certificate (root or intermediate) following the SPIFFE signing profile. */
export async function createTestCa(p: CreateTestCaParams = {}): Promise<TestCert> {
  const ext: x509.Extension[] = [];
  const ca = p.ca === undefined ? true : p.ca;
  if (ca !== null) ext.push(new x509.BasicConstraintsExtension(ca, p.pathLength, true));
  const keyUsage =
    p.keyUsage === undefined
      ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
      : p.keyUsage;
  if (keyUsage !== null) ext.push(new x509.KeyUsagesExtension(keyUsage, true));
  if (p.uris !== undefined) {
    ext.push(
      new x509.SubjectAlternativeNameExtension(p.uris.map((u) => ({ type: "url", value: u }))),
    );
  }
  return createTestCertificate({
    subject: `CN=${p.name ?? "test-ca"},O=meshid-test`,
    ...(p.issuer === undefined ? {} : { issuer: p.issuer }),
    ...(p.keyType === undefined ? {} : { keyType: p.keyType }),
    notBefore: p.notBefore ?? new Date(TEST_NOW.getTime() - 2 * HOUR_MS),
    notAfter: p.notAfter ?? new Date(TEST_NOW.getTime() + 48 * HOUR_MS),
    extensions: ext,
  });
}

/** Parameters of {@link createTestSvid}. */
export interface CreateTestSvidParams {
  issuer: TestCert;
  /** URI SANs; default `["spiffe://example.org/workload"]`. */
  uris?: string[];
  dnsNames?: string[];
  keyType?: TestKeyType;
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA; `null` omits the extension. Default false. */
  ca?: boolean | null;
  /** keyUsage flags; `null` omits it. Default digitalSignature. */
  keyUsage?: x509.KeyUsageFlags | null;
  /** Whether keyUsage is critical; default true. */
  keyUsageCritical?: boolean;
  /** extendedKeyUsage OIDs; `null` omits it. Default serverAuth + clientAuth. */
  extendedKeyUsage?: string[] | null;
}

/** Creates a leaf X509-SVID that follows every SPIFFE rule unless told otherwise. */
export async function createTestSvid(p: CreateTestSvidParams): Promise<TestCert> {
  const ext: x509.Extension[] = [];
  const ca = p.ca === undefined ? false : p.ca;
  if (ca !== null) ext.push(new x509.BasicConstraintsExtension(ca, undefined, true));
  const keyUsage = p.keyUsage === undefined ? x509.KeyUsageFlags.digitalSignature : p.keyUsage;
  if (keyUsage !== null) {
    ext.push(new x509.KeyUsagesExtension(keyUsage, p.keyUsageCritical ?? true));
  }
  const eku =
    p.extendedKeyUsage === undefined
      ? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]
      : p.extendedKeyUsage;
  if (eku !== null) ext.push(new x509.ExtendedKeyUsageExtension(eku));
  const names: x509.JsonGeneralName[] = [
    ...(p.uris ?? ["spiffe://example.org/workload"]).map((u) => ({
      type: "url" as const,
      value: u,
    })),
    ...(p.dnsNames ?? []).map((d) => ({ type: "dns" as const, value: d })),
  ];
  if (names.length > 0) ext.push(new x509.SubjectAlternativeNameExtension(names));
  return createTestCertificate({
    subject: "O=SPIFFE",
    issuer: p.issuer,
    ...(p.keyType === undefined ? {} : { keyType: p.keyType }),
    ...(p.notBefore === undefined ? {} : { notBefore: p.notBefore }),
    notAfter: p.notAfter ?? new Date(TEST_NOW.getTime() + HOUR_MS),
    extensions: ext,
  });
}
