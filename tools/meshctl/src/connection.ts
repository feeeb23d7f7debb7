import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { MeshidError } from "@meshid/errors";
import {
  createGrpcChannel,
  createGrpcClient,
  createStaticSvidSource,
  type GrpcClientCallOptions,
  type SvidSource,
} from "@meshid/grpc-kit";
import { meshidCaV1, meshidProxyconfigV1 } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import type { Channel, Client, CompatServiceDefinition } from "nice-grpc";
import type { CliIo } from "./cli-io";
import { callFailure } from "./connection-errors";
import type { MeshctlContext, ServiceEndpointConfig } from "./context";
import { connectError, usageError } from "./exit-codes";
import { SPIFFE_ENDPOINT_SOCKET_ENV, fetchX509SvidsOnce } from "./workload-fetch";

/** Connection flags shared by every command (global options). */
export interface ConnectionFlags {
  readonly caSocket?: string;
  readonly caAddress?: string;
  readonly caServerId?: string;
  readonly proxyConfigSocket?: string;
  readonly proxyConfigAddress?: string;
  readonly proxyConfigServerId?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly bundle?: string;
  readonly workloadSocket?: string;
}

/** Where one gRPC service is and how meshctl authenticates to it. */
export type ServiceEndpoint =
  | { readonly kind: "unix"; readonly socketPath: string }
  | {
      readonly kind: "tls";
      readonly address: string;
      readonly serverId: string | undefined;
      readonly credentials:
        | {
            readonly kind: "files";
            readonly certFile: string;
            readonly keyFile: string;
            readonly bundleFile: string;
          }
        | { readonly kind: "workload"; readonly socket: string };
    };

/** Which service an endpoint is for: names flags, env vars and messages. */
interface ServiceSpec {
  /** Human name in messages, e.g. "the CA". */
  readonly name: string;
  /** Flag / env names. */
  readonly socketFlag: string;
  readonly socketEnv: string;
  readonly addressFlag: string;
  readonly addressEnv: string;
  /** Path of the server's SPIFFE ID used when none is configured. */
  readonly defaultServerPath: string;
}

const CA_SPEC: ServiceSpec = {
  name: "the CA",
  socketFlag: "--ca-socket",
  socketEnv: "MESHCTL_CA_SOCKET",
  addressFlag: "--ca-address",
  addressEnv: "MESHCTL_CA_ADDRESS",
  defaultServerPath: "/meshid/ca",
};

const PROXY_CONFIG_SPEC: ServiceSpec = {
  name: "proxy-config",
  socketFlag: "--proxy-config-socket",
  socketEnv: "MESHCTL_PROXY_CONFIG_SOCKET",
  addressFlag: "--proxy-config-address",
  addressEnv: "MESHCTL_PROXY_CONFIG_ADDRESS",
  defaultServerPath: "/meshid/proxy-config",
};

/** Parameters of {@link resolveEndpoint}. */
interface ResolveEndpointParams {
  readonly spec: ServiceSpec;
  readonly socketFlag: string | undefined;
  readonly addressFlag: string | undefined;
  readonly serverIdFlag: string | undefined;
  readonly fromContext: ServiceEndpointConfig | undefined;
  readonly flags: ConnectionFlags;
  readonly context: MeshctlContext;
  readonly io: CliIo;
}

/**
 * Decides where a service is: flag, then environment, then context file. A socket (admin,
 * plaintext, every caller is admin) wins over an address (mTLS with an SVID from files or the
 * Workload API).
 *
 * @throws MeshidError `meshctl.usage` when nothing names the service or TLS credentials are
 *   missing.
 */
