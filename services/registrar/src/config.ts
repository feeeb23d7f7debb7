// The registrar's configuration: one zod schema, loaded from env + optional YAML by @meshid/config.
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

/** Default trust domain. */
export const DEFAULT_TRUST_DOMAIN = "example.org";
/** Default labels (`key=value`) that mark a pod as meshed: meshid's and NGINX Service Mesh's. */
export const DEFAULT_INJECT_LABELS: readonly string[] = Object.freeze([
  "meshid.io/inject=true",
  "spiffe.io/spiffeid=true",
]);
/** Default namespaces whose pods are never registered (meshid's own is always added). */
export const DEFAULT_IGNORED_NAMESPACES: readonly string[] = Object.freeze([
  "kube-system",
  "kube-public",
]);
/** Default namespace meshid runs in. */
export const DEFAULT_OWN_NAMESPACE = "meshid";
/** Default interval of the full reconcile. */
export const DEFAULT_RESYNC_INTERVAL = "60s";
/** Default name of the leader-election Lease. */
export const DEFAULT_LEASE_NAME = "meshid-registrar";
/** Default lease duration. */
export const DEFAULT_LEASE_DURATION = "15s";
/** Default renew deadline. */
export const DEFAULT_RENEW_DEADLINE = "10s";
/** Default retry period. */
export const DEFAULT_RETRY_PERIOD = "2s";
/** Default and upper bound of entries per batch call (the CA's default maxBatchSize). */
export const DEFAULT_BATCH_SIZE = 500;
/** Largest batch size accepted (the CA's own upper bound of maxBatchSize). */
export const MAX_BATCH_SIZE = 10_000;
/** Path of the CA's SPIFFE ID; the default `ca.serverId` is `spiffe://<trustDomain>` + this. */
export const DEFAULT_CA_SERVER_ID_PATH = "/meshid/ca";
/** Default listen address of the ops server (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9092";

const LABEL_PAIR = /^[A-Za-z0-9][A-Za-z0-9._/-]*=[A-Za-z0-9._-]*$/;
const DNS_1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Cluster names become one SPIFFE ID path segment of agent IDs.
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
const caAddressSchema = z.string().refine(
  (text) => {
    const m = HOST_PORT.exec(text);
    const port = m === null ? NaN : Number(m[2]);
    return port >= 1 && port <= 65535;
  },
  { message: 'must be "host:port" with a port between 1 and 65535' },
);

const labelPairSchema = z
  .string()
  .regex(LABEL_PAIR, 'must be "key=value" (a label or annotation key and its value)');
const namespaceSchema = z.string().regex(DNS_1123_LABEL, "must be a namespace name");

/** Schema of the registrar configuration file / environment. */
export const registrarConfigSchema = z
  .object({
    trustDomain: z.string().default(DEFAULT_TRUST_DOMAIN),
    clusterName: z
      .string()
      .regex(PATH_SEGMENT, "must be one SPIFFE ID path segment ([A-Za-z0-9._-]+)")
      .refine((s) => s !== "." && s !== "..", { message: 'must not be "." or ".."' }),
    kubeconfigFile: pathSchema.optional(),
    // One flat object rather than a union so every field maps to an environment variable
    // (`MESHID_REGISTRAR_CA__ADDRESS`, …); which fields go together is a cross-field check.
    ca: z
      .object({
        adminSocketPath: pathSchema.optional(),
        address: caAddressSchema.optional(),
        serverId: z.string().optional(),
        workloadSocketPath: pathSchema.optional(),
      })
      .strict(),
    natsUrl: z.string().url().optional(),
    injectLabels: z.array(labelPairSchema).default([...DEFAULT_INJECT_LABELS]),
    injectAnnotations: z.array(labelPairSchema).default([]),
    ignoredNamespaces: z.array(namespaceSchema).default([...DEFAULT_IGNORED_NAMESPACES]),
    ownNamespace: namespaceSchema.default(DEFAULT_OWN_NAMESPACE),
    resyncInterval: durationSchema({ min: 1 }).default(DEFAULT_RESYNC_INTERVAL),
    leaderElection: z
      .object({
        enabled: z.boolean().default(true),
        leaseName: z
          .string()
          .regex(DNS_1123_LABEL, "must be a DNS label")
          .default(DEFAULT_LEASE_NAME),
        leaseNamespace: namespaceSchema.optional(),
        leaseDuration: durationSchema({ min: 1 }).default(DEFAULT_LEASE_DURATION),
        renewDeadline: durationSchema({ min: 0.1 }).default(DEFAULT_RENEW_DEADLINE),
        retryPeriod: durationSchema({ min: 0.05 }).default(DEFAULT_RETRY_PERIOD),
        identity: z.string().min(1, "must not be empty").max(253).optional(),
      })
      .strict()
      .prefault({}),
    batchSize: z.number().int().min(1).max(MAX_BATCH_SIZE).default(DEFAULT_BATCH_SIZE),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  // `when: () => true`: cross-field checks run even when fields failed, so every problem is
  // reported at once; they therefore read the (possibly invalid) values defensively.
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), { when: () => true });

