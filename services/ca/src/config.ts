// The CA's configuration: one zod schema, loaded from env + optional YAML by @meshid/config.
import { join } from "node:path";
import {
  durationSchema,
  listenAddressSchema,
  loadConfig,
  logLevelSchema,
  opsSchema,
  pathSchema,
  type ListenAddress,
  type LogLevel,
} from "@meshid/config";
import { KEY_TYPES, type KeyType } from "@meshid/pki";
import { parseTrustDomain, tryParseSpiffeId } from "@meshid/spiffe";
import { z } from "zod";

/** Default trust domain. */
export const DEFAULT_TRUST_DOMAIN = "example.org";
/**
 * Default gRPC listen address (TCP, TLS). 8443: the usual unprivileged HTTPS-style port, distinct
 * from SPIRE's 8081 so both can run side by side during a migration.
 */
export const DEFAULT_LISTEN = "0.0.0.0:8443";
/** Default listen address of the ops server (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9090";
/** Default data directory (mode 0700): keys, SQLite store, admin socket. */
export const DEFAULT_DATA_DIR = "/var/lib/meshid/ca";
/** Admin socket path relative to the data dir when `adminSocketPath` is not set. */
export const DEFAULT_ADMIN_SOCKET_RELATIVE = join("admin", "admin.sock");
/** SQLite file name relative to the data dir when `datastore.path` is not set. */
export const DEFAULT_SQLITE_FILE = "datastore.sqlite3";
/** Default lifetime of the CA's own authorities. */
export const DEFAULT_CA_TTL = "720h";
/** Smallest accepted caTtl, in seconds (24 h). */
export const MIN_CA_TTL_SECONDS = 24 * 3600;
/** Default X509-SVID lifetime of workload SVIDs. */
export const DEFAULT_SVID_TTL = "1h";
/** Smallest accepted svidTtl / agentSvidTtl, in seconds. */
export const MIN_SVID_TTL_SECONDS = 60;
/** Default lifetime of agent SVIDs. */
export const DEFAULT_AGENT_SVID_TTL = "1h";
/** Default key type of the CA's authorities. */
export const DEFAULT_CA_KEY_TYPE: KeyType = "ec-p256";
/** Default audience of projected service-account tokens for k8s_psat attestation. */
export const DEFAULT_PSAT_AUDIENCE = "meshid-ca";
/** Default and upper bound of items in one batch call. */
export const DEFAULT_MAX_BATCH_SIZE = 500;
/** Default largest gRPC message the CA accepts, in bytes (4 MiB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Default sustained signing rate per agent, in SVIDs per second. */
export const DEFAULT_SIGN_RATE_PER_SECOND = 500;
/** Default signing burst per agent, in SVIDs. */
export const DEFAULT_SIGN_RATE_BURST = 1000;
/** Datastore types the CA knows; only `sqlite` is implemented for now. */
export const DATASTORE_TYPES = ["sqlite", "postgres"] as const;
/** Key manager types. */
export const KEY_MANAGER_TYPES = ["disk", "memory"] as const;

const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const psatClusterSchema = z
  .object({
    name: z.string().min(1, "must not be empty"),
    audience: z.string().min(1, "must not be empty").default(DEFAULT_PSAT_AUDIENCE),
    allowedServiceAccounts: z
      .array(z.string().regex(SERVICE_ACCOUNT, 'must be "<namespace>:<service account>"'))
      .min(1, "must list at least one service account"),
    kubeconfigFile: pathSchema.optional(),
  })
  .strict();

