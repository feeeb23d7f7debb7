import { createHash, X509Certificate, type KeyObject } from "node:crypto";
import { promises as fs } from "node:fs";
import { MeshidError } from "@meshid/errors";
import {
  checkUpstreamPathLen,
  createIntermediateCa,
  importPkcs8,
  parseCsr,
  pemToCertificates,
  readCertificateInfo,
  verifyCsr,
} from "@meshid/pki";
import { parseTrustDomain, tryParseSpiffeId } from "@meshid/spiffe";
import { createNoopLogger, LogKeys, type Logger } from "@meshid/telemetry";
import type { Clock, MintedX509Ca, UpstreamAuthority } from "../ports";

/** pathLenConstraint of the CA certificates the disk upstream mints (they sign leaves only). */
export const MINTED_CA_PATH_LEN = 0;

/** Parameters of {@link createDiskUpstreamAuthority} (the `disk` config plus dependencies). */
export interface CreateDiskUpstreamAuthorityParams {
  /**
   * `cert_file_path`: PEM with the upstream CA certificate first. A self-signed root is used
   * directly; an intermediate may be followed by the intermediates above it, up to (not
   * including) a root of the bundle file.
   */
  readonly certFilePath: string;
  /** `key_file_path`: the upstream CA's private key, PEM (PKCS#8, SEC1 or PKCS#1). */
  readonly keyFilePath: string;
  /** `bundle_file_path`: the upstream root(s), PEM. Required when the certificate is not self-signed. */
  readonly bundleFilePath?: string;
  /**
   * The meshid trust domain; when given, a CSR naming another trust domain is refused. When
   * not, the trust domain comes from the CSR's `spiffe://<td>` URI SAN.
   */
  readonly trustDomain?: string;
  /** Time source for issuance and the expiry check. Default: the system clock. */
  readonly clock?: Pick<Clock, "now">;
  /** Logs what was loaded (file paths, serials, expiry; never key material). Default: no-op. */
  readonly logger?: Logger;
}

const systemClock: Pick<Clock, "now"> = { now: () => new Date() };

function precondition(code: string, message: string, cause?: unknown): MeshidError {
  return new MeshidError("failed_precondition", code, message, { cause });
}

