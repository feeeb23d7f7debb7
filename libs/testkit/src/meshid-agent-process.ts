// Runs the built meshid agent (`services/agent/dist/main.js`) as a real child process for the
// tests of other packages (sidecar, workload-api, e2e): join-token attestation against a
// CA from startMeshidCa, Workload API on a Unix socket in its work dir.
import { existsSync } from "node:fs";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { stringify } from "yaml";
import type { MeshidCaProcess } from "./meshid-ca-process";
import { getFreePort } from "./ports";
import { SERVICE_NODE_FLAGS } from "./service-node-flags";
import { spawnManaged, type ManagedProcess, type ProcessExit } from "./process";
import { createTempDir, type TempDir } from "./temp-dir";

/** The built agent entry point; resolves the same from `src/` and `dist/` of the testkit. */
export const MESHID_AGENT_MAIN = join(
  __dirname,
  "..",
  "..",
  "..",
  "services",
  "agent",
  "dist",
  "main.js",
);

/** Default time to wait for the agent to log "agent serving the Workload API", in milliseconds. */
export const DEFAULT_AGENT_START_TIMEOUT_MS = 60_000;

/** Parameters of {@link startMeshidAgent}. */
export interface StartMeshidAgentParams {
  /** The CA the agent attests to and gets its SVIDs from. */
  readonly ca: MeshidCaProcess;
  /** NATS URL for wake-ups (use the CA's NATS). Default: none (periodic reconcile only). */
  readonly natsUrl?: string;
  /**
   * Directory for the config file, the data dir (`<workDir>/data`) and the socket
   * (`<workDir>/run/workload.sock`). Made reachable by other uids (0755). Default: a fresh temp
   * dir, removed by `stop()`.
   */
  readonly workDir?: string;
  /** Single-use join token. Default: a fresh one from `ca.createJoinToken()`. */
  readonly joinToken?: string;
  /** More agent settings, written to its YAML file over the ones above. */
  readonly extraConfig?: Record<string, unknown>;
  /** How long to wait for readiness, in milliseconds. Default {@link DEFAULT_AGENT_START_TIMEOUT_MS}. */
  readonly startTimeoutMs?: number;
}

/** A running agent started by {@link startMeshidAgent}. */
export interface MeshidAgentProcess {
  /** The agent's SPIFFE ID (`spiffe://<td>/meshid/agent/join_token/<token>`). */
  readonly agentId: string;
  /** Absolute path of the Workload API socket (`SPIFFE_ENDPOINT_SOCKET` is `unix://` + this). */
  readonly workloadSocketPath: string;
  /** `http://127.0.0.1:<port>` of /healthz, /readyz and /metrics (same port across restarts). */
  readonly opsUrl: string;
  readonly workDir: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** The current process id. */
  pid(): number;
  /** The process output so far (for failure messages). */
  output(): string;
  /** SIGTERM and wait (SIGKILL after 10 s); removes a temp workDir. */
  stop(): Promise<ProcessExit>;
  /** SIGKILL now and wait (nothing is removed: `restart()` may follow). */
  kill9(): Promise<ProcessExit>;
  /**
   * Stops the process if running and starts it again with the same config and data dir (it
   * keeps its persisted identity: no new attestation).
   */
  restart(): Promise<void>;
}

/** Throws a clear error when the agent has not been built. */
function requireBuiltAgent(): string {
  if (!existsSync(MESHID_AGENT_MAIN)) {
    throw new MeshidError(
      "failed_precondition",
      "testkit.agent.not_built",
      `${MESHID_AGENT_MAIN} is missing: build the agent first ` +
        "(cd /work/main && npx turbo run build --filter=@meshid/agent...)",
    );
  }
  return MESHID_AGENT_MAIN;
}

/** Our environment minus every MESHID_AGENT_* and OTEL_* variable. */
function cleanAgentEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_AGENT_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

const SERVING_LINE = /^\{.*"msg":"agent serving the Workload API".*\}$/m;

/**
 * Starts the built agent (`services/agent/dist/main.js`) with a YAML config in `workDir`:
 * join-token attestation to `params.ca`, its bundle file, Workload API socket at
 * `<workDir>/run/workload.sock`, ops on a free `127.0.0.1` port. Resolves once it logged
 * "agent serving the Workload API".
 *
 * @throws MeshidError `testkit.agent.not_built` when the agent is not built; the process's
 *   error (with its output) when it exits or stays silent first.
 */
export async function startMeshidAgent(
  params: StartMeshidAgentParams,
): Promise<MeshidAgentProcess> {
  const main = requireBuiltAgent();
  const { ca } = params;
  let temp: TempDir | undefined;
  const workDir = params.workDir ?? (temp = await createTempDir("meshid-agent-")).path;
  let proc: ManagedProcess | undefined;
  try {
    await mkdir(workDir, { recursive: true });
    // Workloads under other uids must reach the socket.
    await chmod(workDir, 0o755);
    const runDir = join(workDir, "run");
    await mkdir(runDir, { recursive: true, mode: 0o755 });
    await chmod(runDir, 0o755);
    const workloadSocketPath = join(runDir, "workload.sock");
    const dataDir = join(workDir, "data");
    const configFile = join(workDir, "agent.yaml");
    const opsPort = await getFreePort();
    const joinToken = params.joinToken ?? (await ca.createJoinToken());
    const config: Record<string, unknown> = {
      trustDomain: ca.trustDomain,
      caAddress: ca.address,
      caServerId: ca.serverId,
      bundleFile: ca.bundleFile,
      dataDir,
      attestation: { type: "join_token", joinToken },
      workloadApi: { socketPath: workloadSocketPath },
      ops: { listen: `127.0.0.1:${opsPort}` },
      logLevel: "info",
      ...(params.natsUrl === undefined ? {} : { natsUrl: params.natsUrl }),
      ...params.extraConfig,
    };
    await writeFile(configFile, stringify(config), { mode: 0o600 });

    let agentId = "";
    const launch = async (): Promise<void> => {
      const p = await spawnManaged(
        process.execPath,
        [...SERVICE_NODE_FLAGS, main, "--config", configFile],
        {
          name: "meshid-agent",
          env: cleanAgentEnv(),
          outputLimitChars: 200_000,
        },
      );
      proc = p;
      try {
        const match = await p.waitForOutput(SERVING_LINE, {
          timeoutMs: params.startTimeoutMs ?? DEFAULT_AGENT_START_TIMEOUT_MS,
        });
        const line = JSON.parse(match[0]) as { agentId?: unknown };
        if (typeof line.agentId === "string") agentId = line.agentId;
      } catch (err) {
        await p.stop({ signal: "SIGKILL" });
        throw err;
      }
    };
    const current = (): ManagedProcess => {
      if (proc === undefined) throw new Error("the agent process is not started");
      return proc;
    };

    await launch();

    return {
      get agentId() {
        return agentId;
      },
      workloadSocketPath,
      opsUrl: `http://127.0.0.1:${opsPort}`,
      workDir,
      dataDir,
      configFile,
      pid: () => current().pid,
      output: () => proc?.output() ?? "",
      async stop() {
        const exit = await current().stop();
        await temp?.cleanup();
        return exit;
      },
      kill9: () => current().stop({ signal: "SIGKILL" }),
      async restart() {
        if (proc?.exitStatus() === undefined) await proc?.stop();
        await launch();
      },
    };
  } catch (err) {
    const p = proc;
    if (p?.exitStatus() === undefined) await p?.stop({ signal: "SIGKILL" });
    await temp?.cleanup();
    throw err;
  }
}
