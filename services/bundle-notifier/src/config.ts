// The bundle-notifier's configuration: one zod schema, loaded from env + optional YAML by
// @meshid/config (MESHID_BUNDLE_NOTIFIER_*).
import {
  durationSchema,
  loadConfig,
  logLevelSchema,
  opsSchema,
  pathSchema,
  type ListenAddress,
  type LogLevel,
} from "@meshid/config";
import { parseTrustDomain, tryParseSpiffeId } from "@meshid/spiffe";
import { z } from "zod";

/** Service name used for `MESHID_BUNDLE_NOTIFIER_*` variables and log lines. */
export const BUNDLE_NOTIFIER_CONFIG_SERVICE = "bundle-notifier";
/** Default trust domain. */
export const DEFAULT_TRUST_DOMAIN = "example.org";
/** Path of the CA's SPIFFE ID; the default `ca.serverId` is `spiffe://<trustDomain>` + this. */
export const DEFAULT_CA_SERVER_ID_PATH = "/meshid/ca";
/** Default namespace of the bundle ConfigMap. */
export const DEFAULT_CONFIGMAP_NAMESPACE = "meshid";
/** Default name of the bundle ConfigMap. */
export const DEFAULT_CONFIGMAP_NAME = "meshid-bundle";
/** Default interval at which every target is re-checked (and rewritten if it drifted). */
export const DEFAULT_RESYNC_INTERVAL = "60s";
/** Default first delay before re-opening a broken WatchBundle stream. */
export const DEFAULT_CA_RETRY_INITIAL_DELAY = "500ms";
/** Default cap of the WatchBundle re-open delay (and of a failing target's retry delay). */
export const DEFAULT_CA_RETRY_MAX_DELAY = "30s";
/** Default listen address of the ops server (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9093";
/** Formats of the file target: PEM certificates or the SPIFFE bundle (JWKS). */
export const FILE_TARGET_FORMATS = ["pem", "spiffe"] as const;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

const caAddressSchema = z.string().refine(
  (s) => {
    const m = HOST_PORT.exec(s);
    const port = m === null ? NaN : Number(m[2]);
    return port >= 1 && port <= 65535;
  },
  { message: 'must be "host:port" with a port between 1 and 65535' },
);

/** DNS-1123 label (namespace) / subdomain (ConfigMap name) rules of Kubernetes. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// Flat objects so every field maps to an environment variable (`MESHID_BUNDLE_NOTIFIER_CA__ADDRESS`);
// which fields a connection mode needs is a cross-field check.
const caSchema = z
  .object({
    adminSocketPath: pathSchema.optional(),
    address: caAddressSchema.optional(),
    serverId: z.string().optional(),
    workloadSocketPath: pathSchema.optional(),
    retryInitialDelay: durationSchema({ min: 0.001, max: 600 }).default(
      DEFAULT_CA_RETRY_INITIAL_DELAY,
    ),
    retryMaxDelay: durationSchema({ min: 0.001, max: 3600 }).default(DEFAULT_CA_RETRY_MAX_DELAY),
  })
  .strict();

const targetsSchema = z
  .object({
    configMap: z
      .object({
        enabled: z.boolean().default(false),
        namespace: z
          .string()
          .regex(DNS_LABEL, "must be a DNS-1123 label")
          .default(DEFAULT_CONFIGMAP_NAMESPACE),
        name: z
          .string()
          .regex(DNS_SUBDOMAIN, "must be a DNS-1123 subdomain")
          .default(DEFAULT_CONFIGMAP_NAME),
        kubeconfigFile: pathSchema.optional(),
      })
      .strict()
      .prefault({}),
    webhooks: z
      .object({
        enabled: z.boolean().default(false),
        kubeconfigFile: pathSchema.optional(),
      })
      .strict()
      .prefault({}),
    file: z
      .object({
        path: pathSchema.optional(),
        format: z.enum(FILE_TARGET_FORMATS).default("pem"),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

/** Schema of the bundle-notifier configuration file / environment. */
export const bundleNotifierConfigSchema = z
  .object({
    trustDomain: z.string().default(DEFAULT_TRUST_DOMAIN),
    ca: caSchema.prefault({}),
    natsUrl: z.string().url().optional(),
    targets: targetsSchema,
    resyncInterval: durationSchema({ min: 1 }).default(DEFAULT_RESYNC_INTERVAL),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  // `when: () => true`: cross-field checks run even when fields failed, so every problem is
  // reported at once; they therefore read the (possibly invalid) values defensively.
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), { when: () => true });

