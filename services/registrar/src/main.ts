#!/usr/bin/env node
// The meshid registrar process (`meshid-registrar`): the only file that reads process.env. It
// parses the command line, loads the configuration, starts telemetry, the ops server
// (/healthz, /readyz, /metrics) and the registrar, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CONFIG_ERROR_EXIT_CODE, ConfigError, configFileEnvVar } from "@meshid/config";
import { LogKeys, createLogger, readPackageVersion, runServiceProcess } from "@meshid/telemetry";
import { loadRegistrarConfig, type RegistrarConfig } from "./config";
import { startRegistrar, type RunningRegistrar } from "./registrar";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = 1;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the registrar's telemetry. */
export const REGISTRAR_SERVICE_NAME = "meshid-registrar";

const USAGE = `usage: meshid-registrar [--config <file>]

Starts the meshid registrar. Settings come from the YAML file (--config, or the
${configFileEnvVar("registrar")} environment variable) and MESHID_REGISTRAR_* environment variables.`;

/** What the command line asked for. */
export type RegistrarCommand =
  | { readonly kind: "run"; readonly configFile?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/**
 * Parses the registrar's command line (`--config <file>`, `-c <file>`, `--help`); without
 * `--config` the file named by `MESHID_REGISTRAR_CONFIG_FILE` in `env` is used, if any.
 * Never throws.
 */
export function parseRegistrarCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): RegistrarCommand {
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
  const fromEnv = env[configFileEnvVar("registrar")];
  const configFile = values.config ?? (fromEnv === "" ? undefined : fromEnv);
  return { kind: "run", ...(configFile === undefined ? {} : { configFile }) };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the registrar until a signal stops it; resolves with the process exit code. */
async function run(): Promise<number> {
  const command = parseRegistrarCommand(process.argv.slice(2), process.env);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    process.stderr.write(`meshid-registrar: ${command.message}\n${USAGE}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }

  let config: RegistrarConfig;
  try {
    config = loadRegistrarConfig({
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

  const logger = createLogger({ service: "registrar", level: config.logLevel });
  return runServiceProcess<RunningRegistrar, "stopped">({
    name: "registrar",
    serviceName: REGISTRAR_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: STARTUP_FAILURE_EXIT_CODE },
    opsStop: "after-service",
    start: (signal) => startRegistrar({ config, logger, signal }),
    onStarted: (registrar, opsUrl) => {
      logger.info(
        {
          identity: registrar.status().identity,
          opsUrl,
          [LogKeys.trustDomain]: config.trustDomain,
          cluster: config.clusterName,
        },
        "registrar watching",
      );
    },
    done: (registrar) => registrar.done(),
  });
}

function fail(what: string, err: unknown): never {
  process.stderr.write(`meshid-registrar: ${what}: ${errorMessage(err)}\n`);
  process.exit(STARTUP_FAILURE_EXIT_CODE);
}

if (require.main === module) {
  process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail("uncaught exception", err));
  run().then(
    (code) => {
      process.exitCode = code;
      // Anything left (a stray timer or socket) must not keep a stopped registrar alive.
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail("crashed", err),
  );
}
