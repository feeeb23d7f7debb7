import { X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { spiffeWorkload } from "@meshid/proto";
import { derToPem, splitDerCertificates } from "@meshid/spiffe";
import { ChannelCredentials, Metadata, createChannel, createClient } from "nice-grpc";
import { connectError } from "./exit-codes";
import { callFailure } from "./connection-errors";

/** Environment variable of the SPIFFE standard naming the Workload API socket. */
export const SPIFFE_ENDPOINT_SOCKET_ENV = "SPIFFE_ENDPOINT_SOCKET";

/** One X509-SVID from the Workload API, as PEM, with the facts meshctl prints. */
export interface FetchedX509Svid {
  readonly spiffeId: string;
  readonly hint: string;
  /** Leaf serial number, lowercase hex without separators. */
  readonly serial: string;
  readonly notAfter: Date;
  /** Leaf first, then intermediates. */
  readonly certChainPem: string;
  /** PKCS#8 private key. Never printed. */
  readonly keyPem: string;
  /** The trust bundle of the SVID's trust domain. */
  readonly bundlePem: string;
}

/** Returns the grpc-js target of a Workload API endpoint (`unix:///abs` or an absolute path). */
export function workloadTarget(endpoint: string): { target: string; socketPath: string } {
  if (endpoint.startsWith("unix://")) {
    return { target: endpoint, socketPath: endpoint.slice("unix://".length) };
  }
  return { target: `unix://${endpoint}`, socketPath: endpoint };
}

/**
 * Fetches the caller's X509-SVIDs once from the SPIFFE Workload API at `endpoint` (the first
 * message of FetchX509SVID, then the stream is cancelled). Works against any SPIFFE agent.
 *
 * @throws MeshidError `meshctl.connect` when the socket is missing or refuses; the mapped gRPC
 *   error (e.g. `permission_denied` when the agent has no identity for the caller) otherwise.
 */
export async function fetchX509SvidsOnce(params: {
  readonly endpoint: string;
  readonly timeoutMs: number;
}): Promise<FetchedX509Svid[]> {
  const { target, socketPath } = workloadTarget(params.endpoint);
  const describe = `the Workload API socket ${socketPath}`;
  if (!existsSync(socketPath)) {
    throw connectError(
      `cannot connect to ${describe}: it does not exist (is the agent running? ` +
        "start the local mesh with `npm start`, or pass --socket <path>)",
    );
  }
  const channel = createChannel(target, ChannelCredentials.createInsecure());
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, params.timeoutMs);
  try {
    const client = createClient(spiffeWorkload.SpiffeWorkloadAPIDefinition, channel);
    const stream = client.fetchX509SVID(
      {},
      { metadata: Metadata({ "workload.spiffe.io": "true" }), signal: controller.signal },
    );
    for await (const message of stream) {
      controller.abort();
      return message.svids.map(toFetchedSvid);
    }
    throw connectError(`${describe} ended the stream without an SVID`);
  } catch (err) {
    if (timedOut) {
      throw connectError(`no answer from ${describe} within ${params.timeoutMs} ms`, err);
    }
    throw callFailure(err, describe);
  } finally {
    clearTimeout(timer);
    channel.close();
  }
}

function toFetchedSvid(svid: spiffeWorkload.X509SVID): FetchedX509Svid {
  const certs = splitDerCertificates(svid.x509Svid);
  const leafDer = certs[0];
  const leaf = leafDer === undefined ? undefined : new X509Certificate(Buffer.from(leafDer));
  return {
    spiffeId: svid.spiffeId,
    hint: svid.hint,
    serial: (leaf?.serialNumber ?? "").toLowerCase().replace(/^0+(?=.)/, ""),
    notAfter: new Date(leaf?.validTo ?? 0),
    certChainPem: certs.map((der) => derToPem("CERTIFICATE", der)).join(""),
    keyPem: derToPem("PRIVATE KEY", svid.x509SvidKey),
    bundlePem: splitDerCertificates(svid.bundle)
      .map((der) => derToPem("CERTIFICATE", der))
      .join(""),
  };
}
