import { mkdir, chmod, lstat, unlink } from "node:fs/promises";
import { connect } from "node:net";
import { dirname } from "node:path";
import { ServerCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { MeshidError } from "@meshid/errors";
import {
  createServer,
  type CompatServiceDefinition,
  type ServerAddBuilder,
  type ServerMiddleware,
  type ServiceImplementation,
} from "nice-grpc";
import { openTelemetryServerMiddleware } from "nice-grpc-opentelemetry";
import { HealthDefinition, HealthServiceImpl, HealthState } from "nice-grpc-server-health";
import { errorMiddleware } from "./errors";
import { loggingMiddleware } from "./logging-middleware";
import type { GrpcLogger } from "./logger";
import {
  peerIdentityInterceptor,
  peerIdentityMiddleware,
  type PeerIdentityContext,
} from "./peer-identity";
import { createServerTlsCredentials, type ServerTlsOptions } from "./tls";

/** Default grace period of {@link GrpcServer.shutdown}, in milliseconds. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;
/** Default mode of the directory {@link GrpcServer.listenUnix} creates. */
export const DEFAULT_UNIX_DIRECTORY_MODE = 0o755;

/** Parameters of {@link createGrpcServer}. */
export interface CreateGrpcServerParams {
  /** Receives call logs and unexpected handler errors. */
  logger: GrpcLogger;
  /** Serve TLS with a rotating X509-SVID; without it the server is plaintext. */
  tls?: ServerTlsOptions;
  /** Extra grpc-js server options (message sizes, keepalive, …). */
  channelOptions?: ChannelOptions;
}

/** Options of {@link GrpcServer.listenUnix}. */
export interface ListenUnixOptions {
  /** Mode of the socket file, e.g. `0o666` for a socket every local user may connect to. */
  mode: number;
  /**
   * Mode given to the parent directory when it has to be created (an existing directory is
   * left as it is). Default {@link DEFAULT_UNIX_DIRECTORY_MODE}.
   */
  directoryMode?: number;
}

/** Parameters of {@link GrpcServer.shutdown}. */
export interface ShutdownGrpcServerParams {
  /**
   * How long in-flight calls may take to finish before they are cancelled, in milliseconds.
   * Default {@link DEFAULT_SHUTDOWN_GRACE_MS}.
   */
  graceMs?: number;
  /** Aborting it ends the grace period at once (force shutdown). */
  signal?: AbortSignal;
}

/**
 * A gRPC server whose handlers see `callerSpiffeId` in their call context. Add services, then call
 * `listen` or `listenUnix` once (one listener per server: create a second server for a second
 * address).
 */
export interface GrpcServer {
  /** Attaches `middleware` to the services of the chained `add` call only. */
  with<Ext>(
    middleware: ServerMiddleware<Ext, PeerIdentityContext>,
  ): ServerAddBuilder<PeerIdentityContext & Ext>;
  /** Adds a service; must happen before `listen`/`listenUnix`. */
  add<Service extends CompatServiceDefinition>(
    definition: Service,
    implementation: ServiceImplementation<Service, PeerIdentityContext>,
  ): void;
  /**
   * Starts listening on TCP `address` (`host:port`; port 0 picks a free port) and returns the
   * bound port. Uses TLS when the server was created with `tls`.
   * @throws when binding fails or the server already listens.
   */
  listen(address: string): Promise<number>;
  /**
   * Starts listening on the Unix socket `path` (absolute): creates the parent directory
   * (mode `directoryMode`) if missing, removes a stale socket file left by a dead process, then
   * binds and sets the socket file to `mode`. Uses TLS when the server was created with `tls`.
   * The socket file briefly has umask permissions between bind and chmod; the parent
   * directory's mode is what keeps unwanted users out during that window.
   * @throws MeshidError `failed_precondition` `grpc.unix_socket.in_use` when a live server
   *   answers on `path`; `grpc.unix_socket.not_a_socket` when `path` is another kind of file.
   */
  listenUnix(path: string, options: ListenUnixOptions): Promise<void>;
  /**
   * Stops the server: marks every health service added with {@link addHealth} NOT_SERVING, stops
   * accepting calls, waits up to `graceMs` for in-flight calls, then cancels the rest. Calling it
   * on a server that never listened is a no-op. Never rejects. Open server streams (e.g. health
   * `Watch`) keep running until the grace period ends.
   */
  shutdown(params?: ShutdownGrpcServerParams): Promise<void>;
}

// HealthState cannot list its services, so addHealth records every name it reports.
interface TrackedHealth {
  state: HealthState;
  services: Set<string>;
}
const healthByServer = new WeakMap<GrpcServer, TrackedHealth[]>();

/**
 * Creates a {@link GrpcServer} with meshid's middleware chain, outermost first: OpenTelemetry
 * spans (`nice-grpc-opentelemetry`), call logging, error mapping ({@link errorMiddleware}), peer
 * identity (`callerSpiffeId`, filled by {@link peerIdentityInterceptor} from the verified client
 * certificate).
 */
export function createGrpcServer(params: CreateGrpcServerParams): GrpcServer {
  const { logger, tls } = params;
  const nice = createServer({ ...params.channelOptions, interceptors: [peerIdentityInterceptor] })
    .use(openTelemetryServerMiddleware())
    .use(loggingMiddleware({ logger }))
    .use(errorMiddleware({ logger }))
    .use(peerIdentityMiddleware({ logger }));
  let listening = false;

  const credentials = (): ServerCredentials =>
    tls === undefined ? ServerCredentials.createInsecure() : createServerTlsCredentials(tls);

  const server: GrpcServer = {
    with: (middleware) => nice.with(middleware),
    add: (definition, implementation) => nice.add(definition, implementation),
    async listen(address) {
      const port = await nice.listen(address, credentials());
      listening = true;
      return port;
    },
    async listenUnix(path, options) {
      await prepareUnixSocketPath(path, options.directoryMode ?? DEFAULT_UNIX_DIRECTORY_MODE);
      await nice.listen(`unix://${path}`, credentials());
      listening = true;
      await chmod(path, options.mode);
    },
    async shutdown(shutdownParams = {}) {
      for (const health of healthByServer.get(server) ?? []) markAllUnhealthy(health);
      if (!listening) return;
      listening = false;
      const graceMs = shutdownParams.graceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
      const graceful = nice.shutdown().then(
        () => true,
        () => false,
      );
      const finished = await raceGrace(graceful, graceMs, shutdownParams.signal);
      if (!finished) {
        logger.warn({ graceMs }, "gRPC server grace period ended; cancelling remaining calls");
        nice.forceShutdown();
      }
    },
  };
  return server;
}

/**
 * Adds the standard `grpc.health.v1.Health` service to `server` and returns its state; services
 * call `state.setStatus("healthy" | "unhealthy", serviceName)` (SERVING / NOT_SERVING; the
 * overall status `""` starts healthy). `shutdown` marks every known service unhealthy first.
 * Call before `listen`.
 */
export function addHealth(server: GrpcServer): HealthState {
  const state = HealthState();
  const tracked: TrackedHealth = { state, services: new Set([""]) };
  state.on("change", (event) => tracked.services.add(event.service));
  server.add(HealthDefinition, HealthServiceImpl(state));
  healthByServer.set(server, [...(healthByServer.get(server) ?? []), tracked]);
  return state;
}

function markAllUnhealthy(health: TrackedHealth): void {
  for (const service of health.services) {
    if (health.state.getStatus(service) !== "unknown") health.state.setStatus("unhealthy", service);
  }
}

async function raceGrace(
  graceful: Promise<boolean>,
  graceMs: number,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  if (signal?.aborted === true) return false;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
    onAbort = () => resolve(false);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([graceful, expired]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
  }
}

async function prepareUnixSocketPath(path: string, directoryMode: number): Promise<void> {
  const dir = dirname(path);
  const created = await mkdir(dir, { recursive: true, mode: directoryMode });
  // mkdir's mode is filtered by the umask; set it exactly on the directory we made.
  if (created !== undefined) await chmod(dir, directoryMode);
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) {
    throw new MeshidError(
      "failed_precondition",
      "grpc.unix_socket.not_a_socket",
      "the Unix socket path exists and is not a socket",
      { details: { path } },
    );
  }
  if (await isSocketLive(path)) {
    throw new MeshidError(
      "failed_precondition",
      "grpc.unix_socket.in_use",
      "another server is listening on the Unix socket",
      { details: { path } },
    );
  }
  await unlink(path);
}

function isSocketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}