interface LooseRegistrarConfig {
  readonly trustDomain?: unknown;
  readonly ca?: Record<string, unknown>;
  readonly leaderElection?: {
    readonly leaseDuration?: unknown;
    readonly renewDeadline?: unknown;
    readonly retryPeriod?: unknown;
  };
}

function checkCa(
  ca: Record<string, unknown> | undefined,
  td: string | undefined,
  ctx: z.RefinementCtx,
): void {
  if (ca === undefined) return;
  const issue = (field: string, message: string): void =>
    ctx.addIssue({ code: "custom", path: ["ca", ...(field === "" ? [] : [field])], message });
  const socket = ca.adminSocketPath !== undefined;
  const mtls = ca.address !== undefined;
  if (socket === mtls) {
    issue(
      "",
      "set either adminSocketPath (local admin socket) or address (mTLS with the registrar's SVID)",
    );
    return;
  }
  if (socket) {
    for (const field of ["serverId", "workloadSocketPath"]) {
      if (ca[field] !== undefined) issue(field, "applies only with ca.address");
    }
    return;
  }
  if (ca.workloadSocketPath === undefined) {
    issue(
      "workloadSocketPath",
      "is required with ca.address (the registrar's SVID comes from there)",
    );
  }
  if (typeof ca.serverId === "string") {
    const parsed = tryParseSpiffeId(ca.serverId);
    if (!parsed.ok) issue("serverId", parsed.error.message);
    else if (td !== undefined && parsed.id.trustDomain.name !== td) {
      issue("serverId", `must be in trust domain "${td}"`);
    }
  }
}

function crossFieldChecks(c: LooseRegistrarConfig, ctx: z.RefinementCtx): void {
  let td: string | undefined;
  if (typeof c.trustDomain === "string") {
    try {
      td = parseTrustDomain(c.trustDomain).name;
    } catch (err) {
      ctx.addIssue({ code: "custom", path: ["trustDomain"], message: (err as Error).message });
    }
  }
  checkCa(c.ca, td, ctx);
  const le = c.leaderElection;
  const { leaseDuration, renewDeadline, retryPeriod } = le ?? {};
  if (
    typeof leaseDuration === "number" &&
    typeof renewDeadline === "number" &&
    typeof retryPeriod === "number" &&
    !(retryPeriod < renewDeadline && renewDeadline < leaseDuration)
  ) {
    ctx.addIssue({
      code: "custom",
      path: ["leaderElection"],
      message: "needs retryPeriod < renewDeadline < leaseDuration",
    });
  }
}

/** One `key=value` label or annotation. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

/** How the registrar reaches the CA's entry API. */
export type CaConnectionConfig =
  | {
      /** The CA's local admin Unix socket (a co-located registrar; every caller is admin). */
      readonly mode: "admin_socket";
      readonly adminSocketPath: string;
    }
  | {
      /** mTLS to the CA with the registrar's own SVID (its ID must be in the CA's adminIds). */
      readonly mode: "mtls";
      /** `host:port` of the CA. */
      readonly address: string;
      /** SPIFFE ID the CA must present. Default `spiffe://<trustDomain>/meshid/ca`. */
      readonly serverId: string;
      /** The node agent's SPIFFE Workload API socket, source of the registrar's SVID. */
      readonly workloadSocketPath: string;
    };

/** Leader election settings (durations in seconds). */
export interface LeaderElectionConfig {
  readonly enabled: boolean;
  readonly leaseName: string;
  /** Default: {@link RegistrarConfig.ownNamespace}. */
  readonly leaseNamespace: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
  /** This replica's holder identity; default: the host name (the pod name in a cluster). */
  readonly identity?: string;
}

