// proxy-config's configuration: one zod schema, loaded from env + optional YAML by
// @meshid/config (MESHID_PROXY_CONFIG_*).
import {
  listenAddressSchema,
  loadConfig,
  logLevelSchema,
  opsSchema,
  pathSchema,
  type ListenAddress,
  type LogLevel,
} from "@meshid/config";
import { parseTrustDomain, tryParseSpiffeId } from "@meshid/spiffe";
import { z } from "zod";
import { DEFAULT_MESH_CONFIG_NAME } from "./adapters/mesh-config-document";

/** Default trust domain. */
export const DEFAULT_TRUST_DOMAIN = "example.org";
/** Default gRPC listen address (TCP, mTLS). */
export const DEFAULT_LISTEN = "0.0.0.0:8445";
/** Default listen address of the ops server (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9095";
/** Default admin Unix socket (its directory is made 0700; every caller is an admin). */
export const DEFAULT_ADMIN_SOCKET_PATH = "/run/meshid/proxy-config/admin.sock";
/** Default MeshConfig file when `meshConfig.source` is `file`. */
export const DEFAULT_MESH_CONFIG_FILE = "/var/lib/meshid/proxy-config/meshconfig.yaml";
/** Default limit of open WatchProxyConfig streams (one per sidecar). */
export const DEFAULT_MAX_WATCH_STREAMS = 20_000;
/** Where the MeshConfig lives. */
export const MESH_CONFIG_SOURCES = ["file", "kubernetes"] as const;

const tlsSchema = z
  .object({
    workloadSocketPath: pathSchema.optional(),
    certFile: pathSchema.optional(),
    keyFile: pathSchema.optional(),
    bundleFile: pathSchema.optional(),
  })
  .strict()
  .prefault({});

/** Schema of the proxy-config configuration file / environment. */
export const proxyConfigConfigSchema = z
  .object({
    trustDomain: z.string().default(DEFAULT_TRUST_DOMAIN),
    listen: listenAddressSchema().default(DEFAULT_LISTEN),
    adminSocketPath: pathSchema.default(DEFAULT_ADMIN_SOCKET_PATH),
    adminIds: z.array(z.string()).default([]),
    tls: tlsSchema,
    meshConfig: z
      .object({
        source: z.enum(MESH_CONFIG_SOURCES).default("file"),
        name: z
          .string()
          .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, "must be a Kubernetes name")
          .default(DEFAULT_MESH_CONFIG_NAME),
        path: pathSchema.default(DEFAULT_MESH_CONFIG_FILE),
      })
      .strict()
      .prefault({}),
    kubernetes: z
      .object({
        enabled: z.boolean().default(false),
        kubeconfigFile: pathSchema.optional(),
      })
      .strict()
      .prefault({}),
    natsUrl: z.string().url().optional(),
    limits: z
      .object({
        maxWatchStreams: z.number().int().min(1).default(DEFAULT_MAX_WATCH_STREAMS),
      })
      .strict()
      .prefault({}),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), { when: () => true });

interface LooseConfig {
  readonly trustDomain?: unknown;
  readonly adminIds?: unknown;
  readonly tls?: Record<string, unknown>;
  readonly meshConfig?: { readonly source?: unknown };
  readonly kubernetes?: { readonly enabled?: unknown };
}

function crossFieldChecks(c: LooseConfig, ctx: z.RefinementCtx): void {
  let td: string | undefined;
  if (typeof c.trustDomain === "string") {
    try {
      td = parseTrustDomain(c.trustDomain).name;
    } catch (err) {
      ctx.addIssue({ code: "custom", path: ["trustDomain"], message: (err as Error).message });
    }
  }
  if (Array.isArray(c.adminIds)) {
    c.adminIds.forEach((id: unknown, i) => {
      if (typeof id !== "string") return;
      const parsed = tryParseSpiffeId(id);
      if (!parsed.ok) {
        ctx.addIssue({ code: "custom", path: ["adminIds", i], message: parsed.error.message });
      } else if (td !== undefined && parsed.id.trustDomain.name !== td) {
        ctx.addIssue({
          code: "custom",
          path: ["adminIds", i],
          message: `must be in trust domain "${td}"`,
        });
      }
    });
  }
  const tls = c.tls ?? {};
  const files = ["certFile", "keyFile", "bundleFile"].filter((f) => tls[f] !== undefined);
  const socket = tls.workloadSocketPath !== undefined;
  if (socket && files.length > 0) {
    ctx.addIssue({
      code: "custom",
      path: ["tls"],
      message: "set either workloadSocketPath or certFile/keyFile/bundleFile, not both",
    });
  } else if (!socket && files.length !== 3) {
    for (const field of ["certFile", "keyFile", "bundleFile"]) {
      if (tls[field] === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["tls", field],
          message: "is required (or set tls.workloadSocketPath to use the node agent's SVID)",
        });
      }
    }
  }
  if (c.meshConfig?.source === "kubernetes" && c.kubernetes?.enabled !== true) {
    ctx.addIssue({
      code: "custom",
      path: ["kubernetes", "enabled"],
      message: 'must be true when meshConfig.source is "kubernetes"',
    });
  }
}

