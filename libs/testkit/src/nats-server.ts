import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { delimiter, join } from "node:path";
import { connect as natsConnect, type ConnectionOptions, type NatsConnection } from "nats";
import { getFreePort } from "./ports";
import { createTempDir, type TempDir } from "./temp-dir";

/** How long a nats-server may take to print "Server is ready" (ms). */
const START_TIMEOUT_MS = 20_000;
/** How long a cluster may take to connect its routes and elect a JetStream leader (ms). */
const CLUSTER_READY_TIMEOUT_MS = 30_000;
/** How long stop() waits after SIGTERM before it sends SIGKILL (ms). */
const STOP_GRACE_MS = 10_000;
/** Keep at most this much of a server's log for error messages (characters). */
const LOG_TAIL_CHARS = 8_000;

/** Options of {@link startNatsServer}. */
export interface StartNatsServerParams {
  /** Enable JetStream with a file store in a fresh temp dir. Default true. */
  jetstream?: boolean;
}

/** A real nats-server process on 127.0.0.1, started by {@link startNatsServer}. */
export interface NatsServer {
  /** Client URL, `nats://127.0.0.1:<port>`. */
  readonly url: string;
  /** Client port the server listens on. */
  readonly port: number;
  /** Temp dir holding the JetStream store; removed by stop(). */
  readonly storeDir: string;
  /** OS process id of the server (for leak checks). */
  readonly pid: number;
  /** Connects a client to this server; stop() closes every connection made here. */
  connect(opts?: ConnectionOptions): Promise<NatsConnection>;
  /** Closes connections from connect(), SIGTERMs the server, waits for exit, removes storeDir. */
  stop(): Promise<void>;
}

/** Options of {@link startNatsCluster}. */
export interface StartNatsClusterParams {
  /** Number of nodes, routed in a full mesh. Default 3. */
  size?: number;
  /** Enable clustered JetStream (needs size ≥ 3 for a quorum of replicas). Default true. */
  jetstream?: boolean;
}

/** A cluster of real nats-server processes, started by {@link startNatsCluster}. */
export interface NatsCluster {
  /** Client URL of each node, in node order. */
  readonly urls: readonly string[];
  /** The nodes, in node order. */
  readonly servers: readonly NatsServer[];
  /** Connects a client to the cluster (node `node`, default: all URLs as seeds). */
  connect(opts?: ConnectionOptions & { node?: number }): Promise<NatsConnection>;
  /** Stops every node and closes every connection made by connect(). */
  stop(): Promise<void>;
}

/** Candidate locations of the Debian package's binary, besides $PATH. */
const WELL_KNOWN_DIRS = ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"];

/**
 * Finds the nats-server binary in `dirs` (default: $PATH, then /usr/sbin, /usr/bin and
 * /usr/local; Debian installs it in /usr/sbin). Throws an Error naming the Debian package
 * when it is missing.
 */
export function findNatsServerBinary(
  dirs: readonly string[] = [
    ...(process.env.PATH ?? "").split(delimiter).filter(Boolean),
    ...WELL_KNOWN_DIRS,
  ],
): string {
  for (const dir of dirs) {
    const candidate = join(dir, "nats-server");
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here; try the next directory
    }
  }
  throw new Error("nats-server not found; install the Debian package nats-server");
}

interface RunningProcess {
  child: ChildProcess;
  clientPort: number;
  exited: Promise<void>;
  log(): string;
}

