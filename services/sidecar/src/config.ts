// The sidecar's configuration: one zod schema, loaded from env + optional YAML by @meshid/config,
// plus the standard variables every pod gives it (SPIFFE_ENDPOINT_SOCKET, POD_NAMESPACE,
// POD_NAME).
import {
  ConfigError,
  durationSchema,
  loadConfig,
  logLevelSchema,
  opsSchema,
  pathSchema,
  type ConfigProblem,
  type ListenAddress,
  type LogLevel,
} from "@meshid/config";
import { tryParseSpiffeId } from "@meshid/spiffe";
import { SPIFFE_ENDPOINT_SOCKET_ENV, socketPathFromEnv } from "@meshid/workload-api";
import { z } from "zod";

/** Default Workload API socket when neither the config nor `SPIFFE_ENDPOINT_SOCKET` names one. */
export const DEFAULT_WORKLOAD_SOCKET = "/run/meshid/agent/workload.sock";
/** Default stable path of the SVID directory link NGINX reads. */
export const DEFAULT_SVID_DIR = "/run/meshid/sidecar/svid";
/** Default NGINX prefix (`-p`): nginx.conf, pid, logs/, tmp/ and internal sockets. */
export const DEFAULT_NGINX_PREFIX = "/var/lib/meshid/sidecar/nginx";
/** Default NGINX binary (looked up in PATH). */
export const DEFAULT_NGINX_BINARY = "nginx";
/** Default time a reload may take until new workers run. */
export const DEFAULT_RELOAD_TIMEOUT = "15s";
/** Default interval at which a static config template file is checked for changes. */
export const DEFAULT_FILE_POLL_INTERVAL = "2s";
/** Default ops listen address (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9094";
/** Path of proxy-config's SPIFFE ID; the default `proxyConfig.serverId` is `spiffe://<td>` + this. */
export const DEFAULT_PROXY_CONFIG_SERVER_ID_PATH = "/meshid/proxy-config";
/** Environment variables naming the pod (downward API). */
export const POD_NAMESPACE_ENV = "POD_NAMESPACE";
export const POD_NAME_ENV = "POD_NAME";
/** How the sidecar runs NGINX. */
export const NGINX_MANAGE_MODES = ["spawn", "signal"] as const;
/** Longest prefix path: Unix socket paths inside it must fit in 108 bytes. */
export const MAX_NGINX_PREFIX_LENGTH = 80;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
// Paths rendered into nginx.conf must need no quoting there.
const NGINX_SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

const portSchema = z.number().int().min(1).max(65535);
const protocolSchema = z.enum(["http", "tcp"]);
const nginxPathSchema = pathSchema.refine((p) => NGINX_SAFE_PATH.test(p), {
  message: "must use only letters, digits and . _ / - (it is written into nginx.conf)",
});

const inboundSchema = z
  .object({
    name: z.string().default(""),
    listenPort: portSchema,
    appPort: portSchema,
    protocol: protocolSchema.default("http"),
  })
  .strict();

const outboundSchema = z
  .object({
    name: z.string().default(""),
    listenPort: portSchema,
    destinationHost: z.string().min(1),
    destinationPort: portSchema,
    protocol: protocolSchema.default("http"),
    serverSpiffeId: z.string().optional(),
    serverName: z.string().optional(),
  })
  .strict();

/** Schema of the sidecar configuration file / environment (`MESHID_SIDECAR_*`). */
export const sidecarConfigSchema = z
  .object({
    workloadSocket: pathSchema.optional(),
    spiffeId: z.string().optional(),
    svidDir: nginxPathSchema.default(DEFAULT_SVID_DIR),
    proxyConfig: z
      .object({
        address: z
          .string()
          .refine((s) => HOST_PORT.test(s), { message: 'must be "host:port"' })
          .optional(),
        serverId: z.string().optional(),
        file: pathSchema.optional(),
        filePollInterval: durationSchema({ min: 0.05 }).default(DEFAULT_FILE_POLL_INTERVAL),
      })
      .strict(),
    pod: z
      .object({ namespace: z.string().min(1).optional(), name: z.string().min(1).optional() })
      .strict()
      .prefault({}),
    inbound: z.array(inboundSchema).default([]),
    outbound: z.array(outboundSchema).default([]),
    nginx: z
      .object({
        binary: z.string().min(1).default(DEFAULT_NGINX_BINARY),
        prefix: nginxPathSchema
          .refine((p) => p.length <= MAX_NGINX_PREFIX_LENGTH, {
            message: `must be at most ${MAX_NGINX_PREFIX_LENGTH} characters long`,
          })
          .default(DEFAULT_NGINX_PREFIX),
        manage: z.enum(NGINX_MANAGE_MODES).default("spawn"),
        pidFile: pathSchema.optional(),
        user: z
          .string()
          .refine((u) => USER_NAME.test(u), { message: "must be a user name" })
          .optional(),
        streamModulePath: nginxPathSchema.optional(),
        reloadTimeout: durationSchema({ min: 1 }).default(DEFAULT_RELOAD_TIMEOUT),
      })
      .strict()
      .prefault({}),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), { when: () => true });