function resolveEndpoint(p: ResolveEndpointParams): ServiceEndpoint {
  const { spec, io, flags, context } = p;
  const abs = (path: string): string => resolve(io.cwd, path);
  const socket = p.socketFlag ?? io.env[spec.socketEnv];
  if (socket !== undefined) return { kind: "unix", socketPath: abs(socket) };
  const flagAddress = p.addressFlag ?? io.env[spec.addressEnv];
  const fromContext = flagAddress === undefined ? p.fromContext : undefined;
  if (flagAddress === undefined && fromContext?.adminSocket !== undefined) {
    return { kind: "unix", socketPath: fromContext.adminSocket };
  }
  const address = flagAddress ?? fromContext?.address;
  if (address === undefined) {
    throw usageError(
      `no address for ${spec.name}: pass ${spec.socketFlag} <path> or ${spec.addressFlag} ` +
        `<host:port>, or run the local mesh (npm start) which writes .meshid/meshctl.yaml`,
    );
  }
  const serverId =
    p.serverIdFlag ??
    fromContext?.serverId ??
    (context.trustDomain === undefined
      ? undefined
      : `spiffe://${context.trustDomain}${spec.defaultServerPath}`);
  if (serverId !== undefined) parseSpiffeId(serverId);
  const cert = flags.cert ?? fromContext?.certFile;
  const key = flags.key ?? fromContext?.keyFile;
  const bundle = flags.bundle ?? fromContext?.bundleFile;
  if (cert !== undefined || key !== undefined || bundle !== undefined) {
    if (cert === undefined || key === undefined || bundle === undefined) {
      throw usageError("--cert, --key and --bundle go together (all three or none)");
    }
    return {
      kind: "tls",
      address,
      serverId,
      credentials: {
        kind: "files",
        certFile: abs(cert),
        keyFile: abs(key),
        bundleFile: abs(bundle),
      },
    };
  }
  const workload =
    flags.workloadSocket ??
    fromContext?.workloadSocket ??
    context.workloadSocket ??
    io.env[SPIFFE_ENDPOINT_SOCKET_ENV];
  if (workload === undefined) {
    throw usageError(
      `${spec.name} at ${address} needs an X509-SVID: pass --cert/--key/--bundle or ` +
        `--workload-socket (or set ${SPIFFE_ENDPOINT_SOCKET_ENV})`,
    );
  }
  return {
    kind: "tls",
    address,
    serverId,
    credentials: {
      kind: "workload",
      socket: workload.startsWith("unix:") ? workload : abs(workload),
    },
  };
}

/** Resolves the CA endpoint (see {@link resolveEndpoint}). */
export function resolveCaEndpoint(
  flags: ConnectionFlags,
  context: MeshctlContext,
  io: CliIo,
): ServiceEndpoint {
  return resolveEndpoint({
    spec: CA_SPEC,
    socketFlag: flags.caSocket,
    addressFlag: flags.caAddress,
    serverIdFlag: flags.caServerId,
    fromContext: context.ca,
    flags,
    context,
    io,
  });
}

/** Resolves the proxy-config endpoint (see {@link resolveEndpoint}). */
export function resolveProxyConfigEndpoint(
  flags: ConnectionFlags,
  context: MeshctlContext,
  io: CliIo,
): ServiceEndpoint {
  return resolveEndpoint({
    spec: PROXY_CONFIG_SPEC,
    socketFlag: flags.proxyConfigSocket,
    addressFlag: flags.proxyConfigAddress,
    serverIdFlag: flags.proxyConfigServerId,
    fromContext: context.proxyConfig,
    flags,
    context,
    io,
  });
}

/** A human description of an endpoint for messages ("the CA admin socket /x"). */
export function describeEndpoint(name: string, endpoint: ServiceEndpoint): string {
  return endpoint.kind === "unix"
    ? `${name} admin socket ${endpoint.socketPath}`
    : `${name} at ${endpoint.address}`;
}

function readFile(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw usageError(`cannot read ${what} ${path}: ${(err as Error).message}`, err);
  }
}

async function svidSourceFor(
  endpoint: Extract<ServiceEndpoint, { kind: "tls" }>,
  timeoutMs: number,
): Promise<SvidSource> {
  const creds = endpoint.credentials;
  if (creds.kind === "files") {
    return createStaticSvidSource({
      certChainPem: readFile(creds.certFile, "certificate file"),
      keyPem: readFile(creds.keyFile, "key file"),
      bundlePem: readFile(creds.bundleFile, "bundle file"),
    });
  }
  const svids = await fetchX509SvidsOnce({ endpoint: creds.socket, timeoutMs });
  const first = svids[0];
  if (first === undefined) {
    throw new MeshidError(
      "permission_denied",
      "meshctl.no_svid",
      `the Workload API at ${creds.socket} has no X509-SVID for meshctl`,
    );
  }
  return createStaticSvidSource(first);
}

