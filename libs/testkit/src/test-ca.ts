import { type KeyObject } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  certificatesToPem,
  createIntermediateCa,
  createSelfSignedCa,
  createX509SvidIssuer,
  exportPkcs8Der,
  exportPkcs8Pem,
  generateKeyPair,
  type KeyType,
  type X509SvidIssuer,
} from "@meshid/pki";
import { createBundle, type Bundle } from "@meshid/spiffe";

/** Default lifetime of a test root CA: 24 hours. */
export const TEST_CA_TTL_SECONDS = 24 * 3_600;
/** Default lifetime of a test SVID: 1 hour. */
export const TEST_SVID_TTL_SECONDS = 3_600;

/** Parameters of {@link createTestCa}. */
export interface CreateTestCaParams {
  /** Trust domain name. Default `example.org`. */
  readonly trustDomain?: string;
  /** Root key type. Default `ec-p256`. */
  readonly keyType?: KeyType;
  /** Root lifetime in seconds. Default {@link TEST_CA_TTL_SECONDS}. */
  readonly ttlSeconds?: number;
  /** Creation time. Default now. */
  readonly now?: Date;
}

/** Parameters of {@link TestCaSigner.issueSvid}. */
export interface IssueTestSvidParams {
  /** The SPIFFE ID, e.g. `spiffe://example.org/workload`. */
  readonly spiffeId: string;
  /** Optional DNS SANs. */
  readonly dnsNames?: readonly string[];
  /** Lifetime in seconds. Default {@link TEST_SVID_TTL_SECONDS} (capped by the CA). */
  readonly ttlSeconds?: number;
  /** Leaf key type. Default `ec-p256`. */
  readonly keyType?: KeyType;
  /** Issuance time. Default now. */
  readonly now?: Date;
}

/** Parameters of {@link TestCaSigner.issueIntermediate}. */
export interface IssueTestIntermediateParams {
  /** Intermediate key type. Default `ec-p256`. */
  readonly keyType?: KeyType;
  /** Lifetime in seconds. Default: the issuer's remaining lifetime. */
  readonly ttlSeconds?: number;
  /** Optional pathLenConstraint. */
  readonly pathLen?: number;
  /** Issuance time. Default now. */
  readonly now?: Date;
}

/** An X509-SVID with its key, in every form tests need. */
export interface TestSvid {
  /** The SPIFFE ID. */
  readonly spiffeId: string;
  /** Leaf first, then intermediates (never the root), DER. */
  readonly certChainDer: Uint8Array[];
  /** The same chain as concatenated PEM `CERTIFICATE` blocks. */
  readonly certChainPem: string;
  /** The private key as PEM PKCS#8. */
  readonly keyPem: string;
  /** The private key as PKCS#8 DER (the Workload API form). */
  readonly keyPkcs8Der: Uint8Array;
  /** The private key. */
  readonly privateKey: KeyObject;
  /** End of validity of the leaf. */
  readonly notAfter: Date;
}

/** Something that signs SVIDs and intermediates: the root or an intermediate. */
export interface TestCaSigner {
  /** Issues a leaf X509-SVID under this CA (chain includes every intermediate). */
  issueSvid(params: IssueTestSvidParams): Promise<TestSvid>;
  /** Issues an intermediate CA under this CA. */
  issueIntermediate(params?: IssueTestIntermediateParams): Promise<TestIntermediateCa>;
}

/** An intermediate CA made by {@link TestCaSigner.issueIntermediate}. */
export interface TestIntermediateCa extends TestCaSigner {
  /** The intermediate certificate, DER. */
  readonly certDer: Uint8Array;
  /** The intermediate certificate, PEM. */
  readonly certPem: string;
  /** Its private key. */
  readonly privateKey: KeyObject;
  /** This intermediate followed by its issuing intermediates (root excluded), DER. */
  readonly chainDer: Uint8Array[];
  /** End of validity. */
  readonly notAfter: Date;
}

/** A throw-away SPIFFE CA for tests: a root, its bundle, and helpers to issue SVIDs. */
export interface TestCa extends TestCaSigner {
  /** The trust domain name, e.g. `example.org`. */
  readonly trustDomain: string;
  /** The root certificate, DER. */
  readonly rootCertDer: Uint8Array;
  /** The root certificate, PEM. */
  readonly rootCertPem: string;
  /** The root private key. */
  readonly rootPrivateKey: KeyObject;
  /** A SPIFFE trust bundle holding the root (sequence 1). */
  readonly bundle: Bundle;
  /** The bundle's X.509 authorities as PEM. */
  readonly bundlePem: string;
}

