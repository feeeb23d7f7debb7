// The control plane's own configuration (which services it hosts, where their configuration
// files are, its ops server and log level), and the services' configurations, each loaded by
// the service's own loader exactly as when it runs on its own.
import {
  loadBundleNotifierConfig,
  type BundleNotifierConfig,
} from "@meshid/bundle-notifier/dist/config";
import { loadCaConfig, type LoadedCaConfig } from "@meshid/ca/dist/config";
import {
  ConfigError,
  loadConfig,
  logLevelSchema,
  opsSchema,
  pathSchema,
  type ConfigProblem,
  type ListenAddress,
  type LogLevel,
} from "@meshid/config";
import { loadProxyConfigConfig, type ProxyConfigConfig } from "@meshid/proxy-config/dist/config";
import { loadRegistrarConfig, type RegistrarConfig } from "@meshid/registrar/dist/config";
import { z } from "zod";

/** Default listen address of the ops server (the CA's: the control plane takes its place). */
export const DEFAULT_OPS_LISTEN = "0.0.0.0:9090";

/** The services the control plane can host, in start order (the CA first: the others call it). */
export const HOSTED_SERVICES = ["ca", "registrar", "bundleNotifier", "proxyConfig"] as const;
export type HostedService = (typeof HOSTED_SERVICES)[number];

/** The name each hosted service has on its own (its env prefix, logs and config errors). */
export const SERVICE_NAMES: Readonly<Record<HostedService, string>> = {
  ca: "ca",
  registrar: "registrar",
  bundleNotifier: "bundle-notifier",
  proxyConfig: "proxy-config",
};

const hostedSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** The service's own YAML file; its `MESHID_<SERVICE>_*` variables apply as well. */
    configFile: pathSchema.optional(),
  })
  .strict();

/** Schema of the control plane's own file / `MESHID_CONTROL_PLANE_*` environment. */
export const controlPlaneConfigSchema = z
  .object({
    ca: hostedSchema.optional(),
    registrar: hostedSchema.optional(),
    bundleNotifier: hostedSchema.optional(),
    proxyConfig: hostedSchema.optional(),
    ops: opsSchema(DEFAULT_OPS_LISTEN),
    logLevel: logLevelSchema.default("info"),
  })
  .strict()
  .superRefine((parsed, ctx) => {
    if (!HOSTED_SERVICES.some((s) => parsed[s]?.enabled === true)) {
      ctx.addIssue({
        code: "custom",
        message: `host at least one service (${HOSTED_SERVICES.join(", ")})`,
      });
    }
  });

/** The configurations of the hosted services (absent = not hosted). */
export interface HostedConfigs {
  readonly ca?: LoadedCaConfig;
  readonly registrar?: RegistrarConfig;
  readonly bundleNotifier?: BundleNotifierConfig;
  readonly proxyConfig?: ProxyConfigConfig;
}

/** The validated control-plane configuration. */
export interface ControlPlaneConfig {
  readonly services: HostedConfigs;
  /** The control plane's one ops server (the services' own `ops.listen` are not used). */
  readonly ops: { readonly listen: ListenAddress };
  readonly logLevel: LogLevel;
}

/** Parameters of {@link loadControlPlaneConfig}. */
export interface LoadControlPlaneConfigParams {
  /** Optional YAML file of the control plane itself. */
  readonly file?: string;
  /** Environment: `MESHID_CONTROL_PLANE_*` and each hosted service's `MESHID_<SERVICE>_*`. */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/**
 * Loads the control plane's configuration, then each hosted service's with the service's own
 * loader (its file, its environment variables, its schema and defaults).
 * @throws ConfigError (`config.invalid`) listing every problem of every configuration at once.
 */
export function loadControlPlaneConfig(params: LoadControlPlaneConfigParams): ControlPlaneConfig {
  const own = loadConfig({
    service: "control-plane",
    schema: controlPlaneConfigSchema,
    env: params.env,
    ...(params.file === undefined ? {} : { file: params.file }),
  });
  const problems: ConfigProblem[] = [];
  const load = <T>(
    service: HostedService,
    loader: (file: string | undefined) => T,
  ): T | undefined => {
    const hosted = own[service];
    if (hosted?.enabled !== true) return undefined;
    try {
      return loader(hosted.configFile);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const p of err.problems) {
        problems.push({ ...p, message: `${p.message} (${SERVICE_NAMES[service]})` });
      }
      return undefined;
    }
  };
  const withFile = (file: string | undefined) => ({
    env: params.env,
    ...(file === undefined ? {} : { file }),
  });
  const ca = load("ca", (file) => loadCaConfig(withFile(file)));
  const registrar = load("registrar", (file) => loadRegistrarConfig(withFile(file)));
  const bundleNotifier = load("bundleNotifier", (file) => loadBundleNotifierConfig(withFile(file)));
  const proxyConfig = load("proxyConfig", (file) => loadProxyConfigConfig(withFile(file)));
  if (problems.length > 0) throw new ConfigError("control-plane", problems);
  return Object.freeze({
    services: Object.freeze({
      ...(ca === undefined ? {} : { ca }),
      ...(registrar === undefined ? {} : { registrar }),
      ...(bundleNotifier === undefined ? {} : { bundleNotifier }),
      ...(proxyConfig === undefined ? {} : { proxyConfig }),
    }),
    ops: own.ops,
    logLevel: own.logLevel,
  });
}