interface LooseSidecarConfig {
  readonly spiffeId?: unknown;
  readonly proxyConfig?: { address?: unknown; file?: unknown; serverId?: unknown };
  readonly inbound?: readonly { listenPort?: unknown }[];
  readonly outbound?: readonly { listenPort?: unknown; serverSpiffeId?: unknown }[];
}

function crossFieldChecks(c: LooseSidecarConfig, ctx: z.RefinementCtx): void {
  const checkId = (value: unknown, path: (string | number)[]): void => {
    if (typeof value !== "string") return;
    const parsed = tryParseSpiffeId(value);
    if (!parsed.ok) ctx.addIssue({ code: "custom", path, message: parsed.error.message });
  };
  checkId(c.spiffeId, ["spiffeId"]);
  const pc = c.proxyConfig;
  if (pc !== undefined) {
    if ((pc.address === undefined) === (pc.file === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["proxyConfig"],
        message:
          "set exactly one of proxyConfig.address (proxy-config service) or proxyConfig.file",
      });
    }
    if (pc.serverId !== undefined && pc.address === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["proxyConfig", "serverId"],
        message: "only applies with proxyConfig.address",
      });
    }
    checkId(pc.serverId, ["proxyConfig", "serverId"]);
  }
  const seen = new Map<number, string>();
  const claim = (port: unknown, path: string): void => {
    if (typeof port !== "number") return;
    const other = seen.get(port);
    if (other !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: path.split("."),
        message: `port ${port} is already used by ${other}`,
      });
    } else {
      seen.set(port, path);
    }
  };
  c.inbound?.forEach((p, i) => claim(p.listenPort, `inbound.${i}.listenPort`));
  c.outbound?.forEach((r, i) => {
    claim(r.listenPort, `outbound.${i}.listenPort`);
    checkId(r.serverSpiffeId, ["outbound", i, "serverSpiffeId"]);
  });
}

/** Application protocol of a port. */
export type AppProtocol = "http" | "tcp";

/** Traffic for the application, arriving on `listenPort`, forwarded to 127.0.0.1:`appPort`. */
export interface InboundPortConfig {
  readonly name: string;
  readonly listenPort: number;
  readonly appPort: number;
  readonly protocol: AppProtocol;
}

/** The application connects to 127.0.0.1:`listenPort`; the sidecar connects on, mTLS when `serverSpiffeId` is set. */
export interface OutboundRouteConfig {
  readonly name: string;
  readonly listenPort: number;
  readonly destinationHost: string;
  readonly destinationPort: number;
  readonly protocol: AppProtocol;
  readonly serverSpiffeId?: string;
  readonly serverName?: string;
}

/** Where the NGINX configuration comes from. */
export type ProxyConfigSourceConfig =
  | {
      readonly kind: "service";
      /** proxy-config's gRPC address, `host:port` (mTLS with the sidecar's SVID). */
      readonly address: string;
      /** SPIFFE ID proxy-config must present; undefined = `spiffe://<our td>/meshid/proxy-config`. */
      readonly serverId?: string;
    }
  | {
      readonly kind: "file";
      /** Static nginx.conf template (see README "Template placeholders"). */
      readonly file: string;
      /** Change check interval, in seconds. */
      readonly pollIntervalSeconds: number;
    };

