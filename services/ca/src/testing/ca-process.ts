// Test helper: runs the built CA (`dist/main.js`) as a real child process, with a YAML config
// written into a temp dir, and hands back its addresses (read from its "ca listening" log line)
// and admin clients over its Unix socket.
/// <reference types="jest" />
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createGrpcChannel, createGrpcClient } from "@meshid/grpc-kit";
import { meshidCaV1 } from "@meshid/proto";
import {
  createTempDir,
  spawnManaged,
  startNatsServer,
  type ManagedProcess,
  type NatsServer,
  type ProcessExit,
  type TempDir,
} from "@meshid/testkit";
import type { Client } from "nice-grpc";
import { stringify } from "yaml";

/** The built CA entry point the process tests run (never the ts sources). */
export const CA_MAIN = join(__dirname, "..", "..", "dist", "main.js");

/** Throws a clear error when the CA has not been built. */
export function requireBuiltCa(): string {
  if (!existsSync(CA_MAIN)) {
    throw new Error(
      `${CA_MAIN} is missing: build the CA first (npx turbo run build --filter=@meshid/ca...)`,
    );
  }
  return CA_MAIN;
}

/** The environment for a CA child: ours minus every MESHID_CA_* and OTEL_* variable. */
export function cleanCaEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_CA_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Parameters of {@link startCaProcess}. */
export interface StartCaProcessParams {
  /** Directory for the config file (and the default data dir `<workDir>/data`). */
  readonly workDir: string;
  /** CA settings written to the YAML file (on top of 127.0.0.1:0 listeners and the data dir). */
  readonly config?: Record<string, unknown>;
  /** Extra environment variables. */
  readonly env?: Record<string, string>;
  /** Wait this long for the "ca listening" line, in milliseconds. Default 30 000. */
  readonly startTimeoutMs?: number;
}

/** Admin clients over the CA's Unix socket (every caller there is admin). */
export interface CaAdminClients {
  readonly entries: Client<typeof meshidCaV1.EntryServiceDefinition>;
  readonly agents: Client<typeof meshidCaV1.AgentServiceDefinition>;
  readonly bundle: Client<typeof meshidCaV1.BundleServiceDefinition>;
  readonly authorities: Client<typeof meshidCaV1.AuthorityServiceDefinition>;
  readonly svids: Client<typeof meshidCaV1.SvidServiceDefinition>;
  readonly channel: ReturnType<typeof createGrpcChannel>;
  close(): void;
}

/** A CA child process started by {@link startCaProcess}. */
export interface CaProcess {
  readonly process: ManagedProcess;
  readonly pid: number;
  /** TCP gRPC port (TLS). */
  readonly tcpPort: number;
  readonly adminSocketPath: string;
  /** Ops server base URL, e.g. `http://127.0.0.1:40123`. */
  readonly opsUrl: string;
  /** The config file the process was started with. */
  readonly configFile: string;
  /** Opens admin clients over the Unix socket. */
  adminClients(): CaAdminClients;
  /** SIGTERM, wait for exit (SIGKILL after 10 s). */
  stop(): Promise<ProcessExit>;
  /** SIGKILL now and wait for exit. */
  kill9(): Promise<ProcessExit>;
}

/** The parsed "ca listening" log line. */
interface ListeningLine {
  port: number;
  adminSocketPath: string;
  opsUrl: string;
}

/** Opens admin clients on `unix://<socketPath>`. */
export function openAdminClients(socketPath: string): CaAdminClients {
  const channel = createGrpcChannel({ target: `unix://${socketPath}` });
  const opts = { deadlineMs: 30_000 };
  return {
    entries: createGrpcClient(meshidCaV1.EntryServiceDefinition, channel, opts),
    agents: createGrpcClient(meshidCaV1.AgentServiceDefinition, channel, opts),
    bundle: createGrpcClient(meshidCaV1.BundleServiceDefinition, channel, opts),
    authorities: createGrpcClient(meshidCaV1.AuthorityServiceDefinition, channel, opts),
    svids: createGrpcClient(meshidCaV1.SvidServiceDefinition, channel, opts),
    channel,
    close: () => channel.close(),
  };
}

