// The CA end to end: the built CA runs as a child process (memory key manager, SQLite in a temp
// dir, a real nats-server); agent clients attest with join tokens and sign batches of fresh
// CSRs with BatchNewX509SVID over real gRPC mTLS. Compared, in the same run, with the raw crypto
// limit of one core (one ECDSA verify + one ECDSA sign per certificate, as in the pki bench).
// A second phase times SyncAuthorizedEntries for one agent holding 1,000 entries: full syncs
// (since 0), delta syncs with one changed entry as agents ask for them (omit_unchanged_ids: no
// ID list) and the same deltas as old agents ask for them (with every ID), interleaved.
import { randomBytes, randomUUID, sign, verify, type KeyObject } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import {
  createGrpcChannel,
  createGrpcClient,
  createStaticBundleSource,
  createStaticSvidSource,
} from "@meshid/grpc-kit";
import {
  certificatesToPem,
  createCsr,
  createSelfSignedCa,
  createX509SvidIssuer,
  exportPkcs8Pem,
  generateKeyPair,
  parseCsr,
} from "@meshid/pki";
import { meshidCaV1, type meshidTypesV1 } from "@meshid/proto";
import {
  createTempDir,
  getFreePort,
  SERVICE_NODE_FLAGS,
  spawnManaged,
  startNatsServer,
  type ManagedProcess,
} from "@meshid/testkit";
import type { Benchmark, BenchmarkContext } from "../benchmark";
import { splitSignedCsr } from "../split-signed-csr";

/** The built CA entry point (`npm run bench` builds it: @meshid/ca is a dependency). */
export const CA_MAIN = join(__dirname, "..", "..", "..", "..", "services", "ca", "dist", "main.js");
/** Concurrent agent clients, each with its own agent SVID and TLS connection. */
export const CLIENTS = 4;
/** CSRs per BatchNewX509SVID call (and entries per agent). */
export const BATCH_SIZE = 100;
/** Length of the measured signing phase, in milliseconds. */
export const PHASE_MS = 10_000;
/** Warm-up before the measured phase, in milliseconds. */
export const WARMUP_MS = 1_500;
/** Fresh CSRs made before the run; the phase ends early if they run out. */
export const CSR_POOL = 48_000;
/** Length of the raw-limit measurement (half before the phase, half after), in milliseconds. */
export const RAW_MS = 3_000;
/** Entries of the one agent of the sync phase. */
export const SYNC_ENTRIES = 1_000;
/** Timed syncs of each kind (full, delta, delta with ids; interleaved) in the sync phase. */
export const SYNC_ROUNDS = 50;
/** Untimed syncs of each kind before the timed ones. */
export const SYNC_WARMUP_ROUNDS = 5;
/** Most entries one BatchCreateEntry call may carry (the CA's default maxBatchSize). */
const CREATE_BATCH_LIMIT = 500;
/** Set to a directory to run the CA child with `--cpu-prof` writing its profile there. */
export const PROFILE_DIR_ENV = "MESHID_BENCH_CA_PROFILE_DIR";

const TRUST_DOMAIN = "example.org";

type AdminClients = ReturnType<typeof adminClients>;

