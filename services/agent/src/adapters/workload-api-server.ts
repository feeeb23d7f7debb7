// The SPIFFE Workload API on a Unix socket: we accept each connection ourselves, read its
// SO_PEERCRED, tag the socket with a connection id (as its remoteAddress, so a handler finds
// the credentials from call.getPeer()), then inject it into a grpc-js server.
import { chmod, lstat, mkdir, stat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server as NetServer, type Socket } from "node:net";
import { dirname, isAbsolute, parse as parsePath } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { MeshidError } from "@meshid/errors";
import { toGrpcJsServiceDefinition } from "@meshid/grpc-kit";
import { getPeerCredentials } from "@meshid/peercred";
import { spiffeWorkload } from "@meshid/proto";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { Meter } from "@opentelemetry/api";
import type { WorkloadAttestation, WorkloadIdentitySource } from "../api/deps";
import { WorkloadApiLogKeys, createWorkloadApiHandlers } from "../api/workload-api";
import type { WorkloadProcess } from "../domain/types";
import { createConnectionAttestation, type ConnectionAttestation } from "./connection-attestation";

/** Mode of the Workload API socket: any local uid may connect (identity comes from attestation). */
export const WORKLOAD_API_SOCKET_MODE = 0o777;
/** Mode of socket parent directories the server creates (existing ones are left alone). */
export const WORKLOAD_API_DIRECTORY_MODE = 0o755;
/** Default time open calls get to finish on {@link WorkloadApiServer.close}, in milliseconds. */
export const DEFAULT_WORKLOAD_API_SHUTDOWN_GRACE_MS = 2_000;

/** Stable error codes of {@link startWorkloadApiServer}. */
export const WorkloadApiServerErrorCode = {
  /** The socket path is not absolute (invalid_argument). */
  socketPathInvalid: "agent.workload_api.socket_path_invalid",
  /** A live server answers on the socket path (failed_precondition). */
  socketInUse: "agent.workload_api.socket_in_use",
  /** The socket path exists and is not a socket (failed_precondition). */
  notASocket: "agent.workload_api.not_a_socket",
  /** A parent of the socket path exists and is not a directory (failed_precondition). */
  notADirectory: "agent.workload_api.not_a_directory",
} as const;

/** Parameters of {@link startWorkloadApiServer}. */
export interface StartWorkloadApiServerParams {
  /** Absolute path of the Unix socket. */
  readonly socketPath: string;
  readonly attestation: WorkloadAttestation;
  readonly identities: WorkloadIdentitySource;
  readonly logger: Logger;
  /** Bound on the first FetchX509SVID message's wait for minting SVIDs, ms. Default 5000. */
  readonly mintWaitMs?: number;
  /** Most streams open at once; beyond it new streams get UNAVAILABLE. Default: unlimited. */
  readonly maxConcurrentStreams?: number;
  /** Time open calls get on close before they are cancelled, ms. Default {@link DEFAULT_WORKLOAD_API_SHUTDOWN_GRACE_MS}. */
  readonly shutdownGraceMs?: number;
  /** Meter for the open-streams gauge. Default: the global `@meshid/agent` meter. */
  readonly meter?: Meter;
  /**
   * How long a connection's attestation is reused by its calls before its process is attested
   * again, ms. Default 5000 (`DEFAULT_CONNECTION_ATTESTATION_MAX_AGE_MS`).
   */
  readonly attestationMaxAgeMs?: number;
}

/** A running Workload API server. */
export interface WorkloadApiServer {
  /** The socket path it listens on. */
  readonly socketPath: string;
  /**
   * Stops accepting connections, ends every open stream (UNAVAILABLE), lets calls finish within
   * the grace period, then cancels the rest, closes every connection and removes the socket
   * file. Safe to call twice; never rejects.
   */
  close(): Promise<void>;
}

/** Prefix of the per-connection id a socket carries as its `remoteAddress`. */
const CONNECTION_ID_PREFIX = "workload-api-connection-";

