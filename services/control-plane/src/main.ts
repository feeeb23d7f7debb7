#!/usr/bin/env node
// The meshid control plane in one process (`meshid-control-plane`): the only file that reads
// process.env. It loads its own configuration and each hosted service's, starts telemetry, one
// ops server (/healthz, /readyz, /metrics of every hosted service) and the services, and stops
// them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE, configFileEnvVar } from "@meshid/config";
import {
  SERVICE_FAILURE_EXIT_CODE,
  createLogger,
  parseServiceCommand,
  readPackageVersion,
  runServiceMain,
  runServiceProcess,
  type ServiceCommand,
  type ServiceMainParams,
} from "@meshid/telemetry";
import { loadControlPlaneConfig, SERVICE_NAMES, type ControlPlaneConfig } from "./config";
import { startControlPlane, type RunningControlPlane } from "./control-plane";

/** Exit code after a start-up failure, a crash, or a hosted service that ended by itself. */
export const STARTUP_FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the control plane's telemetry. */
export const CONTROL_PLANE_SERVICE_NAME = "meshid-control-plane";

const COMMAND = { configFileEnvVar: configFileEnvVar("control-plane") };

const USAGE = `usage: meshid-control-plane [--config <file>]

Runs ca, registrar, bundle-notifier and proxy-config (those enabled) in one process.
Settings come from the YAML file (--config, or the ${COMMAND.configFileEnvVar}
environment variable) and MESHID_CONTROL_PLANE_* variables; each hosted service reads its
own file (<service>.configFile) and its own MESHID_<SERVICE>_* variables, as on its own.`;

/** Parses `--config <file>`, `-c <file>`, `--help`. Never throws. */
export function parseControlPlaneCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServiceCommand {
  return parseServiceCommand(argv, env, COMMAND);
}

/** Runs the control plane until a signal stops it; resolves with the process exit code. */
function run(config: ControlPlaneConfig): Promise<number> {
  const logger = createLogger({ service: "control-plane", level: config.logLevel });
  return runServiceProcess<RunningControlPlane, string>({
    name: "control-plane",
    serviceName: CONTROL_PLANE_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: STARTUP_FAILURE_EXIT_CODE },
    opsStop: "after-service",
    start: (signal) => startControlPlane({ services: config.services, logger, signal }),
    onStarted: (controlPlane, opsUrl) => {
      logger.info(
        {
          services: controlPlane.services.map((s) => SERVICE_NAMES[s]),
          opsUrl,
          ...controlPlane.listening,
        },
        "control plane running",
      );
    },
    done: (controlPlane) => controlPlane.done(),
    exitCodeFor: (service) => {
      logger.error({ service }, "a hosted service ended by itself: control plane stopped");
      return STARTUP_FAILURE_EXIT_CODE;
    },
  });
}

const MAIN: ServiceMainParams<ControlPlaneConfig> = {
  binary: "meshid-control-plane",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) =>
    loadControlPlaneConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env,
    }),
  run,
};

if (require.main === module) runServiceMain(MAIN);
