// The agent's configuration: one zod schema, loaded from env + optional YAML by @meshid/config.
import {
  durationSchema,
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
/** Path of the CA's SPIFFE ID; the default `caServerId` is `spiffe://<trustDomain>` + this. */
export const DEFAULT_CA_SERVER_ID_PATH = "/meshid/ca";
/** Default data directory (mode 0700): the agent SVID, its key and the last bundle seen. */
export const DEFAULT_DATA_DIR = "/var/lib/meshid/agent";
/** Default Workload API socket path. */
export const DEFAULT_WORKLOAD_SOCKET_PATH = "/run/meshid/agent/workload.sock";
/** Default time a Workload API call waits for a workload's first SVID, in milliseconds. */
export const DEFAULT_MINT_WAIT_MS = 5000;
/** Default interval of the full entry reconcile with the CA. */
export const DEFAULT_RECONCILE_INTERVAL = "30s";
/** Default key type of workload SVIDs (and of the agent's own SVID). */
export const DEFAULT_SVID_KEY_TYPE: KeyType = "ec-p256";
/** Default and upper bound of CSRs in one BatchNewX509SVID call (the CA's limit). */
export const DEFAULT_MAX_BATCH_SIZE = 500;
/** Default kubelet read-only API used by the k8s workload attestor. */
export const DEFAULT_KUBELET_URL = "https://127.0.0.1:10250";
/** Default proc filesystem root. */
export const DEFAULT_PROC_ROOT = "/proc";
/** Default listen address of the ops server (`/healthz`, `/readyz`, `/metrics`). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9091";
/** Default SVIDs minted in a burst after which the agent gives freed memory back (0 = never). */
export const DEFAULT_MEMORY_RELEASE_AFTER_MINTED = 100;
/** Default quiet time after the last minted SVID before the agent gives memory back. */
export const DEFAULT_MEMORY_RELEASE_QUIET = "2s";
/** Node attestation types the agent can use. */
export const NODE_ATTESTATION_TYPES = ["join_token", "k8s_psat"] as const;

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

const caAddressSchema = z.string().refine(
  (s) => {
    const m = HOST_PORT.exec(s);
    const port = m === null ? NaN : Number(m[2]);
    return port >= 1 && port <= 65535;
  },
  { message: 'must be "host:port" with a port between 1 and 65535' },
);

// One flat object rather than a union so every field maps to an environment variable
// (`MESHID_AGENT_ATTESTATION__TYPE`, …); which fields a type needs is a cross-field check.
const attestationSchema = z
  .object({
    type: z.enum(NODE_ATTESTATION_TYPES),
    joinToken: z.string().min(1, "must not be empty").optional(),
    cluster: z.string().min(1, "must not be empty").optional(),
    tokenPath: pathSchema.optional(),
  })
  .strict();

/** Schema of the agent configuration file / environment. */
export const agentConfigSchema = z
  .object({
    trustDomain: z.string().default(DEFAULT_TRUST_DOMAIN),
    caAddress: caAddressSchema,
    caServerId: z.string().optional(),
    bundleFile: pathSchema,
    dataDir: pathSchema.default(DEFAULT_DATA_DIR),
    attestation: attestationSchema,
    workloadApi: z
      .object({
        socketPath: pathSchema.default(DEFAULT_WORKLOAD_SOCKET_PATH),
        mintWaitMs: z.number().int().min(0).max(600_000).default(DEFAULT_MINT_WAIT_MS),
      })
      .strict()
      .prefault({}),
    natsUrl: z.string().url().optional(),
    reconcileInterval: durationSchema({ min: 1 }).default(DEFAULT_RECONCILE_INTERVAL),
    svidKeyType: z.enum(KEY_TYPES as [KeyType, ...KeyType[]]).default(DEFAULT_SVID_KEY_TYPE),
    maxBatchSize: z
      .number()
      .int()
      .min(1)
      .max(DEFAULT_MAX_BATCH_SIZE)
      .default(DEFAULT_MAX_BATCH_SIZE),
    attestors: z
      .object({
        unix: z
          .object({
            enabled: z.boolean().default(true),
            path: z.boolean().default(false),
            sha256: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
        k8s: z
          .object({
            enabled: z.boolean().default(false),
            nodeName: z.string().min(1, "must not be empty").optional(),
            kubeletUrl: z.string().url().default(DEFAULT_KUBELET_URL),
            kubeletTokenFile: pathSchema.optional(),
            kubeletCaFile: pathSchema.optional(),
            insecureSkipVerify: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    memoryRelease: z
      .object({
        afterMinted: z
          .number()
          .int()
          .min(0)
          .max(1_000_000)
          .default(DEFAULT_MEMORY_RELEASE_AFTER_MINTED),
        quiet: durationSchema({ min: 0.001, max: 3600 }).default(DEFAULT_MEMORY_RELEASE_QUIET),
      })
      .strict()
      .prefault({}),
    procRoot: pathSchema.default(DEFAULT_PROC_ROOT),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  // `when: () => true`: cross-field checks run even when fields failed, so every problem is
  // reported at once; they therefore read the (possibly invalid) values defensively.
  .superRefine((parsed, ctx) => crossFieldChecks(parsed, ctx), { when: () => true });

interface LooseAgentConfig {
  readonly trustDomain?: unknown;
  readonly caServerId?: unknown;
  readonly attestors?: { readonly k8s?: { enabled?: unknown; nodeName?: unknown } };
  readonly attestation?: Record<string, unknown>;
}

const ATTESTATION_FIELDS: Record<(typeof NODE_ATTESTATION_TYPES)[number], readonly string[]> = {
  join_token: ["joinToken"],
  k8s_psat: ["cluster", "tokenPath"],
};

function checkAttestation(a: Record<string, unknown> | undefined, ctx: z.RefinementCtx): void {
  const type = a?.type;
  if (a === undefined || (type !== "join_token" && type !== "k8s_psat")) return;
  const needed = ATTESTATION_FIELDS[type];
  for (const field of needed) {
    if (a[field] === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["attestation", field],
        message: `is required for attestation type "${type}"`,
      });
    }
  }
  for (const field of ["joinToken", "cluster", "tokenPath"]) {
    if (!needed.includes(field) && a[field] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["attestation", field],
        message: `does not apply to attestation type "${type}"`,
      });
    }
  }
}

function crossFieldChecks(c: LooseAgentConfig, ctx: z.RefinementCtx): void {
  let td: string | undefined;
  if (typeof c.trustDomain === "string") {
    try {
      td = parseTrustDomain(c.trustDomain).name;
    } catch (err) {
      ctx.addIssue({ code: "custom", path: ["trustDomain"], message: (err as Error).message });
    }
  }
  if (typeof c.caServerId === "string") {
    const parsed = tryParseSpiffeId(c.caServerId);
    if (!parsed.ok) {
      ctx.addIssue({ code: "custom", path: ["caServerId"], message: parsed.error.message });
    } else if (td !== undefined && parsed.id.trustDomain.name !== td) {
      ctx.addIssue({
        code: "custom",
        path: ["caServerId"],
        message: `must be in trust domain "${td}"`,
      });
    }
  }
  checkAttestation(c.attestation, ctx);
  const k8s = c.attestors?.k8s;
  if (k8s?.enabled === true && k8s.nodeName === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["attestors", "k8s", "nodeName"],
      message: "is required when the k8s attestor is enabled",
    });
  }
}

/** How the agent proves its node to the CA. */
export type NodeAttestationConfig =
  | { readonly type: "join_token"; readonly joinToken: string }
  | {
      readonly type: "k8s_psat";
      /** Cluster name as configured on the CA. */
      readonly cluster: string;
      /** Projected service-account token file; re-read at every attestation. */
      readonly tokenPath: string;
    };

/** The k8s workload attestor's settings. */
export interface K8sAttestorConfig {
  readonly enabled: boolean;
  readonly nodeName?: string;
  readonly kubeletUrl: string;
  readonly kubeletTokenFile?: string;
  readonly kubeletCaFile?: string;
  readonly insecureSkipVerify: boolean;
}

/** The validated agent configuration (durations in seconds, paths absolute). */
export interface AgentConfig {
  readonly trustDomain: string;
  /** The CA's gRPC address, `host:port`. */
  readonly caAddress: string;
  /** SPIFFE ID the CA must present. Default `spiffe://<trustDomain>/meshid/ca`. */
  readonly caServerId: string;
  /** The bootstrap trust bundle (PEM or SPIFFE JWKS, auto-detected). */
  readonly bundleFile: string;
  readonly dataDir: string;
  readonly attestation: NodeAttestationConfig;
  readonly workloadApi: { readonly socketPath: string; readonly mintWaitMs: number };
  /** NATS URL for wake-ups; without it the agent relies on the periodic reconcile. */
  readonly natsUrl?: string;
  readonly reconcileIntervalSeconds: number;
  readonly svidKeyType: KeyType;
  readonly maxBatchSize: number;
  readonly attestors: {
    readonly unix: { readonly enabled: boolean; readonly path: boolean; readonly sha256: boolean };
    readonly k8s: K8sAttestorConfig;
  };
  /**
   * Giving freed memory back to the OS after a minting burst: after at least `afterMinted`
   * SVIDs (0 = never) and `quietMs` without minting, a full GC then `malloc_trim`.
   */
  readonly memoryRelease: { readonly afterMinted: number; readonly quietMs: number };
  readonly procRoot: string;
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Output type of {@link agentConfigSchema}. */
export type ParsedAgentConfig = z.output<typeof agentConfigSchema>;

/** Parameters of {@link loadAgentConfig}. */
export interface LoadAgentConfigParams {
  /** Optional YAML file. */
  readonly file?: string;
  /** Environment holding `MESHID_AGENT_*` variables. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the agent configuration (env > file > defaults) and returns it frozen.
 * @throws ConfigError (`config.invalid`) listing every problem at once (main exits 2).
 */
export function loadAgentConfig(params: LoadAgentConfigParams): AgentConfig {
  const raw = loadConfig({
    service: "agent",
    schema: agentConfigSchema,
    env: params.env,
    ...(params.file === undefined ? {} : { file: params.file }),
  });
  return agentConfigFromParsed(raw);
}

function nodeAttestationFromParsed(a: ParsedAgentConfig["attestation"]): NodeAttestationConfig {
  // The cross-field checks guarantee the fields of the type are present.
  if (a.type === "join_token") return { type: "join_token", joinToken: a.joinToken ?? "" };
  return { type: "k8s_psat", cluster: a.cluster ?? "", tokenPath: a.tokenPath ?? "" };
}

/** Builds the {@link AgentConfig} (derived defaults, renamed durations) from parsed input. */
export function agentConfigFromParsed(raw: ParsedAgentConfig): AgentConfig {
  const trustDomain = parseTrustDomain(raw.trustDomain).name;
  const k8s = raw.attestors.k8s;
  const config: AgentConfig = {
    trustDomain,
    caAddress: raw.caAddress,
    caServerId: raw.caServerId ?? `spiffe://${trustDomain}${DEFAULT_CA_SERVER_ID_PATH}`,
    bundleFile: raw.bundleFile,
    dataDir: raw.dataDir,
    attestation: nodeAttestationFromParsed(raw.attestation),
    workloadApi: raw.workloadApi,
    ...(raw.natsUrl === undefined ? {} : { natsUrl: raw.natsUrl }),
    reconcileIntervalSeconds: raw.reconcileInterval,
    svidKeyType: raw.svidKeyType,
    maxBatchSize: raw.maxBatchSize,
    attestors: {
      unix: raw.attestors.unix,
      k8s: {
        enabled: k8s.enabled,
        kubeletUrl: k8s.kubeletUrl,
        insecureSkipVerify: k8s.insecureSkipVerify,
        ...(k8s.nodeName === undefined ? {} : { nodeName: k8s.nodeName }),
        ...(k8s.kubeletTokenFile === undefined ? {} : { kubeletTokenFile: k8s.kubeletTokenFile }),
        ...(k8s.kubeletCaFile === undefined ? {} : { kubeletCaFile: k8s.kubeletCaFile }),
      },
    },
    memoryRelease: {
      afterMinted: raw.memoryRelease.afterMinted,
      quietMs: Math.max(1, Math.round(raw.memoryRelease.quiet * 1000)),
    },
    procRoot: raw.procRoot,
    ops: raw.ops,
    logLevel: raw.logLevel,
  };
  return Object.freeze(config);
}

/**
 * Builds an {@link AgentConfig} for tests and embedding from partial input (same schema and
 * defaults as the file/env form).
 * @throws ZodError when the input is invalid.
 */
export function buildAgentConfig(input: z.input<typeof agentConfigSchema>): AgentConfig {
  return agentConfigFromParsed(agentConfigSchema.parse(input));
}