function adminClients(socketPath: string) {
  const channel = createGrpcChannel({ target: `unix://${socketPath}` });
  return {
    channel,
    entries: createGrpcClient(meshidCaV1.EntryServiceDefinition, channel),
    agents: createGrpcClient(meshidCaV1.AgentServiceDefinition, channel),
    bundle: createGrpcClient(meshidCaV1.BundleServiceDefinition, channel),
  };
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function processCpuSeconds(pid: number, ticksPerSecond = 100): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may contain spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** The p-th percentile (0–100) of `values`, nearest-rank. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

/** A Buffer view of `bytes` (generated messages carry bytes as Buffers). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A raw-limit loop: verify + sign per certificate, on this thread (one core). */
async function makeRawLimit(csrs: readonly Uint8Array[]): Promise<(ms: number) => number> {
  const caKeys = await generateKeyPair("ec-p256");
  const ca = await createSelfSignedCa({
    keyPair: caKeys,
    trustDomain: TRUST_DOMAIN,
    ttlSeconds: 30 * 24 * 3_600,
    now: new Date(),
  });
  const issuer = createX509SvidIssuer({
    issuerCertDer: ca.certDer,
    issuerPrivateKey: caKeys.privateKey,
  });
  const sample = issuer.issueFromCsr(csrs[0]!, {
    spiffeId: `spiffe://${TRUST_DOMAIN}/ns/bench/sa/sample`,
    ttlSeconds: 3_600,
    now: new Date(),
  });
  const raw = csrs
    .slice(0, 512)
    .map((der) => ({ ...splitSignedCsr(der), publicKey: parseCsr(der).publicKey }));
  const tbsSized = Buffer.alloc(sample.certDer.length - 80, 0x5a);
  const key: KeyObject = caKeys.privateKey;
  return (ms) => {
    const start = performance.now();
    const deadline = start + ms;
    let n = 0;
    let now = start;
    while (now < deadline) {
      const r = raw[n % raw.length]!;
      if (!verify("sha256", r.signed, r.publicKey, r.signature)) throw new Error("raw verify");
      sign("sha256", tbsSized, key);
      n++;
      now = performance.now();
    }
    return n / ((now - start) / 1000);
  };
}

async function waitReady(opsUrl: string, ca: ManagedProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (ca.exitStatus() !== undefined) {
      throw new Error(`the CA exited during start-up:\n${ca.output()}`);
    }
    try {
      const res = await fetch(`${opsUrl}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the CA is not ready:\n${ca.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

interface Agent {
  readonly svids: ReturnType<typeof createGrpcClient<typeof meshidCaV1.SvidServiceDefinition>>;
  /** EntryService over the agent's mTLS connection (SyncAuthorizedEntries). */
  readonly entries: ReturnType<typeof createGrpcClient<typeof meshidCaV1.EntryServiceDefinition>>;
  readonly close: () => void;
  readonly entryIds: readonly string[];
  /** The agent's entries as the CA stored them, in creation order. */
  readonly created: readonly meshidTypesV1.RegistrationEntry[];
}

async function attestAgent(params: {
  admin: AdminClients;
  target: string;
  bundlePem: string;
  index: number;
  entriesPerAgent: number;
}): Promise<Agent> {
  const { admin, target, bundlePem } = params;
  const token = `bench-${params.index}-${randomBytes(8).toString("hex")}`;
  await admin.agents.createJoinToken({ ttlSeconds: 600, token });
  const keys = await generateKeyPair("ec-p256");
  const attestChannel = createGrpcChannel({
    target,
    tls: { bundleSource: createStaticBundleSource({ bundlePem }) },
  });
  let svid: meshidTypesV1.X509Svid | undefined;
  try {
    const agentsOverTls = createGrpcClient(meshidCaV1.AgentServiceDefinition, attestChannel);
    const attested = await agentsOverTls.attestAgent({
      attestationType: "join_token",
      token,
      cluster: "",
      csr: asBuffer(await createCsr(keys)),
    });
    svid = attested.svid;
  } finally {
    attestChannel.close();
  }
  if (svid?.spiffeId === undefined) throw new Error("attestation returned no SVID");
  const agentId = svid.spiffeId;

  const entries = Array.from({ length: params.entriesPerAgent }, (_, i) => ({
    spiffeId: { trustDomain: TRUST_DOMAIN, path: `/ns/bench-${params.index}/sa/workload-${i}` },
    parentId: agentId,
    selectors: [{ type: "k8s", value: `pod-uid:${randomUUID()}` }],
    x509SvidTtlSeconds: 3_600,
    dnsNames: [],
    admin: false,
    hint: "",
    id: "",
    revision: 0,
    owner: "bench",
  }));
  const created: meshidTypesV1.RegistrationEntry[] = [];
  for (let i = 0; i < entries.length; i += CREATE_BATCH_LIMIT) {
    const batch = entries.slice(i, i + CREATE_BATCH_LIMIT);
    const response = await admin.entries.batchCreateEntry({ entries: batch });
    for (const r of response.results) {
      if ((r.status?.code ?? 0) !== 0 || r.entry === undefined) {
        throw new Error(`entry creation failed: ${r.status?.message ?? "no entry"}`);
      }
      created.push(r.entry);
    }
  }
  const entryIds = created.map((e) => e.id);

  const channel = createGrpcChannel({
    target,
    tls: {
      source: createStaticSvidSource({
        certChainPem: certificatesToPem(svid.certChain),
        keyPem: exportPkcs8Pem(keys.privateKey),
        bundlePem,
      }),
    },
    channelOptions: {
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      "grpc.max_send_message_length": 64 * 1024 * 1024,
    },
  });
  return {
    svids: createGrpcClient(meshidCaV1.SvidServiceDefinition, channel),
    entries: createGrpcClient(meshidCaV1.EntryServiceDefinition, channel),
    close: () => channel.close(),
    entryIds,
    created,
  };
}

/** What one SyncAuthorizedEntries call returned. */
interface SyncResult {
  readonly entries: number;
  readonly ids: number;
  readonly revision: number;
  readonly idsOmitted: boolean;
  /** Encoded size of the response messages (only when asked for: it costs client CPU). */
  readonly bytes: number;
}

/** The kinds of sync the phase times. */
type SyncKind = "full" | "delta" | "deltaWithIds";

/**
 * Runs one SyncAuthorizedEntries call to its last page; `omitUnchangedIds` as agents set it on
 * deltas. With `measureBytes` it also re-encodes each page to count the response bytes.
 */
async function syncOnce(
  agent: Agent,
  sinceRevision: number,
  omitUnchangedIds: boolean,
  measureBytes = false,
): Promise<SyncResult> {
  let entries = 0;
  let ids = 0;
  let bytes = 0;
  for await (const page of agent.entries.syncAuthorizedEntries({
    sinceRevision,
    omitUnchangedIds,
  })) {
    entries += page.entries.length;
    ids += page.authorizedEntryIds.length;
    if (measureBytes) {
      bytes += meshidCaV1.SyncAuthorizedEntriesResponse.encode(page).finish().length;
    }
    if (page.done) {
      return {
        entries,
        ids,
        revision: page.revision,
        idsOmitted: page.authorizedIdsOmitted,
        bytes,
      };
    }
  }
  throw new Error("the sync stream ended before its last page");
}

/** Result of {@link runSyncPhase}. */
interface SyncPhaseResult {
  readonly ms: Record<SyncKind, number[]>;
  /** CA CPU (utime+stime) spent during all timed syncs of each kind, in seconds. */
  readonly caCpuSeconds: Record<SyncKind, number>;
  /** Encoded response bytes of one sync of each kind. */
  readonly bytes: Record<SyncKind, number>;
}

/**
 * The sync phase: `agent` holds `entryCount` entries; one of them is changed once, then
 * `rounds` full syncs (since 0), `rounds` delta syncs as agents make them (since the revision
 * before the change, omit_unchanged_ids set: exactly that entry and no id) and `rounds` of the
 * same deltas as old agents make them (flag unset: that entry and every id) run interleaved,
 * rotating which goes first, after {@link SYNC_WARMUP_ROUNDS} untimed rounds. Checks every
 * answer; measures the response bytes of each kind once, untimed.
 */
async function runSyncPhase(params: {
  readonly admin: AdminClients;
  readonly agent: Agent;
  readonly caPid: number;
  readonly rounds: number;
}): Promise<SyncPhaseResult> {
  const { admin, agent } = params;
  const entryCount = agent.created.length;
  const before = await syncOnce(agent, 0, false);
  if (before.entries !== entryCount || before.ids !== entryCount) {
    throw new Error(`full sync returned ${before.entries} entries, ${before.ids} ids`);
  }
  const target = agent.created[0]!;
  const updated = await admin.entries.batchUpdateEntry({
    entries: [{ ...target, hint: "bench-changed" }],
  });
  if ((updated.results[0]?.status?.code ?? 0) !== 0) {
    throw new Error(`entry update failed: ${updated.results[0]?.status?.message ?? ""}`);
  }
  const since = before.revision;
  const call = (kind: SyncKind, measureBytes = false): Promise<SyncResult> =>
    syncOnce(agent, kind === "full" ? 0 : since, kind === "delta", measureBytes);
  const check = (kind: SyncKind, r: SyncResult): void => {
    const wantEntries = kind === "full" ? entryCount : 1;
    const wantIds = kind === "delta" ? 0 : entryCount;
    if (
      r.entries !== wantEntries ||
      r.ids !== wantIds ||
      r.idsOmitted !== (kind === "delta") ||
      r.revision <= since
    ) {
      throw new Error(
        `${kind} sync returned ${r.entries} entries, ${r.ids} ids, omitted ${String(r.idsOmitted)}, rev ${r.revision}`,
      );
    }
  };
  const kinds: SyncKind[] = ["full", "delta", "deltaWithIds"];
  const ms: Record<SyncKind, number[]> = { full: [], delta: [], deltaWithIds: [] };
  const caCpuSeconds: Record<SyncKind, number> = { full: 0, delta: 0, deltaWithIds: 0 };
  const bytes: Record<SyncKind, number> = { full: 0, delta: 0, deltaWithIds: 0 };
  for (const kind of kinds) {
    const r = await call(kind, true);
    check(kind, r);
    bytes[kind] = r.bytes;
  }
  const timed = async (kind: SyncKind, record: boolean): Promise<void> => {
    const cpu0 = processCpuSeconds(params.caPid);
    const t0 = performance.now();
    const r = await call(kind);
    const elapsed = performance.now() - t0;
    const cpu = processCpuSeconds(params.caPid) - cpu0;
    check(kind, r);
    if (!record) return;
    ms[kind].push(elapsed);
    caCpuSeconds[kind] += cpu;
  };
  for (let i = 0; i < SYNC_WARMUP_ROUNDS + params.rounds; i++) {
    const record = i >= SYNC_WARMUP_ROUNDS;
    const order = [...kinds.slice(i % 3), ...kinds.slice(0, i % 3)];
    for (const kind of order) await timed(kind, record);
  }
  return { ms, caCpuSeconds, bytes };
}

/** Makes `count` fresh ec-p256 CSRs (a new key each, as agents do). */
async function makeCsrs(count: number, ctx: BenchmarkContext): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const started = performance.now();
  while (out.length < count) {
    const n = Math.min(1_000, count - out.length);
    const keys = await Promise.all(Array.from({ length: n }, () => generateKeyPair("ec-p256")));
    for (const k of keys) out.push(asBuffer(await createCsr(k)));
    if (out.length % 10_000 === 0) ctx.progress(`${out.length} CSRs made`);
  }
  ctx.progress(`${count} CSRs in ${Math.round(performance.now() - started)} ms`);
  return out;
}

interface LoadResult {
  svids: number;
  failedItems: number;
  batches: number;
  latenciesMs: number[];
  elapsedMs: number;
  firstError?: string;
}

/** Runs every agent's batch loop until `ms` passed or the CSR pool is used up. */
async function runLoad(
  agents: readonly Agent[],
  csrs: readonly Buffer[],
  from: number,
  ms: number,
  batchSize: number,
): Promise<{ result: LoadResult; next: number }> {
  let next = from;
  const result: LoadResult = {
    svids: 0,
    failedItems: 0,
    batches: 0,
    latenciesMs: [],
    elapsedMs: 0,
  };
  const start = performance.now();
  const deadline = start + ms;
  await Promise.all(
    agents.map(async (agent) => {
      while (performance.now() < deadline && next + batchSize <= csrs.length) {
        const params = agent.entryIds
          .slice(0, batchSize)
          .map((entryId, i) => ({ entryId, csr: csrs[next + i]! }));
        next += batchSize;
        const t0 = performance.now();
        const response = await agent.svids.batchNewX509SVID({ params });
        result.latenciesMs.push(performance.now() - t0);
        result.batches++;
        for (const r of response.results) {
          if ((r.status?.code ?? 0) === 0 && r.svid !== undefined) result.svids++;
          else {
            result.failedItems++;
            result.firstError ??= `${r.status?.errorCode ?? ""} ${r.status?.message ?? ""}`;
          }
        }
      }
    }),
  );
  result.elapsedMs = performance.now() - start;
  return { result, next };
}

/** The ca benchmark: SVIDs per second through the real CA process vs the raw crypto limit. */
export const benchmark: Benchmark = {
  name: "ca",
  async run(ctx) {
    if (!existsSync(CA_MAIN)) {
      throw new Error(`${CA_MAIN} is missing: build it (npx turbo run build --filter=@meshid/ca)`);
    }
    const clients = CLIENTS;
    const batchSize = ctx.quick ? 10 : BATCH_SIZE;
    const phaseMs = ctx.quick ? 300 : PHASE_MS;
    const warmupMs = ctx.quick ? 100 : WARMUP_MS;
    const rawMs = ctx.quick ? 100 : RAW_MS;
    const csrCount = ctx.quick ? clients * batchSize * 8 : CSR_POOL;

    const dir = await createTempDir("bench-ca");
    const nats = await startNatsServer();
    let ca: ManagedProcess | undefined;
    const agents: Agent[] = [];
    let admin: AdminClients | undefined;
    try {
      const csrs = await makeCsrs(csrCount, ctx);
      const rawLimit = await makeRawLimit(csrs);

      const [port, opsPort] = [await getFreePort(), await getFreePort()];
      const adminSocketPath = join(dir.path, "admin", "admin.sock");
      const configFile = join(dir.path, "ca.yaml");
      // YAML is a superset of JSON.
      const config = {
        trustDomain: TRUST_DOMAIN,
        listen: `127.0.0.1:${port}`,
        ops: { listen: `127.0.0.1:${opsPort}` },
        dataDir: join(dir.path, "data"),
        adminSocketPath,
        keyManager: "memory",
        natsUrl: nats.url,
        logLevel: "warn",
        limits: { signRatePerAgent: { perSecond: 1_000_000, burst: 1_000_000 } },
      };
      await writeFile(configFile, JSON.stringify(config, null, 2));
      const profileDir = process.env[PROFILE_DIR_ENV];
      const nodeArgs =
        profileDir === undefined || profileDir === ""
          ? []
          : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (!k.startsWith("MESHID_CA_") && !k.startsWith("OTEL_")) env[k] = v;
      }
      ctx.progress(`starting the CA (${CA_MAIN})`);
      ca = await spawnManaged(
        process.execPath,
        [...SERVICE_NODE_FLAGS, ...nodeArgs, CA_MAIN, "--config", configFile],
        {
          name: "meshid-ca",
          env,
          // The CA writes its profile on a graceful exit.
          orphanSignal: "SIGTERM",
        },
      );
      await waitReady(`http://127.0.0.1:${opsPort}`, ca, 30_000);

      admin = adminClients(adminSocketPath);
      const bundlePem = (await admin.bundle.getBundle({})).pem;
      const target = `localhost:${port}`;
      for (let i = 0; i < clients; i++) {
        agents.push(
          await attestAgent({ admin, target, bundlePem, index: i, entriesPerAgent: batchSize }),
        );
      }
      ctx.progress(`${clients} agents attested, ${batchSize} entries each`);

      const rawBefore = rawLimit(rawMs / 2);
      ctx.progress(`warm-up ${warmupMs} ms`);
      const warm = await runLoad(agents, csrs, 0, warmupMs, batchSize);
      if (warm.result.failedItems > 0) {
        throw new Error(`signing failed during warm-up: ${warm.result.firstError ?? ""}`);
      }
      ctx.progress(`${clients} clients × batches of ${batchSize} for ${phaseMs} ms`);
      const cpuBefore = processCpuSeconds(ca.pid);
      const clientCpuBefore = process.cpuUsage();
      const { result } = await runLoad(agents, csrs, warm.next, phaseMs, batchSize);
      const cpuSeconds = processCpuSeconds(ca.pid) - cpuBefore;
      const clientCpu = process.cpuUsage(clientCpuBefore);
      const loadAverage1m = loadavg()[0] ?? 0;
      const rawAfter = rawLimit(rawMs / 2);
      if (result.svids === 0) throw new Error(`no SVIDs signed: ${result.firstError ?? ""}`);

      const syncEntries = ctx.quick ? 20 : SYNC_ENTRIES;
      const syncRounds = ctx.quick ? 3 : SYNC_ROUNDS;
      const syncAgent = await attestAgent({
        admin,
        target,
        bundlePem,
        index: clients,
        entriesPerAgent: syncEntries,
      });
      agents.push(syncAgent);
      ctx.progress(
        `sync phase: ${syncEntries} entries, ${syncRounds} full + ${syncRounds} delta + ${syncRounds} delta with ids`,
      );
      const sync = await runSyncPhase({
        admin,
        agent: syncAgent,
        caPid: ca.pid,
        rounds: syncRounds,
      });
      const syncLoadAverage1m = loadavg()[0] ?? 0;

      const seconds = result.elapsedMs / 1000;
      const svidsPerSecond = result.svids / seconds;
      const rawLimitPerSecond = (rawBefore + rawAfter) / 2;
      const round = (n: number, digits = 0): number => {
        const f = 10 ** digits;
        return Math.round(n * f) / f;
      };
      return {
        clients,
        batchSize,
        seconds: round(seconds, 2),
        svids: result.svids,
        batches: result.batches,
        failedItems: result.failedItems,
        svidsPerSecond: round(svidsPerSecond),
        batchP50Ms: round(percentile(result.latenciesMs, 50), 1),
        batchP99Ms: round(percentile(result.latenciesMs, 99), 1),
        caCpuSecondsPer1000Svids: round((cpuSeconds / result.svids) * 1000, 3),
        caCpuCores: round(cpuSeconds / seconds, 2),
        clientCpuCores: round((clientCpu.user + clientCpu.system) / 1e6 / seconds, 2),
        loadAverage1m: round(loadAverage1m, 2),
        rawLimitPerSecond: round(rawLimitPerSecond),
        caRawLimitRatio: round(svidsPerSecond / rawLimitPerSecond, 3),
        csrPoolExhausted: result.elapsedMs < phaseMs * 0.95,
        syncEntries,
        syncRounds,
        syncFullP50Ms: round(percentile(sync.ms.full, 50), 2),
        syncFullP99Ms: round(percentile(sync.ms.full, 99), 2),
        syncDeltaP50Ms: round(percentile(sync.ms.delta, 50), 2),
        syncDeltaP99Ms: round(percentile(sync.ms.delta, 99), 2),
        syncDeltaWithIdsP50Ms: round(percentile(sync.ms.deltaWithIds, 50), 2),
        syncDeltaWithIdsP99Ms: round(percentile(sync.ms.deltaWithIds, 99), 2),
        syncDeltaVsFullRatio: round(
          percentile(sync.ms.delta, 50) / Math.max(percentile(sync.ms.full, 50), 1e-9),
          3,
        ),
        syncDeltaVsWithIdsRatio: round(
          percentile(sync.ms.delta, 50) / Math.max(percentile(sync.ms.deltaWithIds, 50), 1e-9),
          3,
        ),
        syncFullCaCpuMs: round((sync.caCpuSeconds.full / syncRounds) * 1000, 2),
        syncDeltaCaCpuMs: round((sync.caCpuSeconds.delta / syncRounds) * 1000, 2),
        syncDeltaWithIdsCaCpuMs: round((sync.caCpuSeconds.deltaWithIds / syncRounds) * 1000, 2),
        syncFullBytes: sync.bytes.full,
        syncDeltaBytes: sync.bytes.delta,
        syncDeltaWithIdsBytes: sync.bytes.deltaWithIds,
        syncLoadAverage1m: round(syncLoadAverage1m, 2),
      };
    } finally {
      for (const agent of agents) agent.close();
      admin?.channel.close();
      if (ca !== undefined) {
        const exit = await ca.stop();
        if (exit.code !== 0) ctx.progress(`the CA exited with ${JSON.stringify(exit)}`);
      }
      await nats.stop();
      await dir.cleanup();
    }
  },
};