/**
 * Writes `<workDir>/ca.yaml` (listeners on 127.0.0.1:0, data dir `<workDir>/data` unless the
 * config sets one, log level info) and starts the built CA with `--config`; resolves once it
 * logged "ca listening".
 *
 * @throws when the process exits or stays silent first (with its output).
 */
export async function startCaProcess(params: StartCaProcessParams): Promise<CaProcess> {
  const main = requireBuiltCa();
  const configFile = join(params.workDir, "ca.yaml");
  const config = {
    listen: "127.0.0.1:0",
    ops: { listen: "127.0.0.1:0" },
    dataDir: join(params.workDir, "data"),
    logLevel: "info",
    ...params.config,
  };
  await writeFile(configFile, stringify(config), { mode: 0o600 });
  const proc = await spawnManaged(process.execPath, [main, "--config", configFile], {
    name: "meshid-ca",
    env: cleanCaEnv(params.env),
    outputLimitChars: 200_000,
  });
  let line: ListeningLine;
  try {
    const match = await proc.waitForOutput(/^.*"msg":"ca listening".*$/m, {
      timeoutMs: params.startTimeoutMs ?? 30_000,
    });
    line = JSON.parse(match[0]) as ListeningLine;
  } catch (err) {
    await proc.stop({ signal: "SIGKILL" });
    throw err;
  }
  return {
    process: proc,
    pid: proc.pid,
    tcpPort: line.port,
    adminSocketPath: line.adminSocketPath,
    opsUrl: line.opsUrl,
    configFile,
    adminClients: () => openAdminClients(line.adminSocketPath),
    stop: () => proc.stop(),
    kill9: () => proc.stop({ signal: "SIGKILL" }),
  };
}

/** What {@link useCaProcessSuite} hands a test file. */
export interface CaProcessSuite {
  /** The current test's temp dir (a fresh one per test, removed after it). */
  readonly dir: TempDir;
  /** The nats-server shared by the file's tests. */
  readonly nats: NatsServer;
  /**
   * Starts the CA in {@link CaProcessSuite.dir} ({@link startCaProcess} with that `workDir`);
   * it is killed with SIGKILL after the test if still running.
   */
  start(params?: Omit<StartCaProcessParams, "workDir">): Promise<CaProcess>;
  /** Opens admin clients on `ca`; they are closed after the test. */
  adminClients(ca: CaProcess): CaAdminClients;
}

/**
 * Sets up a process-test file: checks the CA is built and starts a nats-server before all
 * tests (stopped after all), makes a temp dir `<tempDirPrefix>-…` before each test, and after
 * each closes the admin clients it opened, SIGKILLs the CAs it started and removes the dir.
 * Call at module level or inside a `describe`, like `beforeAll`.
 */
export function useCaProcessSuite(tempDirPrefix: string): CaProcessSuite {
  let dir: TempDir | undefined;
  let nats: NatsServer | undefined;
  const running: CaProcess[] = [];
  const clients: CaAdminClients[] = [];

  beforeAll(async () => {
    requireBuiltCa();
    nats = await startNatsServer();
  });

  afterAll(async () => {
    await nats?.stop();
  });

  beforeEach(async () => {
    dir = await createTempDir(tempDirPrefix);
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(running.splice(0).map((ca) => ca.kill9()));
    await dir?.cleanup();
  });

  const suite: CaProcessSuite = {
    get dir(): TempDir {
      if (dir === undefined) throw new Error("the suite's temp dir exists only during a test");
      return dir;
    },
    get nats(): NatsServer {
      if (nats === undefined) throw new Error("the suite's nats-server is not started yet");
      return nats;
    },
    async start(params = {}) {
      const ca = await startCaProcess({ ...params, workDir: suite.dir.path });
      running.push(ca);
      return ca;
    },
    adminClients(ca) {
      const c = ca.adminClients();
      clients.push(c);
      return c;
    },
  };
  return suite;
}
