// The registrar's configuration: one zod schema, loaded from env + optional YAML by @meshid/config.
import {
  durationSchema,
  listenAddressSchema,
  loadConfig,
  logLevelSchema,
  pathSchema,
  type ListenAddress,
  type LogLevel,
} from "@meshid/config";
import { parseTrustDomain } from "@meshid/spiffe";
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
/** Default listen address of the ops server (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9092";

const LABEL_PAIR = /^[A-Za-z0-9][A-Za-z0-9._/-]*=[A-Za-z0-9._-]*$/;
const DNS_1123_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// Cluster names become one SPIFFE ID path segment of agent IDs.
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

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
    ca: z
      .object({
        /** The CA's local admin Unix socket (co-located registrar; every caller is admin). */
        adminSocketPath: pathSchema,
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
    ops: z
      .object({ listen: listenAddressSchema().default(DEFAULT_OPS_LISTEN) })
      .strict()
      .prefault({}),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  // `when: () => true`: cross-field checks run even when fields failed, so every problem is
  // reported at once; they therefore read the (possibly invalid) values defensively.
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), { when: () => true });

interface LooseRegistrarConfig {
  readonly trustDomain?: unknown;
  readonly leaderElection?: {
    readonly leaseDuration?: unknown;
    readonly renewDeadline?: unknown;
    readonly retryPeriod?: unknown;
  };
}

function crossFieldChecks(c: LooseRegistrarConfig, ctx: z.RefinementCtx): void {
  if (typeof c.trustDomain === "string") {
    try {
      parseTrustDomain(c.trustDomain);
    } catch (err) {
      ctx.addIssue({ code: "custom", path: ["trustDomain"], message: (err as Error).message });
    }
  }
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
  readonly ca: { readonly adminSocketPath: string };
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
  const config: RegistrarConfig = {
    trustDomain: parseTrustDomain(raw.trustDomain).name,
    clusterName: raw.clusterName,
    ...(raw.kubeconfigFile === undefined ? {} : { kubeconfigFile: raw.kubeconfigFile }),
    ca: { adminSocketPath: raw.ca.adminSocketPath },
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