/** The validated sidecar configuration (durations in seconds, paths absolute). */
export interface SidecarConfig {
  /** Workload API socket path. */
  readonly workloadSocket: string;
  /** Exact SPIFFE ID of the SVID to use; undefined = the first (default) SVID. */
  readonly spiffeId?: string;
  /** Stable path of the directory link holding svid.pem, svid.key and bundle.pem. */
  readonly svidDir: string;
  readonly proxyConfig: ProxyConfigSourceConfig;
  /** The pod, from `pod.*` or POD_NAMESPACE / POD_NAME; empty when unknown. */
  readonly pod: { readonly namespace: string; readonly name: string };
  readonly inbound: readonly InboundPortConfig[];
  readonly outbound: readonly OutboundRouteConfig[];
  readonly nginx: {
    readonly binary: string;
    readonly prefix: string;
    /** `<prefix>/nginx.conf`: the file NGINX runs with. */
    readonly configFile: string;
    readonly manage: (typeof NGINX_MANAGE_MODES)[number];
    /** Pid file of the NGINX master (`<prefix>/nginx.pid` unless set). */
    readonly pidFile: string;
    readonly user?: string;
    /** Module path; undefined = resolve from `nginx -V` at start. */
    readonly streamModulePath?: string;
    readonly reloadTimeoutSeconds: number;
  };
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Output type of {@link sidecarConfigSchema}. */
export type ParsedSidecarConfig = z.output<typeof sidecarConfigSchema>;

/** Parameters of {@link loadSidecarConfig}. */
export interface LoadSidecarConfigParams {
  /** Optional YAML file. */
  readonly file?: string;
  /** Environment: `MESHID_SIDECAR_*`, `SPIFFE_ENDPOINT_SOCKET`, `POD_NAMESPACE`, `POD_NAME`. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the sidecar configuration (env > file > defaults; the Workload API socket from
 * `workloadSocket`, else `SPIFFE_ENDPOINT_SOCKET`, else {@link DEFAULT_WORKLOAD_SOCKET}) and
 * returns it frozen.
 * @throws ConfigError (`config.invalid`) listing every problem at once (main exits 2).
 */
export function loadSidecarConfig(params: LoadSidecarConfigParams): SidecarConfig {
  let raw: ParsedSidecarConfig | undefined;
  let error: ConfigError | undefined;
  try {
    raw = loadConfig({
      service: "sidecar",
      schema: sidecarConfigSchema,
      env: params.env,
      ...(params.file === undefined ? {} : { file: params.file }),
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    error = err;
  }
  const problems: ConfigProblem[] = [...(error?.problems ?? [])];
  let envSocket: string | undefined;
  try {
    envSocket = socketPathFromEnv(params.env);
  } catch (err) {
    problems.push({
      source: SPIFFE_ENDPOINT_SOCKET_ENV,
      path: "workloadSocket",
      message: (err as Error).message,
    });
  }
  if (problems.length > 0 || raw === undefined) throw new ConfigError("sidecar", problems);
  return sidecarConfigFromParsed(raw, params.env, envSocket);
}

/** Builds the {@link SidecarConfig} from parsed input and the pod's standard variables. */
export function sidecarConfigFromParsed(
  raw: ParsedSidecarConfig,
  env: Readonly<Record<string, string | undefined>> = {},
  envSocket?: string,
): SidecarConfig {
  const pc = raw.proxyConfig;
  const proxyConfig: ProxyConfigSourceConfig =
    pc.file !== undefined
      ? { kind: "file", file: pc.file, pollIntervalSeconds: pc.filePollInterval }
      : {
          kind: "service",
          address: pc.address ?? "",
          ...(pc.serverId === undefined ? {} : { serverId: pc.serverId }),
        };
  const prefix = raw.nginx.prefix.replace(/\/+$/, "");
  const config: SidecarConfig = {
    workloadSocket: raw.workloadSocket ?? envSocket ?? DEFAULT_WORKLOAD_SOCKET,
    ...(raw.spiffeId === undefined ? {} : { spiffeId: raw.spiffeId }),
    svidDir: raw.svidDir.replace(/\/+$/, ""),
    proxyConfig,
    pod: {
      namespace: raw.pod.namespace ?? env[POD_NAMESPACE_ENV] ?? "",
      name: raw.pod.name ?? env[POD_NAME_ENV] ?? "",
    },
    inbound: raw.inbound.map((p) => ({ ...p })),
    outbound: raw.outbound.map((r) => ({
      name: r.name,
      listenPort: r.listenPort,
      destinationHost: r.destinationHost,
      destinationPort: r.destinationPort,
      protocol: r.protocol,
      ...(r.serverSpiffeId === undefined ? {} : { serverSpiffeId: r.serverSpiffeId }),
      ...(r.serverName === undefined ? {} : { serverName: r.serverName }),
    })),
    nginx: {
      binary: raw.nginx.binary,
      prefix,
      configFile: `${prefix}/nginx.conf`,
      manage: raw.nginx.manage,
      pidFile: raw.nginx.pidFile ?? `${prefix}/nginx.pid`,
      ...(raw.nginx.user === undefined ? {} : { user: raw.nginx.user }),
      ...(raw.nginx.streamModulePath === undefined
        ? {}
        : { streamModulePath: raw.nginx.streamModulePath }),
      reloadTimeoutSeconds: raw.nginx.reloadTimeout,
    },
    ops: raw.ops,
    logLevel: raw.logLevel,
  };
  return Object.freeze(config);
}

/**
 * Builds a {@link SidecarConfig} for tests and embedding from partial input (same schema and
 * defaults as the file/env form).
 * @throws ZodError when the input is invalid.
 */
export function buildSidecarConfig(
  input: z.input<typeof sidecarConfigSchema>,
  env: Readonly<Record<string, string | undefined>> = {},
): SidecarConfig {
  return sidecarConfigFromParsed(sidecarConfigSchema.parse(input), env);
}