function signer(
  trustDomain: string,
  certDer: Uint8Array,
  privateKey: KeyObject,
  notAfter: Date,
  chainAbove: Uint8Array[],
): TestCaSigner {
  let issuer: X509SvidIssuer | undefined;
  return {
    async issueSvid(params) {
      issuer ??= createX509SvidIssuer({ issuerCertDer: certDer, issuerPrivateKey: privateKey });
      const keys = await generateKeyPair(params.keyType ?? "ec-p256");
      const svid = issuer.issue({
        spiffeId: params.spiffeId,
        publicKey: keys.publicKey,
        ...(params.dnsNames === undefined ? {} : { dnsNames: params.dnsNames }),
        ttlSeconds: params.ttlSeconds ?? TEST_SVID_TTL_SECONDS,
        now: params.now ?? new Date(),
      });
      const certChainDer = [svid.certDer, ...chainAbove];
      return {
        spiffeId: params.spiffeId,
        certChainDer,
        certChainPem: certificatesToPem(certChainDer),
        keyPem: exportPkcs8Pem(keys.privateKey),
        keyPkcs8Der: exportPkcs8Der(keys.privateKey),
        privateKey: keys.privateKey,
        notAfter: svid.notAfter,
      };
    },
    async issueIntermediate(params = {}) {
      const now = params.now ?? new Date();
      const keys = await generateKeyPair(params.keyType ?? "ec-p256");
      const remaining = Math.max(1, Math.floor((notAfter.getTime() - now.getTime()) / 1000));
      const ca = await createIntermediateCa({
        issuer: { certDer, privateKey },
        publicKey: keys.publicKey,
        trustDomain,
        ttlSeconds: params.ttlSeconds ?? remaining,
        now,
        ...(params.pathLen === undefined ? {} : { pathLen: params.pathLen }),
      });
      const chainDer = [ca.certDer, ...chainAbove];
      return {
        ...signer(trustDomain, ca.certDer, keys.privateKey, ca.notAfter, chainDer),
        certDer: ca.certDer,
        certPem: ca.certPem,
        privateKey: keys.privateKey,
        chainDer,
        notAfter: ca.notAfter,
      };
    },
  };
}

/**
 * Creates a test CA: a fresh root (default `ec-p256`, 24 h) for `trustDomain` (default
 * `example.org`), its SPIFFE bundle, and helpers that issue X509-SVIDs and intermediates with
 * freshly generated keys. Everything is in memory.
 */
export async function createTestCa(params: CreateTestCaParams = {}): Promise<TestCa> {
  const trustDomain = params.trustDomain ?? "example.org";
  const keyPair = await generateKeyPair(params.keyType ?? "ec-p256");
  const root = await createSelfSignedCa({
    keyPair,
    trustDomain,
    ttlSeconds: params.ttlSeconds ?? TEST_CA_TTL_SECONDS,
    now: params.now ?? new Date(),
  });
  const bundle = createBundle({
    trustDomain,
    x509Authorities: [root.certDer],
    jwtAuthorities: [],
    sequenceNumber: 1,
    refreshHintSeconds: 0,
  });
  return {
    ...signer(trustDomain, root.certDer, keyPair.privateKey, root.notAfter, []),
    trustDomain,
    rootCertDer: root.certDer,
    rootCertPem: root.certPem,
    rootPrivateKey: keyPair.privateKey,
    bundle,
    bundlePem: root.certPem,
  };
}

/** Where {@link writeSvidFiles} wrote an SVID: the `tls` block of a service configuration. */
export interface SvidFiles {
  /** The chain, leaf first (PEM). */
  readonly certFile: string;
  /** The private key (PEM, mode 0600). */
  readonly keyFile: string;
  /** The trust bundle (PEM). */
  readonly bundleFile: string;
}

/**
 * Writes `svid` and `bundlePem` as `svid.pem`, `svid.key` and `bundle.pem` in `dir` (which
 * must exist), every file mode 0600, and returns their paths.
 */
export async function writeSvidFiles(
  dir: string,
  svid: Pick<TestSvid, "certChainPem" | "keyPem">,
  bundlePem: string,
): Promise<SvidFiles> {
  const files: SvidFiles = {
    certFile: join(dir, "svid.pem"),
    keyFile: join(dir, "svid.key"),
    bundleFile: join(dir, "bundle.pem"),
  };
  await writeFile(files.certFile, svid.certChainPem, { mode: 0o600 });
  await writeFile(files.keyFile, svid.keyPem, { mode: 0o600 });
  await writeFile(files.bundleFile, bundlePem, { mode: 0o600 });
  return files;
}
