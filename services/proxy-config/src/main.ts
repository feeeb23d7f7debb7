#!/usr/bin/env node
// The proxy-config process (`meshid-proxy-config`): the only file that reads process.env. It
// parses the command line, loads the configuration, starts telemetry, the ops server (/healthz,
// /readyz, /metrics) and proxy-config, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  CONFIG_ERROR_EXIT_CODE,
  ConfigError,
  configFileEnvVar,
  formatListenAddress,
} from "@meshid/config";
import {
  LogKeys,
  createLogger,
  readPackageVersion,
  runServiceProcess,
  type Logger,
} from "@meshid/telemetry";
import { loadProxyConfigConfig, type ProxyConfigConfig } from "./config";
import { startProxyConfig, type RunningProxyConfig } from "./proxy-config";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = 1;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of proxy-config's telemetry. */
export const PROXY_CONFIG_SERVICE_NAME = "meshid-proxy-config";

const USAGE = `usage: meshid-proxy-config [--config <file>]

Starts meshid proxy-config (MeshConfig and per-pod NGINX sidecar configuration). Settings come
from the YAML file (--config, or the ${configFileEnvVar("proxy-config")} environment variable)
and MESHID_PROXY_CONFIG_* environment variables.`;

/** What the command line asked for. */
export type ProxyConfigCommand =
  | { readonly kind: "run"; readonly configFile?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/**
 * Parses the command line (`--config <file>`, `-c <file>`, `--help`); without `--config` the
 * file named by `MESHID_PROXY_CONFIG_CONFIG_FILE` in `env` is used, if any. Never throws.
 */
export function parseProxyConfigCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ProxyConfigCommand {
  let values: { config?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (err) {
    return { kind: "usage_error", message: (err as Error).message };
  }
  if (values.help === true) return { kind: "help" };
  if (values.config === "") return { kind: "usage_error", message: "--config needs a file" };
  const fromEnv = env[configFileEnvVar("proxy-config")];
  const configFile = values.config ?? (fromEnv === "" ? undefined : fromEnv);
  return configFile === undefined ? { kind: "run" } : { kind: "run", configFile };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs proxy-config until a signal stops it; resolves with the process exit code. */
async function run(): Promise<number> {
  const command = parseProxyConfigCommand(process.argv.slice(2), process.env);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    process.stderr.write(`meshid-proxy-config: ${command.message}\n${USAGE}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }

  let config: ProxyConfigConfig;
  try {
    config = loadProxyConfigConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env: process.env,
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return CONFIG_ERROR_EXIT_CODE;
    }
    throw err;
  }

  const logger = createLogger({ service: "proxy-config", level: config.logLevel });
  return runServiceProcess<RunningProxyConfig>({
    name: "proxy-config",
    serviceName: PROXY_CONFIG_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: STARTUP_FAILURE_EXIT_CODE },
    opsStop: "with-service",
    start: (signal) => startProxyConfig({ config, logger, signal }),
    onStarted: (service, opsUrl) => {
      logger.info(
        {
          [LogKeys.address]: service.tcpAddress,
          port: service.tcpPort,
          adminSocketPath: service.adminSocketPath,
          opsUrl,
          [LogKeys.trustDomain]: config.trustDomain,
          listen: formatListenAddress(config.listen),
        },
        "proxy-config listening",
      );
    },
  });
}

function fail(logger: Pick<Logger, "fatal"> | undefined, what: string, err: unknown): never {
  if (logger !== undefined) logger.fatal({ [LogKeys.err]: err }, `${what}: ${errorMessage(err)}`);
  else process.stderr.write(`meshid-proxy-config: ${what}: ${errorMessage(err)}\n`);
  process.exit(STARTUP_FAILURE_EXIT_CODE);
}

if (require.main === module) {
  process.on("unhandledRejection", (reason) => fail(undefined, "unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail(undefined, "uncaught exception", err));
  run().then(
    (code) => {
      process.exitCode = code;
      // Anything left (a stray timer or socket) must not keep a stopped service alive.
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail(undefined, "crashed", err),
  );
}
