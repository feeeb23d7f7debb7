#!/usr/bin/env node
// The meshid agent process (`meshid-agent`): the only file that reads process.env. It parses
// the command line, loads the configuration, starts telemetry, the ops server (/healthz,
// /readyz, /metrics) and the agent, and stops them gracefully on SIGTERM/SIGINT.
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
import { startAgent, type RunningAgent } from "./agent";
import { loadAgentConfig, type AgentConfig } from "./config";

/** Exit code after a start-up failure or a crash. */
export const STARTUP_FAILURE_EXIT_CODE = 1;

/** Exit code when the CA banned the agent (it stops rather than serve with a revoked identity). */
export const BANNED_EXIT_CODE = 3;

/** Longest a graceful stop may take before the process exits anyway, in milliseconds. */
export const SHUTDOWN_TIMEOUT_MS = 30_000;

/** `service.name` of the agent's telemetry. */
export const AGENT_SERVICE_NAME = "meshid-agent";

const USAGE = `usage: meshid-agent [--config <file>] [--join-token <token>]

Starts the meshid agent. Settings come from the YAML file (--config, or the
${configFileEnvVar("agent")} environment variable) and MESHID_AGENT_* environment variables.
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
  let values: { config?: string; "join-token"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string", short: "c" },
        "join-token": { type: "string" },
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
  const joinToken = values["join-token"];
  if (joinToken === "") return { kind: "usage_error", message: "--join-token needs a token" };
  const fromEnv = env[configFileEnvVar("agent")];
  const configFile = values.config ?? (fromEnv === "" ? undefined : fromEnv);
  return {
    kind: "run",
    ...(configFile === undefined ? {} : { configFile }),
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

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs the agent until a signal stops it; resolves with the process exit code. */
async function run(): Promise<number> {
  const command = parseAgentCommand(process.argv.slice(2), process.env);
  if (command.kind === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command.kind === "usage_error") {
    process.stderr.write(`meshid-agent: ${command.message}\n${USAGE}\n`);
    return CONFIG_ERROR_EXIT_CODE;
  }

  let config: AgentConfig;
  try {
    config = loadAgentConfig({
      ...(command.configFile === undefined ? {} : { file: command.configFile }),
      env: configEnvForCommand(command, process.env),
    });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return CONFIG_ERROR_EXIT_CODE;
    }
    throw err;
  }

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

function fail(logger: Pick<Logger, "fatal"> | undefined, what: string, err: unknown): never {
  if (logger !== undefined) logger.fatal({ [LogKeys.err]: err }, `${what}: ${errorMessage(err)}`);
  else process.stderr.write(`meshid-agent: ${what}: ${errorMessage(err)}\n`);
  process.exit(STARTUP_FAILURE_EXIT_CODE);
}

if (require.main === module) {
  process.on("unhandledRejection", (reason) => fail(undefined, "unhandled rejection", reason));
  process.on("uncaughtException", (err) => fail(undefined, "uncaught exception", err));
  run().then(
    (code) => {
      process.exitCode = code;
      // Anything left (a stray timer or socket) must not keep a stopped agent alive.
      setImmediate(() => process.exit(code)).unref();
    },
    (err: unknown) => fail(undefined, "crashed", err),
  );
}