interface LooseConfig {
  readonly trustDomain?: unknown;
  readonly ca?: Record<string, unknown>;
  readonly targets?: {
    readonly configMap?: { readonly enabled?: unknown };
    readonly webhooks?: { readonly enabled?: unknown };
    readonly file?: { readonly path?: unknown };
  };
}

function checkCa(
  ca: Record<string, unknown> | undefined,
  td: string | undefined,
  ctx: z.RefinementCtx,
): void {
  const add = (field: string, message: string): void =>
    ctx.addIssue({ code: "custom", path: ["ca", field], message });
  const socket = ca?.adminSocketPath;
  const address = ca?.address;
  if (socket === undefined && address === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["ca"],
      message: "set either adminSocketPath (local admin socket) or address (mTLS)",
    });
    return;
  }
  if (socket !== undefined && address !== undefined) {
    add("address", "set either adminSocketPath or address, not both");
  }
  if (address !== undefined && ca?.workloadSocketPath === undefined) {
    add("workloadSocketPath", "is required with address (the SVID for mTLS comes from the agent)");
  }
  if (socket !== undefined) {
    for (const field of ["serverId", "workloadSocketPath"]) {
      if (ca?.[field] !== undefined) add(field, "applies only with address");
    }
  }
  const serverId = ca?.serverId;
  if (typeof serverId === "string") {
    const parsed = tryParseSpiffeId(serverId);
    if (!parsed.ok) add("serverId", parsed.error.message);
    else if (td !== undefined && parsed.id.trustDomain.name !== td) {
      add("serverId", `must be in trust domain "${td}"`);
    }
  }
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
  checkCa(c.ca, td, ctx);
  const t = c.targets;
  if (
    t !== undefined &&
    t.configMap?.enabled !== true &&
    t.webhooks?.enabled !== true &&
    t.file?.path === undefined
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["targets"],
      message: "enable at least one target: configMap.enabled, webhooks.enabled or file.path",
    });
  }
}

/** How the notifier reaches the CA's BundleService. */
export type CaConnectionConfig =
  | {
      /** The CA's local admin Unix socket (insecure credentials; every caller is admin). */
      readonly kind: "admin_socket";
      readonly adminSocketPath: string;
    }
  | {
      /** mTLS over TCP with the notifier's own SVID from the node agent's Workload API. */
      readonly kind: "mtls";
      /** `host:port`. */
      readonly address: string;
      /** SPIFFE ID the CA must present. */
      readonly serverId: string;
      /** The SPIFFE Workload API socket of the node agent. */
      readonly workloadSocketPath: string;
    };

/** The bundle ConfigMap target. */
export interface ConfigMapTargetConfig {
  readonly namespace: string;
  readonly name: string;
  /** Kubeconfig file; the in-cluster service account when absent. */
  readonly kubeconfigFile?: string;
}

/** The webhook / APIService caBundle target. */
export interface WebhooksTargetConfig {
  /** Kubeconfig file; the in-cluster service account when absent. */
  readonly kubeconfigFile?: string;
}

/** The file target (runs without Kubernetes). */
export interface FileTargetConfig {
  readonly path: string;
  readonly format: (typeof FILE_TARGET_FORMATS)[number];
}