/** Where the service's own SVID comes from. */
export type TlsSourceConfig =
  | { readonly kind: "workload_api"; readonly socketPath: string }
  | {
      readonly kind: "files";
      readonly certFile: string;
      readonly keyFile: string;
      readonly bundleFile: string;
    };

/** Where the MeshConfig lives. */
export type MeshConfigSourceConfig =
  | { readonly kind: "kubernetes"; readonly name: string }
  | { readonly kind: "file"; readonly path: string };

/** The validated proxy-config configuration. */
export interface ProxyConfigConfig {
  readonly trustDomain: string;
  /** gRPC over TCP with mTLS. */
  readonly listen: ListenAddress;
  readonly adminSocketPath: string;
  /** SPIFFE IDs allowed to update the MeshConfig over mTLS. */
  readonly adminIds: readonly string[];
  readonly tls: TlsSourceConfig;
  readonly meshConfig: MeshConfigSourceConfig;
  /** Pods (annotations, ports) and Events; `undefined` = no Kubernetes. */
  readonly kubernetes?: { readonly kubeconfigFile?: string };
  /** Without it config.updated is not published. */
  readonly natsUrl?: string;
  readonly limits: { readonly maxWatchStreams: number };
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Output type of {@link proxyConfigConfigSchema}. */
export type ParsedProxyConfigConfig = z.output<typeof proxyConfigConfigSchema>;

/** Builds the {@link ProxyConfigConfig} from parsed input (cross-field checks passed). */
export function proxyConfigConfigFromParsed(raw: ParsedProxyConfigConfig): ProxyConfigConfig {
  const tls: TlsSourceConfig =
    raw.tls.workloadSocketPath !== undefined
      ? { kind: "workload_api", socketPath: raw.tls.workloadSocketPath }
      : {
          kind: "files",
          certFile: raw.tls.certFile ?? "",
          keyFile: raw.tls.keyFile ?? "",
          bundleFile: raw.tls.bundleFile ?? "",
        };
  const config: ProxyConfigConfig = {
    trustDomain: parseTrustDomain(raw.trustDomain).name,
    listen: raw.listen,
    adminSocketPath: raw.adminSocketPath,
    adminIds: raw.adminIds,
    tls,
    meshConfig:
      raw.meshConfig.source === "kubernetes"
        ? { kind: "kubernetes", name: raw.meshConfig.name }
        : { kind: "file", path: raw.meshConfig.path },
    ...(raw.kubernetes.enabled
      ? {
          kubernetes:
            raw.kubernetes.kubeconfigFile === undefined
              ? {}
              : { kubeconfigFile: raw.kubernetes.kubeconfigFile },
        }
      : {}),
    ...(raw.natsUrl === undefined ? {} : { natsUrl: raw.natsUrl }),
    limits: raw.limits,
    ops: raw.ops,
    logLevel: raw.logLevel,
  };
  return Object.freeze(config);
}

/** Parameters of {@link loadProxyConfigConfig}. */
export interface LoadProxyConfigConfigParams {
  /** Optional YAML file. */
  readonly file?: string;
  /** Environment holding `MESHID_PROXY_CONFIG_*` variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the configuration (env > file > defaults) and returns it frozen.
 * @throws ConfigError (`config.invalid`) listing every problem at once (main exits 2).
 */
export function loadProxyConfigConfig(params: LoadProxyConfigConfigParams): ProxyConfigConfig {
  const raw = loadConfig({
    service: "proxy-config",
    schema: proxyConfigConfigSchema,
    env: params.env,
    ...(params.file === undefined ? {} : { file: params.file }),
  });
  return proxyConfigConfigFromParsed(raw);
}

/**
 * Builds a {@link ProxyConfigConfig} for tests and embedding from partial input.
 * @throws ZodError when the input is invalid.
 */
export function buildProxyConfigConfig(
  input: z.input<typeof proxyConfigConfigSchema>,
): ProxyConfigConfig {
  return proxyConfigConfigFromParsed(proxyConfigConfigSchema.parse(input));
}
