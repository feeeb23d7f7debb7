#!/usr/bin/env node
// The meshid sidecar process (`meshid-sidecar`): the only file that reads process.env. It
// parses the command line, loads the configuration, starts telemetry, the ops server
// (/healthz, /readyz, /metrics) and the sidecar, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE, configFileEnvVar } from "@meshid/config";
import {
  SERVICE_FAILURE_EXIT_CODE,
  createLogger,
  readPackageVersion,
  runServiceMain,
  runServiceProcess,
  type ServiceMainParams,
} from "@meshid/telemetry";
import { loadSidecarConfig, type SidecarConfig } from "./config";
import { startSidecar, type RunningSidecar, type SidecarOutcome } from "./sidecar";

/** Exit code after a start-up failure, a crash, or a part that failed for good. */
export const FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the sidecar's telemetry. */
export const SIDECAR_SERVICE_NAME = "meshid-sidecar";

const COMMAND = { configFileEnvVar: configFileEnvVar("sidecar") };

const USAGE = `usage: meshid-sidecar [--config <file>]

Starts the meshid sidecar next to NGINX. Settings come from the YAML file (--config, or the
${configFileEnvVar("sidecar")} environment variable), MESHID_SIDECAR_* environment variables,
SPIFFE_ENDPOINT_SOCKET (the Workload API) and POD_NAMESPACE / POD_NAME.`;

/** Runs the service until a signal stops it; resolves with the process exit code. */
function run(config: SidecarConfig): Promise<number> {
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

const MAIN: ServiceMainParams<SidecarConfig> = {
  binary: "meshid-sidecar",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) =>
    loadSidecarConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env,
    }),
  run,
};

if (require.main === module) runServiceMain(MAIN);