/** The validated bundle-notifier configuration (durations in seconds, paths absolute). */
export interface BundleNotifierConfig {
  readonly trustDomain: string;
  readonly ca: CaConnectionConfig;
  /** First and largest delay between WatchBundle attempts, in milliseconds. */
  readonly caRetry: { readonly initialDelayMs: number; readonly maxDelayMs: number };
  /** NATS for `bundle.updated` wake-ups and `bundle.published`; none → stream only, no events. */
  readonly natsUrl?: string;
  /** Enabled targets (at least one). */
  readonly targets: {
    readonly configMap?: ConfigMapTargetConfig;
    readonly webhooks?: WebhooksTargetConfig;
    readonly file?: FileTargetConfig;
  };
  readonly resyncIntervalSeconds: number;
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Output type of {@link bundleNotifierConfigSchema}. */
export type ParsedBundleNotifierConfig = z.output<typeof bundleNotifierConfigSchema>;

/** Parameters of {@link loadBundleNotifierConfig}. */
export interface LoadBundleNotifierConfigParams {
  /** Optional YAML file. */
  readonly file?: string;
  /** Environment holding `MESHID_BUNDLE_NOTIFIER_*` variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the configuration (env > file > defaults) and returns it frozen.
 * @throws ConfigError (`config.invalid`) listing every problem at once (main exits 2).
 */
export function loadBundleNotifierConfig(
  params: LoadBundleNotifierConfigParams,
): BundleNotifierConfig {
  const raw = loadConfig({
    service: BUNDLE_NOTIFIER_CONFIG_SERVICE,
    schema: bundleNotifierConfigSchema,
    env: params.env,
    ...(params.file === undefined ? {} : { file: params.file }),
  });
  return bundleNotifierConfigFromParsed(raw);
}

function caFromParsed(raw: ParsedBundleNotifierConfig, trustDomain: string): CaConnectionConfig {
  // The cross-field checks guarantee one complete mode.
  if (raw.ca.adminSocketPath !== undefined) {
    return { kind: "admin_socket", adminSocketPath: raw.ca.adminSocketPath };
  }
  return {
    kind: "mtls",
    address: raw.ca.address ?? "",
    serverId: raw.ca.serverId ?? `spiffe://${trustDomain}${DEFAULT_CA_SERVER_ID_PATH}`,
    workloadSocketPath: raw.ca.workloadSocketPath ?? "",
  };
}

/** Builds the {@link BundleNotifierConfig} (derived defaults, renamed durations) from parsed input. */
export function bundleNotifierConfigFromParsed(
  raw: ParsedBundleNotifierConfig,
): BundleNotifierConfig {
  const trustDomain = parseTrustDomain(raw.trustDomain).name;
  const { configMap, webhooks, file } = raw.targets;
  const initialDelayMs = Math.round(raw.ca.retryInitialDelay * 1000);
  const config: BundleNotifierConfig = {
    trustDomain,
    ca: caFromParsed(raw, trustDomain),
    caRetry: {
      initialDelayMs,
      maxDelayMs: Math.max(initialDelayMs, Math.round(raw.ca.retryMaxDelay * 1000)),
    },
    ...(raw.natsUrl === undefined ? {} : { natsUrl: raw.natsUrl }),
    targets: {
      ...(configMap.enabled
        ? {
            configMap: {
              namespace: configMap.namespace,
              name: configMap.name,
              ...(configMap.kubeconfigFile === undefined
                ? {}
                : { kubeconfigFile: configMap.kubeconfigFile }),
            },
          }
        : {}),
      ...(webhooks.enabled
        ? {
            webhooks:
              webhooks.kubeconfigFile === undefined
                ? {}
                : { kubeconfigFile: webhooks.kubeconfigFile },
          }
        : {}),
      ...(file.path === undefined ? {} : { file: { path: file.path, format: file.format } }),
    },
    resyncIntervalSeconds: raw.resyncInterval,
    ops: raw.ops,
    logLevel: raw.logLevel,
  };
  return Object.freeze(config);
}

/**
 * Builds a {@link BundleNotifierConfig} for tests and embedding from partial input (same schema
 * and defaults as the file/env form).
 * @throws ZodError when the input is invalid.
 */
export function buildBundleNotifierConfig(
  input: z.input<typeof bundleNotifierConfigSchema>,
): BundleNotifierConfig {
  return bundleNotifierConfigFromParsed(bundleNotifierConfigSchema.parse(input));
}
