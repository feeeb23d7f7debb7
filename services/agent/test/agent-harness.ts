// Shared set-up of the whole-agent integration suites: a real nats-server, the built CA as a
// child process, the real agent in-process (startAgent), and workloads as real child processes
// under another uid talking to the Workload API over the agent's Unix socket.
import { X509Certificate } from "node:crypto";
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { certificatesToPem } from "@meshid/pki";
import { createBundle, splitDerCertificates, validateX509Svid } from "@meshid/spiffe";
import { createNoopLogger, type Logger } from "@meshid/telemetry";
import {
  createTempDir,
  runCommand,
  spawnManaged,
  startMeshidCa,
  startNatsServer,
  type ManagedProcess,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import { startAgent, type RunningAgent } from "../src/agent";
import { buildAgentConfig, type AgentConfig } from "../src/config";

/** The uid of `nobody`, the workload under test (the tests run as root). */
export const WORKLOAD_UID = 65534;
/** Another uid with no entries (`daemon`). */
export const OTHER_UID = 1;

const WORKLOAD_FIXTURE = join(__dirname, "fixtures", "agent-stream-workload.js");

/** Generous bound for anything the agent does asynchronously (never a timing assertion). */
export const EVENT_TIMEOUT_MS = 30_000;

/** One SVID as a workload received it. */
export interface ReceivedSvid {
  readonly spiffeId: string;
  readonly hint: string;
  readonly certsDer: Buffer;
  readonly keyDer: Buffer;
  readonly bundleDer: Buffer;
}

/** What the workload fixture prints. */
export type WorkloadEvent =
  | { readonly event: "message"; readonly svids: ReceivedSvid[] }
  | { readonly event: "end"; readonly code: number; readonly details: string };

/** A workload child process holding one FetchX509SVID stream. */
export interface TestWorkload {
  readonly process: ManagedProcess;
  /** The next event, failing after {@link EVENT_TIMEOUT_MS}. */
  next(timeoutMs?: number): Promise<WorkloadEvent>;
  /** The next message, failing when the stream ends first. */
  nextMessage(timeoutMs?: number): Promise<ReceivedSvid[]>;
  stop(): Promise<void>;
}

interface RawSvid {
  spiffeId: string;
  hint: string;
  certsDer: string;
  keyDer: string;
  bundleDer: string;
}

/** Starts the workload fixture as `uid` against `socketPath`. */
export async function startWorkload(socketPath: string, uid: number): Promise<TestWorkload> {
  const proc = await spawnManaged(process.execPath, [WORKLOAD_FIXTURE, `unix://${socketPath}`], {
    name: `workload-${uid}`,
    runAs: String(uid),
  });
  const queue: WorkloadEvent[] = [];
  let wake: (() => void) | undefined;
  const stdout = proc.child.stdout;
  if (stdout === null) throw new Error("workload has no stdout");
  createInterface({ input: stdout }).on("line", (line) => {
    if (!line.startsWith("{")) return;
    const raw = JSON.parse(line) as
      { event: "message"; svids: RawSvid[] } | { event: "end"; code: number; details: string };
    queue.push(
      raw.event === "end"
        ? raw
        : {
            event: "message",
            svids: raw.svids.map((s) => ({
              spiffeId: s.spiffeId,
              hint: s.hint,
              certsDer: Buffer.from(s.certsDer, "base64"),
              keyDer: Buffer.from(s.keyDer, "base64"),
              bundleDer: Buffer.from(s.bundleDer, "base64"),
            })),
          },
    );
    const w = wake;
    wake = undefined;
    w?.();
  });
  const next = async (timeoutMs = EVENT_TIMEOUT_MS): Promise<WorkloadEvent> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = queue.shift();
      if (event !== undefined) return event;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`workload ${uid}: no event within ${timeoutMs} ms\n${proc.output()}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  return {
    process: proc,
    next,
    async nextMessage(timeoutMs) {
      const event = await next(timeoutMs);
      if (event.event !== "message") {
        throw new Error(`workload ${uid}: stream ended (${event.code}: ${event.details})`);
      }
      return event.svids;
    },
    async stop() {
      await proc.stop();
    },
  };
}

/** Runs a workload once: its first event (a message, or the end status of a refused call). */
export async function fetchOnce(socketPath: string, uid: number): Promise<WorkloadEvent> {
  const workload = await startWorkload(socketPath, uid);
  try {
    return await workload.next();
  } finally {
    await workload.stop();
  }
}

/** A workload whose stream is open and has delivered its first message. */
export interface ServedWorkload {
  readonly workload: TestWorkload;
  /** The SVIDs of the first message. */
  readonly svids: ReceivedSvid[];
}

/**
 * Starts the workload fixture as `uid` until its stream delivers a first message: a refused
 * call (entry not synced yet) is retried every 200 ms for up to {@link EVENT_TIMEOUT_MS}.
 * The caller stops the returned workload; throws `not served: …` after the deadline.
 */
export async function startServedWorkload(
  socketPath: string,
  uid: number,
): Promise<ServedWorkload> {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  for (;;) {
    const workload = await startWorkload(socketPath, uid);
    let event: WorkloadEvent;
    try {
      event = await workload.next();
    } catch (err) {
      await workload.stop();
      throw err;
    }
    if (event.event === "message") return { workload, svids: event.svids };
    await workload.stop();
    if (Date.now() > deadline) throw new Error(`not served: ${event.details}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Reads `workload`'s messages until one carries at least `count` SVIDs, and returns those. */
export async function nextMessageWithAtLeast(
  workload: TestWorkload,
  count: number,
): Promise<ReceivedSvid[]> {
  let svids: ReceivedSvid[];
  do {
    svids = await workload.nextMessage();
  } while (svids.length < count);
  return svids;
}

/** Parameters of {@link startAgentSuite}. */
export interface StartAgentSuiteParams {
  /** Start nats-server and hand its URL to the CA and the agent. Default true. */
  readonly nats?: boolean;
  /** Key manager of the CA; `disk` keeps its authorities across `ca.restart()`. Default memory. */
  readonly caKeyManager?: "memory" | "disk";
  /** The agent's full reconcile interval. Default "30s". */
  readonly reconcileInterval?: string;
  readonly logger?: Logger;
}

/** A CA, a NATS server and an agent, wired together. */
export interface AgentSuite {
  readonly ca: MeshidCaProcess;
  readonly nats: NatsServer | undefined;
  readonly dir: TempDir;
  readonly config: AgentConfig;
  readonly socketPath: string;
  agent(): RunningAgent;
  /** Starts the agent (again) with the same config and data dir. */
  startAgent(): Promise<RunningAgent>;
  stopAgent(): Promise<void>;
  stopNats(): Promise<void>;
  /** Creates an entry parented to the agent; resolves with its id. */
  createEntry(params: CreateTestEntryParams): Promise<string>;
  deleteEntry(id: string): Promise<void>;
  stop(): Promise<void>;
}

/** Parameters of {@link AgentSuite.createEntry}. */
export interface CreateTestEntryParams {
  /** Path of the entry's SPIFFE ID, e.g. `/w/one`. */
  readonly path: string;
  /** Selectors as `type:value` strings (`unix:uid:65534`). */
  readonly selectors: readonly string[];
  readonly x509SvidTtlSeconds?: number;
}

/**
 * Starts nats-server (optionally), the built CA and the agent (join-token attestation, socket
 * and data dir in a fresh temp dir reachable by other uids). Stop it with `stop()`.
 */
export async function startAgentSuite(params: StartAgentSuiteParams = {}): Promise<AgentSuite> {
  const logger = params.logger ?? createNoopLogger();
  const dir = await createTempDir("agent-it");
  await chmod(dir.path, 0o755);
  let nats: NatsServer | undefined;
  let ca: MeshidCaProcess | undefined;
  let agent: RunningAgent | undefined;
  try {
    nats = params.nats === false ? undefined : await startNatsServer();
    ca = await startMeshidCa({
      ...(nats === undefined ? {} : { natsUrl: nats.url }),
      ...(params.caKeyManager === undefined ? {} : { keyManager: params.caKeyManager }),
    });
    const joinToken = await ca.createJoinToken();
    const socketDir = join(dir.path, "run");
    await mkdir(socketDir, { mode: 0o755 });
    const config = buildAgentConfig({
      trustDomain: ca.trustDomain,
      caAddress: ca.address,
      caServerId: ca.serverId,
      bundleFile: ca.bundleFile,
      dataDir: join(dir.path, "data"),
      attestation: { type: "join_token", joinToken },
      workloadApi: { socketPath: join(socketDir, "workload.sock") },
      ...(nats === undefined ? {} : { natsUrl: nats.url }),
      reconcileInterval: params.reconcileInterval ?? "30s",
      ops: { listen: "127.0.0.1:0" },
    });
    const caProcess = ca;
    const natsServer = nats;
    const start = async (): Promise<RunningAgent> => {
      agent = await startAgent({ config, logger });
      return agent;
    };
    await start();
    const suite: AgentSuite = {
      ca: caProcess,
      nats: natsServer,
      dir,
      config,
      socketPath: config.workloadApi.socketPath,
      agent: () => {
        if (agent === undefined) throw new Error("agent not running");
        return agent;
      },
      startAgent: start,
      stopAgent: async () => {
        const a = agent;
        agent = undefined;
        await a?.stop();
      },
      stopNats: async () => {
        await natsServer?.stop();
      },
      async createEntry(p) {
        const admin = caProcess.admin();
        const agentId = suite.agent().agentId;
        const parentPath = new URL(agentId).pathname;
        const res = await admin.entries.batchCreateEntry({
          entries: [
            {
              spiffeId: { trustDomain: caProcess.trustDomain, path: p.path },
              parentId: { trustDomain: caProcess.trustDomain, path: parentPath },
              selectors: p.selectors.map((s) => {
                const i = s.indexOf(":");
                return { type: s.slice(0, i), value: s.slice(i + 1) };
              }),
              x509SvidTtlSeconds: p.x509SvidTtlSeconds ?? 0,
            },
          ],
        });
        const result = res.results[0];
        const id = result?.entry?.id;
        if (id === undefined || id === "") {
          throw new Error(`entry not created: ${JSON.stringify(result?.status)}`);
        }
        return id;
      },
      async deleteEntry(id) {
        const res = await caProcess.admin().entries.batchDeleteEntry({ ids: [id] });
        const status = res.results[0]?.status;
        if (status !== undefined && status.code !== 0) {
          throw new Error(`entry not deleted: ${JSON.stringify(status)}`);
        }
      },
      async stop() {
        await suite.stopAgent();
        await caProcess.stop();
        await natsServer?.stop();
        await dir.cleanup();
      },
    };
    return suite;
  } catch (err) {
    await agent?.stop();
    await ca?.stop();
    await nats?.stop();
    await dir.cleanup();
    throw err;
  }
}

/** The certificates of a received SVID, leaf first. */
export function svidChain(svid: ReceivedSvid): Uint8Array[] {
  return splitDerCertificates(svid.certsDer);
}

/** The leaf's serial number (hex, as node:crypto prints it). */
export function leafSerial(svid: ReceivedSvid): string {
  const leaf = svidChain(svid)[0];
  if (leaf === undefined) throw new Error("empty SVID chain");
  return new X509Certificate(leaf).serialNumber;
}

/**
 * Checks `svid` as a relying party would: @meshid/spiffe validateX509Svid against the
 * delivered bundle, then `openssl verify` (leaf, intermediates untrusted, bundle as CA file).
 */
export async function verifyDeliveredSvid(
  svid: ReceivedSvid,
  trustDomain: string,
  workDir: string,
): Promise<string> {
  const chain = svidChain(svid);
  const authorities = splitDerCertificates(svid.bundleDer);
  const validated = await validateX509Svid({
    chain,
    bundle: createBundle({ trustDomain, x509Authorities: authorities }),
    at: new Date(),
  });
  const base = join(workDir, `verify-${Date.now()}-${Math.random().toString(16).slice(2)}`);
  await writeFile(`${base}-leaf.pem`, certificatesToPem(chain.slice(0, 1)));
  await writeFile(`${base}-untrusted.pem`, certificatesToPem(chain.slice(1)));
  await writeFile(`${base}-ca.pem`, certificatesToPem(authorities));
  const args = ["verify", "-CAfile", `${base}-ca.pem`];
  if (chain.length > 1) args.push("-untrusted", `${base}-untrusted.pem`);
  args.push(`${base}-leaf.pem`);
  const result = await runCommand("openssl", args);
  if (result.code !== 0) {
    throw new Error(`openssl verify failed: ${result.stdout}${result.stderr}`);
  }
  return validated.spiffeId.toString();
}