/** The validated registrar configuration (durations in seconds). */
export interface RegistrarConfig {
  readonly trustDomain: string;
  /** Cluster name as configured for k8s_psat on the CA (part of agent IDs). */
  readonly clusterName: string;
  /** A kubeconfig file; absent: the in-cluster service account. */
  readonly kubeconfigFile?: string;
  readonly ca: CaConnectionConfig;
  /** NATS URL for pod.registered / pod.deregistered; absent: no events. */
  readonly natsUrl?: string;
  readonly injectLabels: readonly KeyValue[];
  readonly injectAnnotations: readonly KeyValue[];
  /** The configured ignored namespaces plus {@link RegistrarConfig.ownNamespace}. */
  readonly ignoredNamespaces: readonly string[];
  readonly ownNamespace: string;
  readonly resyncIntervalSeconds: number;
  readonly leaderElection: LeaderElectionConfig;
  readonly batchSize: number;
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Output type of {@link registrarConfigSchema}. */
export type ParsedRegistrarConfig = z.output<typeof registrarConfigSchema>;

/** Parameters of {@link loadRegistrarConfig}. */
export interface LoadRegistrarConfigParams {
  /** Optional YAML file. */
  readonly file?: string;
  /** Environment holding `MESHID_REGISTRAR_*` variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the registrar configuration (env > file > defaults) and returns it frozen.
 * @throws ConfigError (`config.invalid`) listing every problem at once (main exits 2).
 */
export function loadRegistrarConfig(params: LoadRegistrarConfigParams): RegistrarConfig {
  const raw = loadConfig({
    service: "registrar",
    schema: registrarConfigSchema,
    env: params.env,
    ...(params.file === undefined ? {} : { file: params.file }),
  });
  return registrarConfigFromParsed(raw);
}

function keyValue(pair: string): KeyValue {
  const at = pair.indexOf("=");
  return { key: pair.slice(0, at), value: pair.slice(at + 1) };
}

/** Builds the {@link RegistrarConfig} (derived defaults, renamed durations) from parsed input. */
export function registrarConfigFromParsed(raw: ParsedRegistrarConfig): RegistrarConfig {
  const le = raw.leaderElection;
  const trustDomain = parseTrustDomain(raw.trustDomain).name;
  // The cross-field checks guarantee the fields of the chosen mode are present.
  const ca: CaConnectionConfig =
    raw.ca.address === undefined
      ? { mode: "admin_socket", adminSocketPath: raw.ca.adminSocketPath ?? "" }
      : {
          mode: "mtls",
          address: raw.ca.address,
          serverId: raw.ca.serverId ?? `spiffe://${trustDomain}${DEFAULT_CA_SERVER_ID_PATH}`,
          workloadSocketPath: raw.ca.workloadSocketPath ?? "",
        };
  const config: RegistrarConfig = {
    trustDomain,
    clusterName: raw.clusterName,
    ...(raw.kubeconfigFile === undefined ? {} : { kubeconfigFile: raw.kubeconfigFile }),
    ca,
    ...(raw.natsUrl === undefined ? {} : { natsUrl: raw.natsUrl }),
    injectLabels: raw.injectLabels.map(keyValue),
    injectAnnotations: raw.injectAnnotations.map(keyValue),
    ignoredNamespaces: [...new Set([...raw.ignoredNamespaces, raw.ownNamespace])],
    ownNamespace: raw.ownNamespace,
    resyncIntervalSeconds: raw.resyncInterval,
    leaderElection: {
      enabled: le.enabled,
      leaseName: le.leaseName,
      leaseNamespace: le.leaseNamespace ?? raw.ownNamespace,
      leaseDurationSeconds: le.leaseDuration,
      renewDeadlineSeconds: le.renewDeadline,
      retryPeriodSeconds: le.retryPeriod,
      ...(le.identity === undefined ? {} : { identity: le.identity }),
    },
    batchSize: raw.batchSize,
    ops: raw.ops,
    logLevel: raw.logLevel,
  };
  return Object.freeze(config);
}

/**
 * Builds a {@link RegistrarConfig} for tests and embedding from partial input (same schema and
 * defaults as the file/env form).
 * @throws ZodError when the input is invalid.
 */
export function buildRegistrarConfig(
  input: z.input<typeof registrarConfigSchema>,
): RegistrarConfig {
  return registrarConfigFromParsed(registrarConfigSchema.parse(input));
}
