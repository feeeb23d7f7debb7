import { existsSync } from "node:fs";
import { isMeshidError } from "@meshid/errors";
import { fetchX509Context, parseSpiffeEndpointSocket } from "@meshid/workload-api";
import { callFailure } from "./connection-errors";
import { connectError, usageError } from "./exit-codes";

export { SPIFFE_ENDPOINT_SOCKET_ENV } from "@meshid/workload-api";

/** One X509-SVID from the Workload API, as PEM, with the facts meshctl prints. */
export interface FetchedX509Svid {
  readonly spiffeId: string;
  readonly hint: string;
  /** Leaf serial number, lowercase hex. */
  readonly serial: string;
  readonly notAfter: Date;
  /** Leaf first, then intermediates. */
  readonly certChainPem: string;
  /** PKCS#8 private key. Never printed. */
  readonly keyPem: string;
  /** The trust bundle of the SVID's trust domain. */
  readonly bundlePem: string;
}

/**
 * Returns the socket path of a Workload API endpoint: `unix:///abs/path` (as in
 * `SPIFFE_ENDPOINT_SOCKET`) or an absolute path.
 * @throws MeshidError `meshctl.usage` for anything else.
 */
export function workloadSocketPath(endpoint: string): string {
  if (!endpoint.startsWith("unix:")) return endpoint;
  try {
    return parseSpiffeEndpointSocket(endpoint);
  } catch (err) {
    throw usageError(`invalid Workload API endpoint "${endpoint}": ${(err as Error).message}`, err);
  }
}

/**
 * Fetches the caller's X509-SVIDs once from the SPIFFE Workload API at `endpoint` (the first
 * message of FetchX509SVID; no retry, so a CLI fails fast with a clear message). Works against
 * any SPIFFE agent.
 *
 * @throws MeshidError `meshctl.connect` (exit 4) when the socket is missing, refuses or does not
 *   answer in time; `permission_denied` (exit 5) when the agent has no identity for the caller;
 *   other kinds as the agent answered.
 */
export async function fetchX509SvidsOnce(params: {
  readonly endpoint: string;
  readonly timeoutMs: number;
}): Promise<FetchedX509Svid[]> {
  const socketPath = workloadSocketPath(params.endpoint);
  const describe = `the Workload API socket ${socketPath}`;
  if (!existsSync(socketPath)) {
    throw connectError(
      `cannot connect to ${describe}: it does not exist (is the agent running? ` +
        "start the local mesh with `npm start`, or pass --socket <path>)",
    );
  }
  try {
    const context = await fetchX509Context({ socketPath, timeoutMs: params.timeoutMs });
    return context.svids.map((svid) => ({
      spiffeId: svid.spiffeId,
      hint: svid.hint,
      serial: svid.serialNumber.toLowerCase(),
      notAfter: svid.expiresAt,
      certChainPem: svid.certChainPem,
      keyPem: svid.keyPem,
      bundlePem: svid.bundlePem,
    }));
  } catch (err) {
    if (isMeshidError(err) && (err.kind === "unavailable" || err.kind === "deadline_exceeded")) {
      throw connectError(`cannot fetch from ${describe}: ${err.message}`, err);
    }
    throw callFailure(err, describe);
  }
}
