// Runs the built meshid CA (`services/ca/dist/main.js`) as a real child process for the tests
// of other packages (agent, registrar, …), with admin clients over its Unix socket.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { meshidCaV1 } from "@meshid/proto";
import {
  ChannelCredentials,
  createChannel,
  createClient,
  type Channel,
  type Client,
} from "nice-grpc";
import { stringify } from "yaml";
import { SERVICE_NODE_FLAGS } from "./service-node-flags";
import { spawnManaged, type ManagedProcess, type ProcessExit } from "./process";
import { createTempDir, type TempDir } from "./temp-dir";

/** The built CA entry point; resolves the same from `src/` and `dist/` of the testkit. */
export const MESHID_CA_MAIN = join(
  __dirname,
  "..",
  "..",
  "..",
  "services",
  "ca",
  "dist",
  "main.js",
);

/** Default time to wait for the CA to log "ca listening", in milliseconds. */
export const DEFAULT_CA_START_TIMEOUT_MS = 30_000;

/** Default lifetime of join tokens made by {@link MeshidCaProcess.createJoinToken}, in seconds. */
export const DEFAULT_JOIN_TOKEN_TTL_SECONDS = 600;

/** Parameters of {@link startMeshidCa}. */
export interface StartMeshidCaParams {
  /**
   * Directory for the config file, the data dir (`<workDir>/data`) and the bundle file. Default:
   * a fresh temp dir, removed by `stop()`.
   */
  readonly workDir?: string;
  /** Trust domain. Default `example.org`. */
  readonly trustDomain?: string;
  /** NATS URL the CA publishes events to. Default: none (no events). */
  readonly natsUrl?: string;
  /** Key manager. Default `memory` (fast; use `disk` to keep authorities across restarts). */
  readonly keyManager?: "memory" | "disk";
  /** More CA settings, written to its YAML file over the ones above. */
  readonly extraConfig?: Record<string, unknown>;
  /** How long to wait for readiness, in milliseconds. Default {@link DEFAULT_CA_START_TIMEOUT_MS}. */
  readonly startTimeoutMs?: number;
}

/** Admin clients over the CA's Unix socket (every caller there is admin). Close when done. */
export interface MeshidCaAdminClients {
  readonly entries: Client<typeof meshidCaV1.EntryServiceDefinition>;
  readonly agents: Client<typeof meshidCaV1.AgentServiceDefinition>;
  readonly svids: Client<typeof meshidCaV1.SvidServiceDefinition>;
  readonly bundle: Client<typeof meshidCaV1.BundleServiceDefinition>;
  readonly authorities: Client<typeof meshidCaV1.AuthorityServiceDefinition>;
  readonly channel: Channel;
  close(): void;
}

/** Parameters of {@link MeshidCaProcess.createJoinToken}. */
export interface CreateTestJoinTokenParams {
  /** Default {@link DEFAULT_JOIN_TOKEN_TTL_SECONDS}. */
  readonly ttlSeconds?: number;
}

/** A running CA started by {@link startMeshidCa}. */
export interface MeshidCaProcess {
  /** `localhost:<port>` for TLS clients (the CA's serving SVID has DNS `localhost`). */
  readonly address: string;
  readonly port: number;
  readonly trustDomain: string;
  /** SPIFFE ID the CA serves with: `spiffe://<td>/meshid/ca`. */
  readonly serverId: string;
  readonly adminSocketPath: string;
  readonly workDir: string;
  readonly dataDir: string;
  /** PEM trust bundle as it was at start (and after each restart). */
  readonly bundleFile: string;
  /** The current process id. */
  pid(): number;
  /** The current trust bundle as concatenated PEM certificates. */
  bundlePem(): Promise<string>;
  /** Opens admin clients over the Unix socket; they are closed by `stop()` too. */
  admin(): MeshidCaAdminClients;
  /** Creates a single-use join token. */
  createJoinToken(params?: CreateTestJoinTokenParams): Promise<string>;
  /** The process output so far (for failure messages). */
  output(): string;
  /** SIGTERM and wait (SIGKILL after 10 s); closes admin clients; removes a temp workDir. */
  stop(): Promise<ProcessExit>;
  /** SIGKILL now and wait (nothing is removed: `restart()` may follow). */
  kill9(): Promise<ProcessExit>;
  /** Stops the process if running and starts it again on the same port and data dir. */
  restart(): Promise<void>;
}

/** Throws a clear error when the CA has not been built. */
function requireBuiltCa(): string {
  if (!existsSync(MESHID_CA_MAIN)) {
    throw new MeshidError(
      "failed_precondition",
      "testkit.ca.not_built",
      `${MESHID_CA_MAIN} is missing: build the CA first ` +
        "(cd /work/main && npx turbo run build --filter=@meshid/ca...)",
    );
  }
  return MESHID_CA_MAIN;
}

/** Our environment minus every MESHID_CA_* and OTEL_* variable. */
function cleanCaEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_CA_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