/**
 * Starts the SPIFFE Workload API on the Unix socket `socketPath`: creates missing parent
 * directories (mode 0755; existing directories keep their mode), replaces a stale socket file
 * (refusing when a live server answers on it), listens, sets the socket to mode 0777 so
 * workloads of any uid can connect, reads each connection's peer credentials (SO_PEERCRED),
 * attests its process once at accept time (calls on the connection reuse the selectors: see
 * {@link createConnectionAttestation}) and serves it with grpc-js (plaintext: a Unix socket, no TLS) through a connection injector.
 * A connection whose credentials cannot be read is closed.
 *
 * @throws MeshidError `agent.workload_api.socket_path_invalid` (invalid_argument) for a relative
 *   path; `agent.workload_api.socket_in_use`, `agent.workload_api.not_a_socket` or
 *   `agent.workload_api.not_a_directory` (failed_precondition); the listen error when binding
 *   fails.
 */
export async function startWorkloadApiServer(
  params: StartWorkloadApiServerParams,
): Promise<WorkloadApiServer> {
  const { socketPath } = params;
  const logger = params.logger.child({ [LogKeys.component]: "workload-api-server" });
  if (!isAbsolute(socketPath)) {
    throw new MeshidError(
      "invalid_argument",
      WorkloadApiServerErrorCode.socketPathInvalid,
      `the Workload API socket path must be absolute, got "${socketPath}"`,
    );
  }
  await createParentDirectories(dirname(socketPath));
  await removeStaleSocket(socketPath);

  const peers = new Map<string, WorkloadProcess>();
  /** The attestation of each connection, by its peer (one WorkloadProcess per connection). */
  const connections = new WeakMap<WorkloadProcess, ConnectionAttestation>();
  const sockets = new Set<Socket>();
  const shutdown = new AbortController();
  // No channelz: its per-call bookkeeping was ~4 % of the agent's CPU per Workload API call.
  const grpcServer = new Server({ "grpc.enable_channelz": 0 });
  grpcServer.addService(
    workloadApiDefinition(),
    createWorkloadApiHandlers({
      attestation: {
        attest: (process, signal) =>
          connections.get(process)?.attest(signal) ?? params.attestation.attest(process, signal),
      },
      identities: params.identities,
      logger: params.logger,
      peerProcess: (peer) => peers.get(peer),
      shutdownSignal: shutdown.signal,
      ...(params.mintWaitMs === undefined ? {} : { mintWaitMs: params.mintWaitMs }),
      ...(params.maxConcurrentStreams === undefined
        ? {}
        : { maxConcurrentStreams: params.maxConcurrentStreams }),
      ...(params.meter === undefined ? {} : { meter: params.meter }),
    }),
  );
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());

  let nextConnection = 0;
  const netServer = createServer((socket) => {
    let credentials: WorkloadProcess;
    try {
      credentials = getPeerCredentials(socket);
    } catch (err) {
      logger.warn({ [LogKeys.err]: err }, "could not read a Workload API peer's credentials");
      socket.destroy();
      return;
    }
    nextConnection += 1;
    const connectionId = `${CONNECTION_ID_PREFIX}${nextConnection}`;
    // grpc-js reports `remoteAddress` (no port on a Unix socket) as the call's peer.
    Object.defineProperty(socket, "remoteAddress", { value: connectionId, configurable: true });
    const attestation = createConnectionAttestation({
      process: credentials,
      attestation: params.attestation,
      ...(params.attestationMaxAgeMs === undefined ? {} : { maxAgeMs: params.attestationMaxAgeMs }),
    });
    peers.set(connectionId, credentials);
    connections.set(credentials, attestation);
    sockets.add(socket);
    socket.once("close", () => {
      attestation.close();
      peers.delete(connectionId);
      sockets.delete(socket);
    });
    logger.debug(
      {
        [WorkloadApiLogKeys.pid]: credentials.pid,
        [WorkloadApiLogKeys.uid]: credentials.uid,
        [WorkloadApiLogKeys.gid]: credentials.gid,
      },
      "Workload API connection",
    );
    injector.injectConnection(socket);
    // Attest while the HTTP/2 handshake runs: the first call finds the selectors ready.
    attestation.prime();
  });

  await listen(netServer, socketPath);
  netServer.on("error", (err) =>
    logger.error({ [LogKeys.err]: err }, "Workload API listener failed"),
  );
  try {
    await chmod(socketPath, WORKLOAD_API_SOCKET_MODE);
  } catch (err) {
    netServer.close();
    grpcServer.forceShutdown();
    throw err;
  }
  logger.info({ [LogKeys.path]: socketPath }, "Workload API listening");

  const graceMs = params.shutdownGraceMs ?? DEFAULT_WORKLOAD_API_SHUTDOWN_GRACE_MS;
  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    const serverClosed = new Promise<void>((resolve) => netServer.close(() => resolve()));
    shutdown.abort();
    const graceful = new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([graceful, graceOver]);
    clearTimeout(timer);
    grpcServer.forceShutdown();
    for (const socket of sockets) socket.destroy();
    await serverClosed;
    await unlink(socketPath).catch(() => undefined);
    logger.info({ [LogKeys.path]: socketPath }, "Workload API closed");
  };

  return {
    socketPath,
    close: () => (closing ??= close()),
  };
}

