// Where and how the notifier talks to the CA: its admin Unix socket, or TCP with mTLS using the
// notifier's own SVID from the node agent's Workload API.
import type { ChannelTlsOptions } from "@meshid/grpc-kit";
import { parseSpiffeId } from "@meshid/spiffe";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { createWorkloadX509Source } from "@meshid/workload-api";
import type { CaConnectionConfig } from "../config";

/** Parameters of {@link openCaConnection}. */
export interface OpenCaConnectionParams {
  readonly ca: CaConnectionConfig;
  readonly logger: Logger;
  /** Aborts waiting for the first SVID (mTLS mode). */
  readonly signal?: AbortSignal;
}

/** A resolved CA connection: the gRPC target, its TLS options, and what to close at the end. */
export interface CaConnection {
  /** `unix:///…/admin.sock` or `host:port`. */
  readonly target: string;
  /** mTLS options (absent for the admin socket). */
  readonly tls?: ChannelTlsOptions;
  /** For logs: `admin socket <path>` or `mtls <address> as <serverId>`. */
  readonly description: string;
  /** Stops following the Workload API (mTLS mode). */
  close(): Promise<void>;
}

/**
 * Opens the CA connection settings. For the admin socket there is nothing to wait for. For
 * mTLS it waits for the notifier's first SVID from the Workload API (the source then follows
 * every rotation, and new connections to the CA use the latest SVID and bundle); the CA must
 * present `serverId`.
 *
 * @throws the Workload API's MeshidError when the agent refuses for good, or
 *   `workload_api.source_closed` when `signal` aborts first.
 */
export async function openCaConnection(params: OpenCaConnectionParams): Promise<CaConnection> {
  const { ca } = params;
  if (ca.kind === "admin_socket") {
    return {
      target: `unix://${ca.adminSocketPath}`,
      description: `admin socket ${ca.adminSocketPath}`,
      close: () => Promise.resolve(),
    };
  }
  const logger = params.logger.child({ [LogKeys.component]: "workload-api" });
  logger.info(
    { [LogKeys.path]: ca.workloadSocketPath },
    "waiting for an SVID from the Workload API",
  );
  const source = await createWorkloadX509Source({
    socketPath: ca.workloadSocketPath,
    logger,
    ...(params.signal === undefined ? {} : { signal: params.signal }),
  });
  logger.info({ [LogKeys.spiffeId]: source.svid().spiffeId }, "SVID from the Workload API");
  return {
    target: ca.address,
    tls: { source, serverId: parseSpiffeId(ca.serverId) },
    description: `mtls ${ca.address} as ${ca.serverId}`,
    close: async () => {
      source.close();
      await source.done();
    },
  };
}
