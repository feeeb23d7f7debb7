import { MeshidError } from "@meshid/errors";
import { readCertificateInfo } from "./certificate-info";

/** How meshid's CA uses an upstream certificate: signed under it, or directly as a root. */
export type UpstreamRole = "intermediate" | "root";

/**
 * Checks an upstream CA certificate's pathLenConstraint before meshid's CA signs under it:
 * an upstream intermediate must have pathLen 1 or unset; a root used directly must have
 * pathLen ≥ 2 or unset. Throws `pki.upstream.path_len` (failed_precondition) otherwise,
 * `pki.upstream.not_ca` (failed_precondition) when the certificate is not a CA, and
 * `pki.certificate.malformed` (invalid_argument) for bad DER.
 */
export function checkUpstreamPathLen(certDer: Uint8Array, role: UpstreamRole): void {
  const info = readCertificateInfo(certDer);
  if (info.basicConstraints?.ca !== true) {
    throw new MeshidError(
      "failed_precondition",
      "pki.upstream.not_ca",
      `upstream ${role} certificate is not a CA (basicConstraints cA is not true)`,
      { details: { role } },
    );
  }
  const pathLen = info.basicConstraints.pathLen;
  if (pathLen === undefined) return;
  if (role === "intermediate" && pathLen !== 1) {
    throw new MeshidError(
      "failed_precondition",
      "pki.upstream.path_len",
      `upstream intermediate CA has pathLen ${pathLen}: pathLen must be 1 or unset`,
      { details: { role, pathLen } },
    );
  }
  if (role === "root" && pathLen < 2) {
    throw new MeshidError(
      "failed_precondition",
      "pki.upstream.path_len",
      `upstream root CA has pathLen ${pathLen}: pathLen must be 2 or more, or unset`,
      { details: { role, pathLen } },
    );
  }
}