/** Schema of the CA configuration file / environment (before derived paths are filled in). */
export const caConfigSchema = z
  .object({
    trustDomain: z.string().default(DEFAULT_TRUST_DOMAIN),
    listen: listenAddressSchema().default(DEFAULT_LISTEN),
    adminSocketPath: pathSchema.optional(),
    dataDir: pathSchema.default(DEFAULT_DATA_DIR),
    datastore: z
      .object({
        type: z.string().default("sqlite"),
        path: pathSchema.optional(),
      })
      .strict()
      .prefault({}),
    keyManager: z.enum(KEY_MANAGER_TYPES).default("disk"),
    upstreamAuthorityFile: pathSchema.optional(),
    caTtl: durationSchema({ min: MIN_CA_TTL_SECONDS }).default(DEFAULT_CA_TTL),
    svidTtl: durationSchema({ min: MIN_SVID_TTL_SECONDS }).default(DEFAULT_SVID_TTL),
    agentSvidTtl: durationSchema({ min: MIN_SVID_TTL_SECONDS }).default(DEFAULT_AGENT_SVID_TTL),
    caKeyType: z.enum(KEY_TYPES as [KeyType, ...KeyType[]]).default(DEFAULT_CA_KEY_TYPE),
    adminIds: z.array(z.string()).default([]),
    psatClusters: z.array(psatClusterSchema).default([]),
    limits: z
      .object({
        maxBatchSize: z.number().int().min(1).max(10_000).default(DEFAULT_MAX_BATCH_SIZE),
        maxMessageBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(64 * 1024 * 1024)
          .default(DEFAULT_MAX_MESSAGE_BYTES),
        signRatePerAgent: z
          .object({
            perSecond: z.number().positive().default(DEFAULT_SIGN_RATE_PER_SECOND),
            burst: z.number().int().min(1).default(DEFAULT_SIGN_RATE_BURST),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    natsUrl: z.string().url().optional(),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  // `when: () => true`: cross-field checks run even when fields failed, so every problem is
  // reported at once; they therefore read the (possibly invalid) values defensively.
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), {
    when: () => true,
  });

/** The parsed object as cross-field checks may see it when some fields failed. */
interface LooseCaConfig {
  readonly trustDomain?: unknown;
  readonly datastore?: { readonly type?: unknown } | undefined;
  readonly adminIds?: unknown;
  readonly psatClusters?: unknown;
  readonly caTtl?: unknown;
  readonly svidTtl?: unknown;
  readonly agentSvidTtl?: unknown;
}

function crossFieldChecks(c: LooseCaConfig, ctx: z.RefinementCtx): void {
  let td: string | undefined;
  if (typeof c.trustDomain === "string") {
    try {
      td = parseTrustDomain(c.trustDomain).name;
    } catch (err) {
      ctx.addIssue({ code: "custom", path: ["trustDomain"], message: (err as Error).message });
    }
  }
  const datastoreType = c.datastore?.type;
  if (datastoreType === "postgres") {
    ctx.addIssue({
      code: "custom",
      path: ["datastore", "type"],
      message: 'the "postgres" datastore is not supported yet; use "sqlite"',
    });
  } else if (typeof datastoreType === "string" && datastoreType !== "sqlite") {
    ctx.addIssue({
      code: "custom",
      path: ["datastore", "type"],
      message: `must be "sqlite" (got "${datastoreType}")`,
    });
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
  if (Array.isArray(c.psatClusters)) {
    const names = new Set<string>();
    c.psatClusters.forEach((cluster: unknown, i) => {
      const name = (cluster as { name?: unknown } | null)?.name;
      if (typeof name !== "string") return;
      if (names.has(name)) {
        ctx.addIssue({
          code: "custom",
          path: ["psatClusters", i, "name"],
          message: `duplicate cluster name "${name}"`,
        });
      }
      names.add(name);
    });
  }
  if (typeof c.caTtl === "number") {
    for (const key of ["svidTtl", "agentSvidTtl"] as const) {
      const ttl = c[key];
      if (typeof ttl === "number" && ttl > c.caTtl) {
        ctx.addIssue({ code: "custom", path: [key], message: "must not exceed caTtl" });
      }
    }
  }
}

/** One Kubernetes cluster whose nodes may attest with k8s_psat. */
export interface PsatClusterConfig {
  readonly name: string;
  /** Audience the projected token must carry. Default {@link DEFAULT_PSAT_AUDIENCE}. */
  readonly audience: string;
  /** `<namespace>:<service account>` pairs the agent may run as. */
  readonly allowedServiceAccounts: readonly string[];
  /** Kubeconfig of the cluster; absent = in-cluster config. */
  readonly kubeconfigFile?: string;
}

/** The validated CA configuration (every duration in seconds, every path absolute). */
export interface CaConfig {
  readonly trustDomain: string;
  /** gRPC TCP listener (TLS; mTLS for everything but attestation and health). */
  readonly listen: ListenAddress;
  /** Admin Unix socket: every caller on it is admin. Default `<dataDir>/admin/admin.sock`. */
  readonly adminSocketPath: string;
  readonly dataDir: string;
  readonly datastore: { readonly type: "sqlite"; readonly path: string };
  readonly keyManager: (typeof KEY_MANAGER_TYPES)[number];
  readonly upstreamAuthorityFile?: string;
  readonly caTtlSeconds: number;
  readonly svidTtlSeconds: number;
  readonly agentSvidTtlSeconds: number;
  readonly caKeyType: KeyType;
  /** SPIFFE IDs (strings) allowed to call the admin APIs over TCP. */
  readonly adminIds: readonly string[];
  readonly psatClusters: readonly PsatClusterConfig[];
  readonly limits: {
    readonly maxBatchSize: number;
    readonly maxMessageBytes: number;
    readonly signRatePerAgent: { readonly perSecond: number; readonly burst: number };
  };
  /** NATS server URL; without it no events are published. */
  readonly natsUrl?: string;
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Result of {@link loadCaConfig}. */
export interface LoadedCaConfig {
  readonly config: CaConfig;
  /** Advice that does not stop the CA (e.g. svidTtl > caTtl/6). */
  readonly warnings: readonly string[];
}

/** Parameters of {@link loadCaConfig}. */
export interface LoadCaConfigParams {
  /** Optional YAML file. */
  readonly file?: string;
  /** Environment holding `MESHID_CA_*` variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the CA configuration (env > file > defaults), fills the paths derived from `dataDir`,
 * and returns it frozen with warnings.
 * @throws ConfigError (`config.invalid`) listing every problem at once.
 */
export function loadCaConfig(params: LoadCaConfigParams): LoadedCaConfig {
  const raw = loadConfig({
    service: "ca",
    schema: caConfigSchema,
    env: params.env,
    ...(params.file === undefined ? {} : { file: params.file }),
  });
  return caConfigFromParsed(raw);
}

/** Output type of {@link caConfigSchema}. */
export type ParsedCaConfig = z.output<typeof caConfigSchema>;

/** Builds the {@link CaConfig} (derived paths, renamed durations) and warnings from parsed input. */
export function caConfigFromParsed(raw: ParsedCaConfig): LoadedCaConfig {
  const warnings: string[] = [];
  if (raw.svidTtl > raw.caTtl / 6) {
    warnings.push(
      `svidTtl (${raw.svidTtl}s) is more than a sixth of caTtl (${raw.caTtl}s): SVIDs will be ` +
        "cut short near the end of each authority's life",
    );
  }
  if (raw.natsUrl === undefined) {
    warnings.push("natsUrl is not set: no events are published (agents rely on periodic sync)");
  }
  const config: CaConfig = {
    trustDomain: parseTrustDomain(raw.trustDomain).name,
    listen: raw.listen,
    adminSocketPath: raw.adminSocketPath ?? join(raw.dataDir, DEFAULT_ADMIN_SOCKET_RELATIVE),
    dataDir: raw.dataDir,
    datastore: {
      type: "sqlite",
      path: raw.datastore.path ?? join(raw.dataDir, DEFAULT_SQLITE_FILE),
    },
    keyManager: raw.keyManager,
    ...(raw.upstreamAuthorityFile === undefined
      ? {}
      : { upstreamAuthorityFile: raw.upstreamAuthorityFile }),
    caTtlSeconds: raw.caTtl,
    svidTtlSeconds: raw.svidTtl,
    agentSvidTtlSeconds: raw.agentSvidTtl,
    caKeyType: raw.caKeyType,
    adminIds: raw.adminIds,
    psatClusters: raw.psatClusters.map((c) => ({
      name: c.name,
      audience: c.audience,
      allowedServiceAccounts: c.allowedServiceAccounts,
      ...(c.kubeconfigFile === undefined ? {} : { kubeconfigFile: c.kubeconfigFile }),
    })),
    limits: raw.limits,
    ...(raw.natsUrl === undefined ? {} : { natsUrl: raw.natsUrl }),
    ops: raw.ops,
    logLevel: raw.logLevel,
  };
  return { config: Object.freeze(config), warnings: Object.freeze(warnings) };
}

/**
 * Builds a {@link CaConfig} for tests and embedding from partial input (same schema and
 * defaults as the file/env form, e.g. `{ dataDir, listen: "127.0.0.1:0" }`).
 * @throws ZodError when the input is invalid.
 */
export function buildCaConfig(input: z.input<typeof caConfigSchema>): LoadedCaConfig {
  return caConfigFromParsed(caConfigSchema.parse(input));
}
