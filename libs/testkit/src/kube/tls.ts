import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../process";
import { createTempDir } from "../temp-dir";

/** PEM material for serving a stand-in over HTTPS instead of plain http. */
export interface StandInTlsOptions {
  /** Server certificate chain (PEM). It must name `127.0.0.1` (IP SAN) unless `serverName` is set. */
  readonly certPem: string;
  /** Private key of the certificate (PEM). */
  readonly keyPem: string;
  /** CA that clients trust for the server certificate; defaults to `certPem` (self-signed). */
  readonly caPem?: string;
  /** TLS server name clients verify instead of `127.0.0.1` (kubeconfig `tls-server-name`). */
  readonly serverName?: string;
}

/** Parameters of {@link createSelfSignedStandInTls}. */
export interface SelfSignedStandInTlsParams {
  /** Subject CN. Default `localhost`. */
  readonly commonName?: string;
  /** openssl subjectAltName value. Default `IP:127.0.0.1`. */
  readonly subjectAltName?: string;
}

/**
 * A self-signed P-256 server certificate for a stand-in served over HTTPS (made by `openssl req
 * -x509`, valid one day): pass it as the stand-in's `tls` option.
 */
export async function createSelfSignedStandInTls(
  params: SelfSignedStandInTlsParams = {},
): Promise<StandInTlsOptions> {
  const dir = await createTempDir("stand-in-tls");
  try {
    const key = join(dir.path, "key.pem");
    const cert = join(dir.path, "cert.pem");
    const made = await runCommand("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "1",
      "-subj",
      `/CN=${params.commonName ?? "localhost"}`,
      "-addext",
      `subjectAltName=${params.subjectAltName ?? "IP:127.0.0.1"}`,
      "-keyout",
      key,
      "-out",
      cert,
    ]);
    if (made.code !== 0) throw new Error(`openssl req failed: ${made.stderr}`);
    return { certPem: await readFile(cert, "utf8"), keyPem: await readFile(key, "utf8") };
  } finally {
    await dir.cleanup();
  }
}