/** Spawns nats-server with `args` and resolves once it logs its client port and "Server is ready". */
async function spawnNatsServer(args: string[]): Promise<RunningProcess> {
  const binary = findNatsServerBinary();
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let logText = "";
  let clientPort: number | undefined;
  let ready = false;
  let onProgress: (() => void) | undefined;
  const onData = (chunk: Buffer): void => {
    logText = (logText + chunk.toString("utf8")).slice(-LOG_TAIL_CHARS);
    if (clientPort === undefined) {
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(logText);
      if (m?.[1] !== undefined) clientPort = Number(m[1]);
    }
    if (!ready && logText.includes("Server is ready")) ready = true;
    onProgress?.();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exitInfo = `exited with code ${code ?? "null"}, signal ${signal ?? "none"}`;
      onProgress?.();
      resolve();
    });
    child.once("error", (err) => {
      exitInfo = `failed to start: ${err.message}`;
      onProgress?.();
      resolve();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`nats-server did not become ready in time; log:\n${logText}`));
    }, START_TIMEOUT_MS);
    onProgress = () => {
      if (exitInfo !== undefined) {
        clearTimeout(timer);
        reject(new Error(`nats-server ${exitInfo}; log:\n${logText}`));
      } else if (ready && clientPort !== undefined) {
        clearTimeout(timer);
        resolve();
      }
    };
    onProgress();
  }).finally(() => {
    onProgress = undefined;
  });

  return { child, clientPort: clientPort!, exited, log: () => logText };
}

/** Sends SIGTERM, waits for exit, SIGKILLs after a grace period. */
async function terminate(proc: RunningProcess): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const killLater = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      proc.child.kill("SIGKILL");
      resolve();
    }, STOP_GRACE_MS);
  });
  await Promise.race([proc.exited, killLater]);
  clearTimeout(timer);
  await proc.exited;
}

/** Wraps a running process as a {@link NatsServer}. */
function asNatsServer(proc: RunningProcess, storeDir: TempDir): NatsServer {
  const url = `nats://127.0.0.1:${proc.clientPort}`;
  const connections = new Set<NatsConnection>();
  let stopping: Promise<void> | undefined;
  return {
    url,
    port: proc.clientPort,
    storeDir: storeDir.path,
    pid: proc.child.pid!,
    async connect(opts: ConnectionOptions = {}) {
      const nc = await natsConnect({ servers: url, ...opts });
      connections.add(nc);
      return nc;
    },
    stop() {
      stopping ??= (async () => {
        await Promise.allSettled([...connections].map((nc) => nc.close()));
        connections.clear();
        await terminate(proc);
        await storeDir.cleanup();
      })();
      return stopping;
    },
  };
}

/** Connects once and closes, proving the server accepts clients. */
async function probe(url: string): Promise<void> {
  const nc = await natsConnect({ servers: url, timeout: 5_000 });
  await nc.flush();
  await nc.close();
}

/**
 * Starts a real nats-server on a random free 127.0.0.1 port (the server picks it: `-p -1`, so
 * there is no race with other tests), with JetStream storing in a fresh temp dir, and waits
 * until it accepts clients. Always call stop() (e.g. in afterAll).
 * Throws if the binary is missing ("nats-server not found; …") or the server fails to start.
 */
