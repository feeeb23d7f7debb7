#!/usr/bin/env node
// The proxy-config process (`meshid-proxy-config`): the only file that reads process.env. It
// parses the command line, loads the configuration, starts telemetry, the ops server (/healthz,
// /readyz, /metrics) and proxy-config, and stops them gracefully on SIGTERM/SIGINT.
import "reflect-metadata";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE, configFileEnvVar, formatListenAddress } from "@meshid/config";
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
import { loadProxyConfigConfig, type ProxyConfigConfig } from "./config";
import { startProxyConfig, type RunningProxyConfig } from "./proxy-config";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of proxy-config's telemetry. */
export const PROXY_CONFIG_SERVICE_NAME = "meshid-proxy-config";

const COMMAND = { configFileEnvVar: configFileEnvVar("proxy-config") };

const USAGE = `usage: meshid-proxy-config [--config <file>]

Starts meshid proxy-config (MeshConfig and per-pod NGINX sidecar configuration). Settings come
from the YAML file (--config, or the ${COMMAND.configFileEnvVar} environment variable)
and MESHID_PROXY_CONFIG_* environment variables.`;

/**
 * Parses the command line (`--config <file>`, `-c <file>`, `--help`); without `--config` the
 * file named by `MESHID_PROXY_CONFIG_CONFIG_FILE` in `env` is used, if any. Never throws.
 */
export function parseProxyConfigCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ServiceCommand {
  return parseServiceCommand(argv, env, COMMAND);
}

/** Runs proxy-config until a signal stops it; resolves with the process exit code. */
function run(config: ProxyConfigConfig): Promise<number> {
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

const MAIN: ServiceMainParams<ProxyConfigConfig> = {
  binary: "meshid-proxy-config",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) =>
    loadProxyConfigConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env,
    }),
  run,
};

if (require.main === module) runServiceMain(MAIN);
