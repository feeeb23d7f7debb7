#!/usr/bin/env node
// The meshid registrar process (`meshid-registrar`): the only file that reads process.env. It
// parses the command line, loads the configuration, starts telemetry, the ops server
// (/healthz, /readyz, /metrics) and the registrar, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE, configFileEnvVar } from "@meshid/config";
import {
  LogKeys,
  SERVICE_FAILURE_EXIT_CODE,
  createLogger,
  parseServiceCommand,
  readPackageVersion,
  runServiceMain,
  runServiceProcess,
  type ServiceCommand,
  type ServiceMainParams,
} from "@meshid/telemetry";
import { loadRegistrarConfig, type RegistrarConfig } from "./config";
import { startRegistrar, type RunningRegistrar } from "./registrar";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the registrar's telemetry. */
export const REGISTRAR_SERVICE_NAME = "meshid-registrar";

const COMMAND = { configFileEnvVar: configFileEnvVar("registrar") };

const USAGE = `usage: meshid-registrar [--config <file>]

Starts the meshid registrar. Settings come from the YAML file (--config, or the
${COMMAND.configFileEnvVar} environment variable) and MESHID_REGISTRAR_* environment variables.`;

/**
 * Parses the registrar's command line (`--config <file>`, `-c <file>`, `--help`); without
 * `--config` the file named by `MESHID_REGISTRAR_CONFIG_FILE` in `env` is used, if any.
 * Never throws.
 */
export function parseRegistrarCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServiceCommand {
  return parseServiceCommand(argv, env, COMMAND);
}

/** Runs the registrar until a signal stops it; resolves with the process exit code. */
function run(config: RegistrarConfig): Promise<number> {
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

const MAIN: ServiceMainParams<RegistrarConfig> = {
  binary: "meshid-registrar",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) =>
    loadRegistrarConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env,
    }),
  run,
};

if (require.main === module) runServiceMain(MAIN);