/**
 * The grpc-js definition of the Workload API, with FetchX509SVID responses encoded once per
 * message object: the handlers reuse one response object for every workload of the same
 * identity (see `createX509SvidResponseCache`), so they share its protobuf bytes too (grpc-js
 * copies them into each stream's frame).
 */
export function workloadApiDefinition() {
  const definition = toGrpcJsServiceDefinition(spiffeWorkload.SpiffeWorkloadAPIDefinition);
  const fetch = definition.fetchX509SVID;
  const encoded = new WeakMap<object, Buffer>();
  return {
    ...definition,
    fetchX509SVID: {
      ...fetch,
      responseSerialize: (value: spiffeWorkload.X509SVIDResponse): Buffer => {
        let bytes = encoded.get(value);
        if (bytes === undefined) {
          bytes = fetch.responseSerialize(value);
          encoded.set(value, bytes);
        }
        return bytes;
      },
    },
  };
}

/** Creates missing directories down to `dir`, each with {@link WORKLOAD_API_DIRECTORY_MODE}. */
async function createParentDirectories(dir: string): Promise<void> {
  const missing: string[] = [];
  let current = dir;
  const root = parsePath(dir).root;
  while (current !== root) {
    try {
      const info = await stat(current);
      if (!info.isDirectory()) {
        throw new MeshidError(
          "failed_precondition",
          WorkloadApiServerErrorCode.notADirectory,
          `cannot create the Workload API socket: "${current}" is not a directory`,
        );
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      missing.unshift(current);
      current = dirname(current);
    }
  }
  for (const path of missing) {
    try {
      await mkdir(path, { mode: WORKLOAD_API_DIRECTORY_MODE });
    } catch (err) {
      // Someone else created it in between: leave its mode alone.
      if ((err as NodeJS.ErrnoException).code === "EEXIST") continue;
      throw err;
    }
    // mkdir's mode is filtered by the umask; set it exactly.
    await chmod(path, WORKLOAD_API_DIRECTORY_MODE);
  }
}

/** Removes a socket file no live server answers on; refuses a live socket or another file. */
async function removeStaleSocket(path: string): Promise<void> {
  let info;
  try {
    info = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!info.isSocket()) {
    throw new MeshidError(
      "failed_precondition",
      WorkloadApiServerErrorCode.notASocket,
      `cannot listen on "${path}": it exists and is not a socket`,
    );
  }
  if (await answers(path)) {
    throw new MeshidError(
      "failed_precondition",
      WorkloadApiServerErrorCode.socketInUse,
      `cannot listen on "${path}": another server is listening on it`,
    );
  }
  await unlink(path);
}

/** Reports whether something accepts connections on the Unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => {
      probe.destroy();
      resolve(false);
    });
  });
}

function listen(server: NetServer, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once("error", onError);
    server.listen(path, () => {
      server.off("error", onError);
      resolve();
    });
  });
}
