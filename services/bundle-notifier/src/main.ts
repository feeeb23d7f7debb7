#!/usr/bin/env node
// The meshid bundle-notifier process (`meshid-bundle-notifier`): the only file that reads
// process.env. It parses the command line, loads the configuration, starts telemetry, the ops
// server (/healthz, /readyz, /metrics) and the notifier, and stops them gracefully on
// SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE, configFileEnvVar } from "@meshid/config";
import {
  LogKeys,
  SERVICE_FAILURE_EXIT_CODE,
  createLogger,
  readPackageVersion,
  runServiceMain,
  runServiceProcess,
  type ServiceMainParams,
} from "@meshid/telemetry";
import {
  BUNDLE_NOTIFIER_CONFIG_SERVICE,
  loadBundleNotifierConfig,
  type BundleNotifierConfig,
} from "./config";
import { startBundleNotifier, type RunningBundleNotifier } from "./notifier";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the notifier's telemetry. */
export const BUNDLE_NOTIFIER_SERVICE_NAME = "meshid-bundle-notifier";

const CONFIG_FILE_ENV = configFileEnvVar(BUNDLE_NOTIFIER_CONFIG_SERVICE);

const COMMAND = { configFileEnvVar: CONFIG_FILE_ENV };

const USAGE = `usage: meshid-bundle-notifier [--config <file>]

Follows the meshid CA's trust bundle and writes it to the bundle ConfigMap, the caBundle of
labelled webhook configurations and APIServices, and/or a file. Settings come from the YAML
file (--config, or the ${CONFIG_FILE_ENV} environment variable) and
MESHID_BUNDLE_NOTIFIER_* environment variables.`;

/** Runs the service until a signal stops it; resolves with the process exit code. */
function run(config: BundleNotifierConfig): Promise<number> {
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

const MAIN: ServiceMainParams<BundleNotifierConfig> = {
  binary: "meshid-bundle-notifier",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) =>
    loadBundleNotifierConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env,
    }),
  run,
};

if (require.main === module) runServiceMain(MAIN);