/** An open gRPC channel to one service plus a way to wrap its calls. */
export interface ServiceConnection {
  readonly channel: Channel;
  /** How the service is named in messages. */
  readonly describe: string;
  /**
   * Awaits `call`, turning failures into the MeshidError meshctl reports (connect failures →
   * exit 4 naming the endpoint).
   */
  call<T>(call: Promise<T>): Promise<T>;
  /** A typed client with the run's deadline. */
  client<S extends CompatServiceDefinition>(definition: S): Client<S, GrpcClientCallOptions>;
  close(): void;
}

/**
 * Opens a channel to `endpoint`. A missing Unix socket fails at once with exit code 4 and a
 * hint; TCP endpoints get mTLS with the SVID from files or the Workload API, verifying the
 * server's SPIFFE ID.
 */
export async function openServiceConnection(params: {
  readonly name: string;
  readonly endpoint: ServiceEndpoint;
  readonly timeoutMs: number;
  readonly socketFlag: string;
}): Promise<ServiceConnection> {
  const { endpoint, timeoutMs } = params;
  const describe = describeEndpoint(params.name, endpoint);
  let channel: Channel;
  if (endpoint.kind === "unix") {
    if (!existsSync(endpoint.socketPath)) {
      throw connectError(
        `cannot connect to ${describe}: it does not exist ` +
          `(is the local mesh running? start it with \`npm start\`, or pass ${params.socketFlag} <path>)`,
      );
    }
    channel = createGrpcChannel({ target: `unix://${endpoint.socketPath}` });
  } else {
    const source = await svidSourceFor(endpoint, timeoutMs);
    const serverId = endpoint.serverId;
    channel = createGrpcChannel({
      target: endpoint.address,
      tls: serverId === undefined ? { source } : { source, serverId: parseSpiffeId(serverId) },
    });
  }
  return {
    channel,
    describe,
    call: async (p) => {
      try {
        return await p;
      } catch (err) {
        throw callFailure(err, describe);
      }
    },
    client: (definition) => createGrpcClient(definition, channel, { deadlineMs: timeoutMs }),
    close: () => channel.close(),
  };
}

/** Typed clients of the CA's admin APIs on one connection. */
export interface CaClients {
  readonly conn: ServiceConnection;
  readonly entries: Client<typeof meshidCaV1.EntryServiceDefinition, GrpcClientCallOptions>;
  readonly agents: Client<typeof meshidCaV1.AgentServiceDefinition, GrpcClientCallOptions>;
  readonly bundle: Client<typeof meshidCaV1.BundleServiceDefinition, GrpcClientCallOptions>;
  readonly authorities: Client<typeof meshidCaV1.AuthorityServiceDefinition, GrpcClientCallOptions>;
}

/** Opens the CA connection and its clients. */
export async function openCa(
  flags: ConnectionFlags,
  context: MeshctlContext,
  io: CliIo,
  timeoutMs: number,
): Promise<CaClients> {
  const conn = await openServiceConnection({
    name: "the CA",
    endpoint: resolveCaEndpoint(flags, context, io),
    timeoutMs,
    socketFlag: CA_SPEC.socketFlag,
  });
  return {
    conn,
    entries: conn.client(meshidCaV1.EntryServiceDefinition),
    agents: conn.client(meshidCaV1.AgentServiceDefinition),
    bundle: conn.client(meshidCaV1.BundleServiceDefinition),
    authorities: conn.client(meshidCaV1.AuthorityServiceDefinition),
  };
}

/** Opens the proxy-config connection and its MeshConfigService client. */
export async function openMeshConfig(
  flags: ConnectionFlags,
  context: MeshctlContext,
  io: CliIo,
  timeoutMs: number,
): Promise<{
  readonly conn: ServiceConnection;
  readonly meshConfig: Client<
    typeof meshidProxyconfigV1.MeshConfigServiceDefinition,
    GrpcClientCallOptions
  >;
}> {
  const conn = await openServiceConnection({
    name: "proxy-config",
    endpoint: resolveProxyConfigEndpoint(flags, context, io),
    timeoutMs,
    socketFlag: PROXY_CONFIG_SPEC.socketFlag,
  });
  return { conn, meshConfig: conn.client(meshidProxyconfigV1.MeshConfigServiceDefinition) };
}
