#!/usr/bin/env node
// The meshid bundle-notifier process (`meshid-bundle-notifier`): the only file that reads
// process.env. It parses the command line, loads the configuration, starts telemetry, the ops
// server (/healthz, /readyz, /metrics) and the notifier, and stops them gracefully on
// SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CONFIG_ERROR_EXIT_CODE, ConfigError, configFileEnvVar } from "@meshid/config";
import {
  LogKeys,
  createLogger,
  readPackageVersion,
  runServiceProcess,
  type Logger,
} from "@meshid/telemetry";
import {
  BUNDLE_NOTIFIER_CONFIG_SERVICE,
  loadBundleNotifierConfig,
  type BundleNotifierConfig,
} from "./config";
import { startBundleNotifier, type RunningBundleNotifier } from "./notifier";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = 1;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the notifier's telemetry. */
export const BUNDLE_NOTIFIER_SERVICE_NAME = "meshid-bundle-notifier";

const CONFIG_FILE_ENV = configFileEnvVar(BUNDLE_NOTIFIER_CONFIG_SERVICE);

const USAGE = `usage: meshid-bundle-notifier [--config <file>]

Follows the meshid CA's trust bundle and writes it to the bundle ConfigMap, the caBundle of
labelled webhook configurations and APIServices, and/or a file. Settings come from the YAML
file (--config, or the ${CONFIG_FILE_ENV} environment variable) and
MESHID_BUNDLE_NOTIFIER_* environment variables.`;

/** What the command line asked for. */
export type BundleNotifierCommand =
  | { readonly kind: "run"; readonly configFile?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/**
 * Parses the command line (`--config <file>`, `-c <file>`, `--help`); without `--config` the
 * file named by `MESHID_BUNDLE_NOTIFIER_CONFIG_FILE` in `env` is used, if any. Never throws.
 */
export function parseBundleNotifierCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): BundleNotifierCommand {
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
  const fromEnv = env[CONFIG_FILE_ENV];
  const configFile = values.config ?? (fromEnv === "" ? undefined : fromEnv);
  return { kind: "run", ...(configFile === undefined ? {} : { configFile }) };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the notifier until a signal stops it; resolves with the process exit code. */
async function run(): Promise<number> {
  const command = parseBundleNotifierCommand(process.argv.slice(2), process.env);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    process.stderr.write(`meshid-bundle-notifier: ${command.message}\n${USAGE}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }

  let config: BundleNotifierConfig;
  try {
    config = loadBundleNotifierConfig({
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

  const logger = createLogger({ service: "bundle-notifier", level: config.logLevel });
  return runServiceProcess<RunningBundleNotifier, "stopped">({
    name: "bundle-notifier",
    serviceName: BUNDLE_NOTIFIER_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: STARTUP_FAILURE_EXIT_CODE },
    opsStop: "after-service",
    start: (signal) => startBundleNotifier({ config, logger, signal }),
    onStarted: (_notifier, opsUrl) => {
      logger.info(
        { opsUrl, [LogKeys.trustDomain]: config.trustDomain },
        "bundle-notifier following the CA bundle",
      );
    },
    done: (notifier) => notifier.done(),
  });
}

function fail(logger: Pick<Logger, "fatal"> | undefined, what: string, err: unknown): never {
  if (logger !== undefined) logger.fatal({ [LogKeys.err]: err }, `${what}: ${errorMessage(err)}`);
  else process.stderr.write(`meshid-bundle-notifier: ${what}: ${errorMessage(err)}\n`);
  process.exit(STARTUP_FAILURE_EXIT_CODE);
}

if (require.main === module) {
  process.on("unhandledRejection", (reason) => fail(undefined, "unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail(undefined, "uncaught exception", err));
  run().then(
    (code) => {
      process.exitCode = code;
      // Anything left (a stray timer or socket) must not keep a stopped notifier alive.
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail(undefined, "crashed", err),
  );
}
