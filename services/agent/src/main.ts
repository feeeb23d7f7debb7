#!/usr/bin/env node
// The meshid agent process (`meshid-agent`): the only file that reads process.env. It parses
// the command line, loads the configuration, starts telemetry, the ops server (/healthz,
// /readyz, /metrics) and the agent, and stops them gracefully on SIGTERM/SIGINT.
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
import { startAgent, type RunningAgent } from "./agent";
import { loadAgentConfig, type AgentConfig } from "./config";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = SERVICE_FAILURE_EXIT_CODE;

/** Exit code when the CA banned the agent (it stops rather than serve with a revoked identity). */
export const BANNED_EXIT_CODE = 3;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the agent's telemetry. */
export const AGENT_SERVICE_NAME = "meshid-agent";

const COMMAND = { configFileEnvVar: configFileEnvVar("agent"), stringFlags: ["join-token"] };

const USAGE = `usage: meshid-agent [--config <file>] [--join-token <token>]

Starts the meshid agent. Settings come from the YAML file (--config, or the
${COMMAND.configFileEnvVar} environment variable) and MESHID_AGENT_* environment variables.
--join-token attests the node with that single-use token (it overrides the attestation
settings of the file and environment).`;

/** What the command line asked for. */
export type AgentCommand =
  | { readonly kind: "run"; readonly configFile?: string; readonly joinToken?: string }
  | { readonly kind: "help" }
  | { readonly kind: "usage_error"; readonly message: string };

/**
 * Parses the agent's command line (`--config <file>`, `-c <file>`, `--join-token <token>`,
 * `--help`); without `--config` the file named by `MESHID_AGENT_CONFIG_FILE` in `env` is used,
 * if any. Never throws.
 */
export function parseAgentCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): AgentCommand {
  return agentCommand(parseServiceCommand(argv, env, COMMAND));
}

function agentCommand(command: ServiceCommand): AgentCommand {
  if (command.kind !== "run") return command;
  const joinToken = command.flags?.["join-token"];
  return {
    kind: "run",
    ...(command.configFile === undefined ? {} : { configFile: command.configFile }),
    ...(joinToken === undefined ? {} : { joinToken }),
  };
}

/**
 * The environment the configuration is loaded from: `env`, plus the attestation settings a
 * `--join-token` flag stands for (flags win over the file and the environment).
 */
export function configEnvForCommand(
  command: { readonly joinToken?: string },
  env: Readonly<Record<string, string | undefined>>,
): Readonly<Record<string, string | undefined>> {
  if (command.joinToken === undefined) return env;
  return {
    ...env,
    MESHID_AGENT_ATTESTATION__TYPE: "join_token",
    MESHID_AGENT_ATTESTATION__JOIN_TOKEN: command.joinToken,
  };
}

/** Runs the agent until a signal stops it; resolves with the process exit code. */
function run(config: AgentConfig): Promise<number> {
  const logger = createLogger({ service: "agent", level: config.logLevel });
  return runServiceProcess<RunningAgent, "stopped" | "banned">({
    name: "agent",
    serviceName: AGENT_SERVICE_NAME,
    serviceVersion: readPackageVersion(join(__dirname, "..", "package.json")),
    env: process.env,
    logger,
    ops: config.ops.listen,
    process,
    shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS,
    exitCodes: { configError: CONFIG_ERROR_EXIT_CODE, failure: STARTUP_FAILURE_EXIT_CODE },
    // The agent first (workloads lose their streams), then the probes.
    opsStop: "after-service",
    start: (signal) => startAgent({ config, logger, signal }),
    onStarted: (agent, opsUrl) => {
      logger.info(
        {
          agentId: agent.agentId,
          workloadSocketPath: agent.workloadSocketPath,
          opsUrl,
          [LogKeys.trustDomain]: config.trustDomain,
        },
        "agent serving the Workload API",
      );
    },
    done: (agent) => agent.done(),
    exitCodeFor: (outcome) => {
      if (outcome !== "banned") return undefined;
      logger.error("agent stopped: banned by the CA");
      return BANNED_EXIT_CODE;
    },
  });
}

const MAIN: ServiceMainParams<AgentConfig> = {
  binary: "meshid-agent",
  usage: USAGE,
  command: COMMAND,
  loadConfig: (command, env) => {
    const agent = agentCommand(command) as Extract<AgentCommand, { kind: "run" }>;
    return loadAgentConfig({
      ...(agent.configFile === undefined ? {} : { file: agent.configFile }),
      env: configEnvForCommand(agent, env),
    });
  },
  run,
};

if (require.main === module) runServiceMain(MAIN);