/** Opens admin clients on a CA's admin Unix socket (close them with `close()`). */
export function openCaAdmin(socketPath: string): MeshidCaAdminClients {
  const channel = createChannel(`unix://${socketPath}`, ChannelCredentials.createInsecure());
  return {
    entries: createClient(meshidCaV1.EntryServiceDefinition, channel),
    agents: createClient(meshidCaV1.AgentServiceDefinition, channel),
    svids: createClient(meshidCaV1.SvidServiceDefinition, channel),
    bundle: createClient(meshidCaV1.BundleServiceDefinition, channel),
    authorities: createClient(meshidCaV1.AuthorityServiceDefinition, channel),
    channel,
    close: () => channel.close(),
  };
}

/**
 * Starts the built CA (`services/ca/dist/main.js`) with a YAML config in `workDir`: gRPC on a
 * `127.0.0.1` port it binds itself (read from its log, kept for restarts), ops on a random
 * port, SQLite and keys in `<workDir>/data`. Resolves
 * once it logged "ca listening" and its bundle was written to `<workDir>/bundle.pem`.
 *
 * @throws MeshidError `testkit.ca.not_built` when the CA is not built; the process's error
 *   (with its output) when it exits or stays silent first.
 */
export async function startMeshidCa(params: StartMeshidCaParams = {}): Promise<MeshidCaProcess> {
  const main = requireBuiltCa();
  let temp: TempDir | undefined;
  const workDir = params.workDir ?? (temp = await createTempDir("meshid-ca-")).path;
  const trustDomain = params.trustDomain ?? "example.org";
  // The first start binds port 0 and reads the port from the CA's log (a port picked free up
  // front can be taken by another process before the CA binds it); restarts reuse it.
  let port = 0;
  const dataDir = join(workDir, "data");
  const adminSocketPath = join(dataDir, "admin", "admin.sock");
  const configFile = join(workDir, "ca.yaml");
  const bundleFile = join(workDir, "bundle.pem");
  const config: Record<string, unknown> = {
    trustDomain,
    listen: "127.0.0.1:0",
    ops: { listen: "127.0.0.1:0" },
    dataDir,
    adminSocketPath,
    keyManager: params.keyManager ?? "memory",
    logLevel: "info",
    ...(params.natsUrl === undefined ? {} : { natsUrl: params.natsUrl }),
    ...params.extraConfig,
  };
  await writeFile(configFile, stringify(config), { mode: 0o600 });

  let proc: ManagedProcess | undefined;
  const clients: MeshidCaAdminClients[] = [];

  const admin = (): MeshidCaAdminClients => {
    const c = openCaAdmin(adminSocketPath);
    clients.push(c);
    return c;
  };
  const bundlePem = async (): Promise<string> => {
    const c = openCaAdmin(adminSocketPath);
    try {
      return (await c.bundle.getBundle({})).pem;
    } finally {
      c.close();
    }
  };

  const launch = async (): Promise<void> => {
    const p = await spawnManaged(
      process.execPath,
      [...SERVICE_NODE_FLAGS, main, "--config", configFile],
      {
        name: "meshid-ca",
        env: cleanCaEnv(),
        outputLimitChars: 200_000,
      },
    );
    proc = p;
    try {
      const listening = await p.waitForOutput(/"port":(\d+)[^\n]*"msg":"ca listening"/, {
        timeoutMs: params.startTimeoutMs ?? DEFAULT_CA_START_TIMEOUT_MS,
      });
      if (port === 0) {
        port = Number(listening[1]);
        config.listen = `127.0.0.1:${port}`;
        await writeFile(configFile, stringify(config), { mode: 0o600 });
      }
      await writeFile(bundleFile, await bundlePem(), { mode: 0o644 });
    } catch (err) {
      await p.stop({ signal: "SIGKILL" });
      throw err;
    }
  };
  const current = (): ManagedProcess => {
    if (proc === undefined) throw new Error("the CA process is not started");
    return proc;
  };
  const closeClients = (): void => {
    for (const c of clients.splice(0)) c.close();
  };

  try {
    await launch();
  } catch (err) {
    await temp?.cleanup();
    throw err;
  }

  return {
    address: `localhost:${port}`,
    port,
    trustDomain,
    serverId: `spiffe://${trustDomain}/meshid/ca`,
    adminSocketPath,
    workDir,
    dataDir,
    bundleFile,
    pid: () => current().pid,
    bundlePem,
    admin,
    async createJoinToken(p = {}) {
      const c = openCaAdmin(adminSocketPath);
      try {
        const token = await c.agents.createJoinToken({
          ttlSeconds: p.ttlSeconds ?? DEFAULT_JOIN_TOKEN_TTL_SECONDS,
          token: "",
        });
        return token.token;
      } finally {
        c.close();
      }
    },
    output: () => proc?.output() ?? "",
    async stop() {
      closeClients();
      const exit = await current().stop();
      await temp?.cleanup();
      return exit;
    },
    async kill9() {
      closeClients();
      return current().stop({ signal: "SIGKILL" });
    },
    async restart() {
      closeClients();
      if (proc?.exitStatus() === undefined) await proc?.stop();
      await launch();
    },
  };
}
