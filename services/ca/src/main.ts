#!/usr/bin/env node
// The meshid CA process (`meshid-ca`): the only file that reads process.env. It parses the
// command line, loads the configuration, starts telemetry, the ops server (/healthz, /readyz,
// /metrics) and the CA server, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE, configFileEnvVar, formatListenAddress } from "@meshid/config";
import {
  LogKeys,
  SERVICE_FAILURE_EXIT_CODE,
  createLogger,
  readPackageVersion,
  runServiceMain,
  runServiceProcess,
  type ServiceMainParams,
} from "@meshid/telemetry";
import { startCaServer, type RunningCa } from "./ca-server";
import { loadCaConfig, type LoadedCaConfig } from "./config";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the CA's telemetry. */
export const CA_SERVICE_NAME = "meshid-ca";

const COMMAND = { configFileEnvVar: configFileEnvVar("ca") };

const USAGE = `usage: meshid-ca [--config <file>]

Starts the meshid CA. Settings come from the YAML file (--config, or the
${COMMAND.configFileEnvVar} environment variable) and MESHID_CA_* environment variables.`;

/** Runs the service until a signal stops it; resolves with the process exit code. */
function run(loaded: LoadedCaConfig): Promise<number> {
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

const MAIN: ServiceMainParams<LoadedCaConfig> = {
  binary: "meshid-ca",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) =>
    loadCaConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env,
    }),
  run,
};

if (require.main === module) runServiceMain(MAIN);