export async function startNatsServer(params: StartNatsServerParams = {}): Promise<NatsServer> {
  const { jetstream = true } = params;
  findNatsServerBinary();
  const storeDir = await createTempDir("nats");
  const args = ["-a", "127.0.0.1", "-p", "-1", "-n", `meshid-test-${process.pid}`];
  if (jetstream) args.push("-js", "-sd", storeDir.path);
  let proc: RunningProcess;
  try {
    proc = await spawnNatsServer(args);
  } catch (err) {
    await storeDir.cleanup();
    throw err;
  }
  const server = asNatsServer(proc, storeDir);
  try {
    await probe(server.url);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

interface ClusterNodeMonitor {
  monitorPort: number;
}

/** Fetches JSON from a node's monitoring endpoint, or undefined while it is not answering. */
async function monitorJson(
  port: number,
  path: string,
): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`);
    if (!res.ok) return undefined;
    return (await res.json()) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Polls every node until it has routes to all others and (with JetStream) knows a meta leader. */
async function waitForCluster(
  nodes: readonly ClusterNodeMonitor[],
  jetstream: boolean,
): Promise<void> {
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  const wanted = nodes.length - 1;
  for (;;) {
    const states = await Promise.all(
      nodes.map(async ({ monitorPort }) => {
        const routez = await monitorJson(monitorPort, "/routez");
        if (typeof routez?.num_routes !== "number" || routez.num_routes < wanted) return false;
        if (!jetstream) return true;
        const jsz = await monitorJson(monitorPort, "/jsz");
        const meta = jsz?.meta_cluster as { leader?: unknown } | undefined;
        return typeof meta?.leader === "string" && meta.leader !== "";
      }),
    );
    if (states.every(Boolean)) return;
    if (Date.now() > deadline) {
      throw new Error("nats-server cluster did not form in time (routes or JetStream leader)");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `size` real nats-server nodes on 127.0.0.1 joined in a full route mesh (cluster name
 * `meshid-test`, clustered JetStream when enabled) and waits until every node is routed to all
 * others and JetStream has a meta leader. Route and monitoring ports come from getFreePort
 * (routes must be known up front); client ports are picked by the servers. Always call stop().
 * Throws if the binary is missing or the cluster does not form within 30 s.
 */
export async function startNatsCluster(params: StartNatsClusterParams = {}): Promise<NatsCluster> {
  const { size = 3, jetstream = true } = params;
  if (!Number.isInteger(size) || size < 1) {
    throw new Error(`startNatsCluster: size must be a positive integer, got ${size}`);
  }
  findNatsServerBinary();
  // getFreePort can race with other processes; a port taken in between fails the start, so
  // try again with fresh ports.
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startClusterOnce(size, jetstream);
    } catch (err) {
      const portTaken = /address already in use/i.test((err as Error).message);
      if (!portTaken || attempt >= CLUSTER_START_ATTEMPTS) throw err;
    }
  }
}

/** How often startNatsCluster tries fresh ports when one was taken meanwhile. */
const CLUSTER_START_ATTEMPTS = 3;

async function startClusterOnce(size: number, jetstream: boolean): Promise<NatsCluster> {
  const routePorts: number[] = [];
  const monitorPorts: number[] = [];
  for (let i = 0; i < size; i += 1) {
    routePorts.push(await getFreePort());
    monitorPorts.push(await getFreePort());
  }
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const servers: NatsServer[] = [];
  const connections = new Set<NatsConnection>();
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled([...connections].map((nc) => nc.close()));
    connections.clear();
    await Promise.allSettled(servers.map((s) => s.stop()));
  };
  try {
    // Started in parallel: clustered JetStream waits for its peers before it is ready.
    const started = await Promise.allSettled(
      routePorts.map(async (routePort, i) => {
        const storeDir = await createTempDir(`nats-node${i + 1}`);
        const args = [
          ...["-a", "127.0.0.1", "-p", "-1", "-m", String(monitorPorts[i])],
          ...["-n", `meshid-test-${process.pid}-n${i + 1}`, "--cluster_name", "meshid-test"],
          ...["--cluster", `nats://127.0.0.1:${routePort}`, "--routes", routes],
        ];
        if (jetstream) args.push("-js", "-sd", storeDir.path);
        try {
          return asNatsServer(await spawnNatsServer(args), storeDir);
        } catch (err) {
          await storeDir.cleanup();
          throw err;
        }
      }),
    );
    for (const result of started) if (result.status === "fulfilled") servers.push(result.value);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    await waitForCluster(
      monitorPorts.map((monitorPort) => ({ monitorPort })),
      jetstream,
    );
    await Promise.all(servers.map((s) => probe(s.url)));
  } catch (err) {
    await stopAll();
    throw err;
  }
  const urls = servers.map((s) => s.url);
  let stopping: Promise<void> | undefined;
  return {
    urls,
    servers,
    async connect(opts = {}) {
      const { node, ...rest } = opts;
      const target = node === undefined ? urls : urls[node];
      if (target === undefined) throw new Error(`startNatsCluster: no node ${node}`);
      const nc = await natsConnect({ servers: target, ...rest });
      connections.add(nc);
      return nc;
    },
    stop() {
      stopping ??= stopAll();
      return stopping;
    },
  };
}