async function readText(file: string, setting: string): Promise<string> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (err) {
    throw precondition(
      "ca.upstream.file_unreadable",
      `${setting} ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      err,
    );
  }
}

function readCertificates(text: string, file: string, setting: string): Uint8Array[] {
  let ders: Uint8Array[];
  try {
    ders = pemToCertificates(text);
  } catch (err) {
    throw precondition(
      "ca.upstream.cert_invalid",
      `${setting} ${file} holds no valid PEM certificate`,
      err,
    );
  }
  ders.forEach((der, index) => {
    try {
      readCertificateInfo(der);
    } catch (err) {
      throw precondition(
        "ca.upstream.cert_invalid",
        `${setting} ${file}: certificate ${index} is not a valid X.509 certificate`,
        err,
      );
    }
  });
  return ders;
}

function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function signedBy(child: X509Certificate, parent: X509Certificate): boolean {
  try {
    return child.checkIssued(parent) && child.verify(parent.publicKey);
  } catch {
    return false;
  }
}

function sameDer(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

function trustDomainFromCsr(uris: readonly string[]): string | undefined {
  for (const uri of uris) {
    const parsed = tryParseSpiffeId(uri);
    if (parsed.ok) return parsed.id.trustDomain.name;
  }
  return undefined;
}

/**
 * Subject of a minted CA: names the trust domain and a short hash of the key, so it never
 * equals the upstream certificate's subject (a CA whose subject equals its issuer's would look
 * self-issued to path validation) and differs from one authority to the next.
 */
function mintedSubject(trustDomain: string, spkiDer: Uint8Array): string {
  const keyHash = createHash("sha256").update(spkiDer).digest("hex").slice(0, 16);
  return `CN=${trustDomain} meshid CA ${keyHash}, O=meshid`;
}

/**
 * Creates the `disk` {@link UpstreamAuthority}: an upstream CA certificate and key read from
 * files, under which meshid's CA authorities become intermediates. Checks at construction:
 * the key matches the certificate; the certificate has not expired; a self-signed certificate
 * (a root used directly) passes `checkUpstreamPathLen(cert, "root")` (pathLen ≥ 2 or unset)
 * and the others `checkUpstreamPathLen(cert, "intermediate")` (pathLen 1 or unset) — the pki
 * error is thrown unchanged (`pki.upstream.path_len` / `pki.upstream.not_ca`,
 * failed_precondition); an intermediate needs `bundleFilePath`, and the chain in the cert file
 * must verify up to a certificate of that bundle.
 *
 * `mintX509Ca` verifies the CSR (proof of possession) and issues a CA certificate for its key
 * (pathLen {@link MINTED_CA_PATH_LEN}, URI SAN `spiffe://<td>`, subject
 * `CN=<td> meshid CA <key hash>, O=meshid`, notAfter capped at the upstream certificate's); it returns the chain `[new CA, upstream intermediates…]` (empty of
 * upstream certificates when the upstream is a root) and the bundle roots.
 *
 * Throws (failed_precondition) `ca.upstream.file_unreadable`, `ca.upstream.cert_invalid`,
 * `ca.upstream.key_invalid`, `ca.upstream.key_mismatch`, `ca.upstream.cert_expired`,
 * `ca.upstream.bundle_required`, `ca.upstream.chain_invalid`; messages name the files, never
 * key material. `mintX509Ca` throws the pki CSR errors (invalid_argument),
 * `ca.upstream.csr_trust_domain` (invalid_argument) and `pki.issuer.expired`.
 */
export async function createDiskUpstreamAuthority(
  params: CreateDiskUpstreamAuthorityParams,
): Promise<UpstreamAuthority> {
  const { certFilePath, keyFilePath, bundleFilePath } = params;
  const clock = params.clock ?? systemClock;
  const logger = (params.logger ?? createNoopLogger()).child({
    component: "disk-upstream-authority",
  });
  const configuredTrustDomain =
    params.trustDomain === undefined ? undefined : parseTrustDomain(params.trustDomain).name;

  const certDers = readCertificates(
    await readText(certFilePath, "cert_file_path"),
    certFilePath,
    "cert_file_path",
  );
  const certs = certDers.map((der) => new X509Certificate(Buffer.from(der)));
  const upstreamDer = certDers[0] as Uint8Array;
  const upstream = certs[0] as X509Certificate;

  let privateKey: KeyObject;
  try {
    privateKey = importPkcs8(await readText(keyFilePath, "key_file_path"));
  } catch (err) {
    if (err instanceof MeshidError && err.code === "ca.upstream.file_unreadable") throw err;
    throw precondition(
      "ca.upstream.key_invalid",
      `key_file_path ${keyFilePath} holds no valid unencrypted PEM private key`,
      err,
    );
  }
  if (!upstream.checkPrivateKey(privateKey)) {
    throw precondition(
      "ca.upstream.key_mismatch",
      `the private key in ${keyFilePath} does not match the certificate in ${certFilePath}`,
    );
  }

  const info = readCertificateInfo(upstreamDer);
  if (info.notAfter.getTime() <= clock.now().getTime()) {
    throw precondition(
      "ca.upstream.cert_expired",
      `the upstream certificate in ${certFilePath} expired at ${info.notAfter.toISOString()}`,
    );
  }

  const selfSigned = isSelfSigned(upstream);
  let roots: Uint8Array[];
  let upstreamChain: Uint8Array[];
  if (selfSigned) {
    checkUpstreamPathLen(upstreamDer, "root");
    if (certDers.length > 1) {
      throw precondition(
        "ca.upstream.cert_invalid",
        `cert_file_path ${certFilePath} starts with a self-signed root, so it must hold only that certificate (found ${certDers.length})`,
      );
    }
    roots =
      bundleFilePath === undefined
        ? []
        : readCertificates(
            await readText(bundleFilePath, "bundle_file_path"),
            bundleFilePath,
            "bundle_file_path",
          );
    if (!roots.some((r) => sameDer(r, upstreamDer))) roots = [upstreamDer, ...roots];
    upstreamChain = [];
  } else {
    checkUpstreamPathLen(upstreamDer, "intermediate");
    if (bundleFilePath === undefined) {
      throw precondition(
        "ca.upstream.bundle_required",
        `the upstream certificate in ${certFilePath} is an intermediate (not self-signed): set bundle_file_path to a file with the root certificate(s) it chains to`,
      );
    }
    roots = readCertificates(
      await readText(bundleFilePath, "bundle_file_path"),
      bundleFilePath,
      "bundle_file_path",
    );
    for (let i = 0; i + 1 < certs.length; i++) {
      if (!signedBy(certs[i] as X509Certificate, certs[i + 1] as X509Certificate)) {
        throw precondition(
          "ca.upstream.chain_invalid",
          `cert_file_path ${certFilePath}: certificate ${i} is not signed by certificate ${i + 1}; list the upstream certificate first, then each issuer up to (not including) the root`,
        );
      }
    }
    const top = certs[certs.length - 1] as X509Certificate;
    const rootCerts = roots.map((der) => new X509Certificate(Buffer.from(der)));
    if (!rootCerts.some((root) => signedBy(top, root))) {
      throw precondition(
        "ca.upstream.chain_invalid",
        `the upstream certificate chain in ${certFilePath} does not chain to any root in bundle_file_path ${bundleFilePath}`,
      );
    }
    upstreamChain = certDers;
  }
  logger.info(
    {
      [LogKeys.path]: certFilePath,
      [LogKeys.serialNumber]: upstream.serialNumber.toLowerCase(),
      [LogKeys.notAfter]: info.notAfter.toISOString(),
      role: selfSigned ? "root" : "intermediate",
      rootCount: roots.length,
    },
    "upstream authority loaded from disk",
  );

  const frozenRoots = Object.freeze(roots.map((r) => Uint8Array.from(r)));
  const frozenChain = Object.freeze(upstreamChain.map((c) => Uint8Array.from(c)));

  return {
    async mintX509Ca(mint): Promise<MintedX509Ca> {
      mint.signal?.throwIfAborted();
      const csr = parseCsr(mint.csrDer);
      verifyCsr(csr);
      const requested = trustDomainFromCsr(csr.uris);
      if (
        configuredTrustDomain !== undefined &&
        requested !== undefined &&
        requested !== configuredTrustDomain
      ) {
        throw new MeshidError(
          "invalid_argument",
          "ca.upstream.csr_trust_domain",
          `the CA CSR names trust domain ${requested}, but this CA serves ${configuredTrustDomain}`,
        );
      }
      const trustDomain = configuredTrustDomain ?? requested;
      if (trustDomain === undefined) {
        throw new MeshidError(
          "invalid_argument",
          "ca.upstream.csr_trust_domain",
          "the CA CSR has no spiffe://<trust domain> URI SAN and no trust domain is configured",
        );
      }
      const ca = await createIntermediateCa({
        issuer: { certDer: upstreamDer, privateKey },
        publicKey: csr.spkiDer,
        trustDomain,
        subject: mintedSubject(trustDomain, csr.spkiDer),
        ttlSeconds: mint.ttlSeconds,
        now: clock.now(),
        pathLen: MINTED_CA_PATH_LEN,
      });
      mint.signal?.throwIfAborted();
      logger.info(
        {
          [LogKeys.serialNumber]: ca.serialHex,
          [LogKeys.notAfter]: ca.notAfter.toISOString(),
          [LogKeys.trustDomain]: trustDomain,
        },
        "minted an intermediate CA under the disk upstream",
      );
      return {
        x509CaChain: [ca.certDer, ...frozenChain.map((c) => Uint8Array.from(c))],
        upstreamX509Roots: frozenRoots.map((r) => Uint8Array.from(r)),
      };
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
