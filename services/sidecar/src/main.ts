#!/usr/bin/env node
// The meshid sidecar process (`meshid-sidecar`): the only file that reads process.env. It
// parses the command line, loads the configuration, starts telemetry, the ops server
// (/healthz, /readyz, /metrics) and the sidecar, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CONFIG_ERROR_EXIT_CODE, ConfigError, configFileEnvVar } from "@meshid/config";
import {
  createLogger,
  readPackageVersion,
  runServiceProcess,
  type Logger,
} from "@meshid/telemetry";
import { loadSidecarConfig, type SidecarConfig } from "./config";
import { startSidecar, type RunningSidecar, type SidecarOutcome } from "./sidecar";

/** Exit code after a start-up failure, a crash, or a part that failed for good. */
export const FAILURE_EXIT_CODE = 1;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the sidecar's telemetry. */
export const SIDECAR_SERVICE_NAME = "meshid-sidecar";

const USAGE = `usage: meshid-sidecar [--config <file>]

Starts the meshid sidecar next to NGINX. Settings come from the YAML file (--config, or the
${configFileEnvVar("sidecar")} environment variable), MESHID_SIDECAR_* environment variables,
SPIFFE_ENDPOINT_SOCKET (the Workload API) and POD_NAMESPACE / POD_NAME.`;

/** What the command line asked for. */
export type SidecarCommand =
  | { readonly kind: "run"; readonly configFile?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/**
 * Parses the sidecar's command line (`--config <file>`, `-c <file>`, `--help`); without
 * `--config` the file named by `MESHID_SIDECAR_CONFIG_FILE` in `env` is used, if any. Never
 * throws.
 */
export function parseSidecarCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): SidecarCommand {
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
  const fromEnv = env[configFileEnvVar("sidecar")];
  const configFile = values.config ?? (fromEnv === "" ? undefined : fromEnv);
  return { kind: "run", ...(configFile === undefined ? {} : { configFile }) };
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the sidecar until a signal stops it; resolves with the process exit code. */
async function run(): Promise<number> {
  const command = parseSidecarCommand(process.argv.slice(2), process.env);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    process.stderr.write(`meshid-sidecar: ${command.message}\n${USAGE}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }

  let config: SidecarConfig;
  try {
    config = loadSidecarConfig({
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

  const logger = createLogger({ service: "sidecar", level: config.logLevel });
  return runServiceProcess<RunningSidecar, SidecarOutcome>({
    name: "sidecar",
    serviceName: SIDECAR_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: FAILURE_EXIT_CODE },
    opsStop: "after-service",
    start: (signal) => startSidecar({ config, logger, signal }),
    onStarted: (sidecar, opsUrl) => {
      logger.info(
        {
          opsUrl,
          workloadSocket: config.workloadSocket,
          svidDir: config.svidDir,
          nginxPrefix: config.nginx.prefix,
          nginxManage: config.nginx.manage,
          proxyConfig:
            config.proxyConfig.kind === "file"
              ? config.proxyConfig.file
              : config.proxyConfig.address,
          streamModulePath: sidecar.streamModulePath ?? null,
        },
        "sidecar started",
      );
    },
    done: (sidecar) => sidecar.done(),
    exitCodeFor: (outcome) => {
      if (outcome !== "failed") return undefined;
      logger.error("sidecar stopped: a part failed for good");
      return FAILURE_EXIT_CODE;
    },
  });
}

function fail(logger: Pick<Logger, "fatal"> | undefined, what: string, err: unknown): never {
  if (logger !== undefined) logger.fatal({ err }, `${what}: ${errorMessage(err)}`);
  else process.stderr.write(`meshid-sidecar: ${what}: ${errorMessage(err)}\n`);
  process.exit(FAILURE_EXIT_CODE);
}

if (require.main === module) {
  process.on("unhandledRejection", (reason) => fail(undefined, "unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail(undefined, "uncaught exception", err));
  run().then(
    (code) => {
      process.exitCode = code;
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail(undefined, "crashed", err),
  );
}
