#!/usr/bin/env node
// The meshid CA process (`meshid-ca`): the only file that reads process.env. It parses the
// command line, loads the configuration, starts telemetry, the ops server (/healthz, /readyz,
// /metrics) and the CA server, and stops them gracefully on SIGTERM/SIGINT.
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
import { startCaServer, type RunningCa } from "./ca-server";
import { loadCaConfig, type LoadedCaConfig } from "./config";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = 1;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the CA's telemetry. */
export const CA_SERVICE_NAME = "meshid-ca";

const USAGE = `usage: meshid-ca [--config <file>]

Starts the meshid CA. Settings come from the YAML file (--config, or the
${configFileEnvVar("ca")} environment variable) and MESHID_CA_* environment variables.`;

/** What the command line asked for. */
export type CaCommand =
  | { readonly kind: "run"; readonly configFile?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/**
 * Parses the CA's command line (`--config <file>`, `-c <file>`, `--help`); without `--config`
 * the file named by `MESHID_CA_CONFIG_FILE` in `env` is used, if any. Never throws.
 */
export function parseCaCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CaCommand {
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
  const fromEnv = env[configFileEnvVar("ca")];
  const configFile = values.config ?? (fromEnv === "" ? undefined : fromEnv);
  return configFile === undefined ? { kind: "run" } : { kind: "run", configFile };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the CA until a signal stops it; resolves with the process exit code. */
async function run(): Promise<number> {
  const command = parseCaCommand(process.argv.slice(2), process.env);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    process.stderr.write(`meshid-ca: ${command.message}\n${USAGE}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }

  let loaded: LoadedCaConfig;
  try {
    loaded = loadCaConfig({
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

  const { config, warnings } = loaded;
  const logger = createLogger({ service: "ca", level: config.logLevel });
  for (const warning of warnings) logger.warn(warning);
  return runServiceProcess<RunningCa>({
    name: "ca",
    serviceName: CA_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: STARTUP_FAILURE_EXIT_CODE },
    opsStop: "with-service",
    start: (signal) => startCaServer({ config, logger, signal }),
    onStarted: (ca, opsUrl) => {
      logger.info(
        {
          [LogKeys.address]: ca.tcpAddress,
          port: ca.tcpPort,
          adminSocketPath: ca.adminSocketPath,
          opsUrl,
          [LogKeys.trustDomain]: config.trustDomain,
          listen: formatListenAddress(config.listen),
        },
        "ca listening",
      );
    },
  });
}

function fail(logger: Pick<Logger, "fatal"> | undefined, what: string, err: unknown): never {
  if (logger !== undefined) logger.fatal({ [LogKeys.err]: err }, `${what}: ${errorMessage(err)}`);
  else process.stderr.write(`meshid-ca: ${what}: ${errorMessage(err)}\n`);
  process.exit(STARTUP_FAILURE_EXIT_CODE);
}

if (require.main === module) {
  process.on("unhandledRejection", (reason) => fail(undefined, "unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail(undefined, "uncaught exception", err));
  run().then(
    (code) => {
      process.exitCode = code;
      // Anything left (a stray timer or socket) must not keep a stopped CA alive.
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail(undefined, "crashed", err),
  );
}
