// The agent assembly: identity → CA client → bundle → SVID cache → entry sync → attestors →
// Workload API server, and the graceful stop in reverse order.
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { createEventPublisher, type EventPublisher } from "@meshid/events";
import { createMutableSvidSource, type MutableSvidSource } from "@meshid/grpc-kit";
import { isMeshidError } from "@meshid/errors";
import type { MemoryReleaser } from "@meshid/memory";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { createDiskAgentIdentityStore } from "./adapters/agent-identity-store";
import { readBundleFile } from "./adapters/bundle-file";
import {
  createGrpcAgentAttestationClient,
  createGrpcCaClient,
  type GrpcCaClient,
} from "./adapters/grpc-ca-client";
import { createK8sAttestor } from "./adapters/k8s-attestor";
import { startMemoryRelease } from "./adapters/memory-release";
import { createKubeletClient } from "./adapters/kubelet-client";
import { startNatsWakeups, type NatsWakeups } from "./adapters/nats-wakeups";
import { createNodeAttestationTokenSource } from "./adapters/node-attestation-token";
import { createUnixAttestor } from "./adapters/unix-attestor";
import { startWorkloadApiServer, type WorkloadApiServer } from "./adapters/workload-api-server";
import { createWorkloadAttestation } from "./adapters/workload-attestation";
import type { AgentConfig } from "./config";
import {
  createAgentIdentity,
  type AgentIdentity,
  type AgentIdentityStatus,
} from "./domain/agent-identity";
import { createEntrySync, type EntrySyncStats } from "./domain/entry-sync";
import { createSvidCache, type SvidCacheStats } from "./domain/svid-cache";
import type { AgentBundle } from "./domain/types";
import type { Clock, EventSink, WorkloadAttestor } from "./ports";

/** The CA's error code for calls of a banned agent. */
export const CA_AGENT_BANNED_CODE = "ca.agent.banned";

/** How long start-up waits for the first entry sync before serving anyway (10 s). */
export const FIRST_SYNC_WAIT_MS = 10_000;
/** First delay before re-opening a broken WatchBundle stream (500 ms); doubles up to 30 s. */
export const BUNDLE_WATCH_RETRY_INITIAL_MS = 500;
const BUNDLE_WATCH_RETRY_MAX_MS = 30_000;

/** Parameters of {@link startAgent}. */
export interface StartAgentParams {
  readonly config: AgentConfig;
  readonly logger: Logger;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** Aborting it interrupts start-up (the agent is then stopped and start rejects). */
  readonly signal?: AbortSignal;
}

/** What the agent reports about itself (health, tests). */
export interface AgentStatus {
  readonly agentId: string;
  readonly identity: AgentIdentityStatus;
  readonly sync: EntrySyncStats;
  readonly cache: SvidCacheStats;
  /** True while connected to NATS (false without `natsUrl`). */
  readonly natsConnected: boolean;
  /** The trust bundle's sequence number in use. */
  readonly bundleSequenceNumber: number;
}

/** A running agent, from {@link startAgent}. */
export interface RunningAgent {
  /** Path of the Workload API Unix socket. */
  readonly workloadSocketPath: string;
  /** This agent's SPIFFE ID. */
  readonly agentId: string;
  /** True once it serves, holds a usable SVID and has synced its entries at least once. */
  ready(): boolean;
  status(): AgentStatus;
  /**
   * Resolves once the agent has stopped: after {@link RunningAgent.stop}, or by itself when the
   * CA banned it (then with `"banned"`).
   */
  done(): Promise<"stopped" | "banned">;
  /** Stops everything in reverse start order. Safe to call twice; never rejects. */
  stop(): Promise<void>;
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("aborted");
}

/** The system clock (`setTimeout` sleeps that reject with the signal's reason on abort). */
export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(abortReason(signal));
      };
      const timer = setTimeout(
        () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        Math.max(0, ms),
      );
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

async function attestorsOf(config: AgentConfig): Promise<WorkloadAttestor[]> {
  const attestors: WorkloadAttestor[] = [];
  const unix = config.attestors.unix;
  if (unix.enabled) {
    attestors.push(
      createUnixAttestor({
        procRoot: config.procRoot,
        path: unix.path,
        sha256: { enabled: unix.sha256 },
      }),
    );
  }
  const k8s = config.attestors.k8s;
  if (k8s.enabled) {
    const tokenFile = k8s.kubeletTokenFile;
    const caFile = k8s.kubeletCaFile;
    const kubelet = createKubeletClient({
      url: k8s.kubeletUrl,
      ...(tokenFile === undefined
        ? {}
        : { token: async () => (await readFile(tokenFile, "utf8")).trim() }),
      insecureSkipVerify: k8s.insecureSkipVerify,
      ...(caFile === undefined ? {} : { caPem: await readFile(caFile, "utf8") }),
    });
    attestors.push(
      createK8sAttestor({ procRoot: config.procRoot, kubelet, nodeName: k8s.nodeName ?? "" }),
    );
  }
  return attestors;
}

/** Publishes svid.rotated over the wake-up connection while there is one; drops otherwise. */
function createNatsEventSink(wakeups: NatsWakeups | undefined, logger: Logger): EventSink {
  let publisher: EventPublisher | undefined;
  let publisherConn: unknown;
  return {
    publish(type, payload, options) {
      const nc = wakeups?.connection();
      if (nc === undefined || nc.isClosed()) return Promise.resolve(undefined);
      if (publisher === undefined || publisherConn !== nc) {
        publisher = createEventPublisher({ nc, source: `meshid/agent/${hostname()}`, logger });
        publisherConn = nc;
      }
      return publisher.publish(type, payload, options);
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Starts the agent: its identity (the persisted SVID, or node attestation with the join token
 * or PSAT), the CA client over mTLS with that SVID, the bundle (the bundle file first, then the
 * CA's WatchBundle stream feeding the cache and the identity), the SVID cache, the entry sync
 * (NATS wake-ups when `natsUrl` is set, plus the full reconcile every interval), the workload
 * attestors (unix; k8s when enabled) and the Workload API server on its Unix socket. Resolves
 * once the Workload API serves (after the first entry sync, or {@link FIRST_SYNC_WAIT_MS}).
 *
 * @throws the identity's MeshidError when the agent cannot get an SVID (e.g. `ca.agent.banned`,
 *   an unreadable bundle file, a used join token without a persisted SVID), or the Workload API
 *   server's when its socket cannot be served; everything started is stopped first.
 */
export async function startAgent(params: StartAgentParams): Promise<RunningAgent> {
  const { config } = params;
  const clock = params.clock ?? systemClock;
  const logger = params.logger;
  const stopping = new AbortController();
  const signal = stopping.signal;
  const onOuterAbort = (): void => stopping.abort(params.signal?.reason);
  params.signal?.addEventListener("abort", onOuterAbort, { once: true });

  const loops: Promise<void>[] = [];
  let caClient: GrpcCaClient | undefined;
  let wakeups: NatsWakeups | undefined;
  let server: WorkloadApiServer | undefined;
  let identity: AgentIdentity<MutableSvidSource> | undefined;
  let bundleSequence = 0;
  let firstSyncDone = false;
  let stopped: Promise<void> | undefined;
  let banned = false;
  let memoryRelease: MemoryReleaser | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      params.signal?.removeEventListener("abort", onOuterAbort);
      // Workloads first: no new streams while the rest winds down.
      await server?.close().catch((err: unknown) => {
        logger.warn({ [LogKeys.err]: err }, "closing the Workload API failed");
      });
      stopping.abort(new Error("agent stopping"));
      await Promise.allSettled(loops);
      memoryRelease?.close();
      await wakeups?.close().catch(() => undefined);
      caClient?.close();
      logger.info("agent stopped");
    })();
    return stopped;
  };

  try {
    const store = createDiskAgentIdentityStore({ dataDir: config.dataDir, logger });
    identity = createAgentIdentity({
      trustDomain: config.trustDomain,
      readBootstrapBundle: () =>
        readBundleFile({ path: config.bundleFile, trustDomain: config.trustDomain }),
      tokenSource: createNodeAttestationTokenSource(config.attestation),
      client: createGrpcAgentAttestationClient({
        address: config.caAddress,
        serverId: config.caServerId,
        logger,
      }),
      store,
      clock,
      logger,
      createSvidSource: (material) => createMutableSvidSource(material),
      keyType: config.svidKeyType,
    });
    const agentIdentity = identity;
    await agentIdentity.start(signal);
    const agentId = agentIdentity.current().spiffeId;
    const agentLogger = logger.child({ agentId });
    agentLogger.info("agent identity ready");
    caClient = createGrpcCaClient({
      address: config.caAddress,
      serverId: config.caServerId,
      svidSource: agentIdentity.svidSource(),
      logger: agentLogger,
    });
    const client = caClient;
    // A banned agent must not keep handing out SVIDs: stop, and say so.
    const stopBanned = (how: string): void => {
      if (banned || signal.aborted) return;
      banned = true;
      agentLogger.error({ code: CA_AGENT_BANNED_CODE, how }, "the CA banned this agent: stopping");
      void stop();
    };
    loops.push(
      agentIdentity.run(signal).then(() => {
        if (agentIdentity.status().state === "banned") stopBanned("renewal refused");
      }),
    );

    if (config.natsUrl !== undefined) {
      wakeups = startNatsWakeups({ natsUrl: config.natsUrl, agentId, logger: agentLogger });
    }
    memoryRelease = startMemoryRelease({ ...config.memoryRelease, logger: agentLogger });
    const releaser = memoryRelease;
    const svidCache = createSvidCache({
      caClient: client,
      clock,
      events: createNatsEventSink(wakeups, agentLogger),
      logger: agentLogger,
      agentId,
      keyType: config.svidKeyType,
      maxBatchSize: config.maxBatchSize,
      ...(releaser === undefined ? {} : { onMinted: (n: number) => releaser.noteWork(n) }),
    });
    const applyBundle = async (bundle: AgentBundle): Promise<void> => {
      bundleSequence = bundle.sequenceNumber;
      svidCache.applyBundle(bundle);
      await agentIdentity.applyBundle(bundle);
    };
    await applyBundle(agentIdentity.bundle());
    loops.push(svidCache.run(signal));

    const sync = createEntrySync({
      caClient: {
        // The CA refuses every call of a banned agent; the sync is the first to notice.
        async *syncAuthorizedEntries(sinceRevision, s, options) {
          try {
            yield* client.syncAuthorizedEntries(sinceRevision, s, options);
          } catch (err) {
            if (isMeshidError(err, CA_AGENT_BANNED_CODE)) stopBanned("entry sync refused");
            throw err;
          }
        },
      },
      wakeups: wakeups ?? neverWakeups(signal),
      onEntries: (entries) => svidCache.applyEntries(entries),
      clock,
      logger: agentLogger,
      reconcileIntervalMs: config.reconcileIntervalSeconds * 1000,
    });
    loops.push(sync.run(signal));
    loops.push(
      watchBundle({
        watch: (s) => client.watchBundle(s),
        apply: applyBundle,
        // A re-opened stream means the CA connection was lost: changes may have been missed.
        onReconnect: () => {
          sync.requestFullSync().catch(() => undefined);
        },
        clock,
        logger: agentLogger,
        signal,
      }),
    );

    const firstWait = new AbortController();
    const endFirstWait = (): void => firstWait.abort();
    signal.addEventListener("abort", endFirstWait, { once: true });
    const first = await Promise.race([
      sync.syncNow().then(
        () => "synced" as const,
        (err: unknown) => err,
      ),
      clock.sleep(FIRST_SYNC_WAIT_MS, firstWait.signal).then(
        () => "timeout" as const,
        () => "stopped" as const,
      ),
    ]);
    firstWait.abort();
    signal.removeEventListener("abort", endFirstWait);
    if (signal.aborted) throw signal.reason;
    if (first === "synced") {
      firstSyncDone = true;
    } else {
      agentLogger.warn({ result: errorText(first) }, "serving before the first entry sync");
      void sync.syncNow().then(
        () => {
          firstSyncDone = true;
        },
        () => undefined,
      );
    }

    const attestation = createWorkloadAttestation({
      attestors: await attestorsOf(config),
      procRoot: config.procRoot,
      logger: agentLogger,
    });
    server = await startWorkloadApiServer({
      socketPath: config.workloadApi.socketPath,
      attestation,
      identities: svidCache,
      logger: agentLogger,
      mintWaitMs: config.workloadApi.mintWaitMs,
    });
    agentLogger.info({ workloadSocketPath: config.workloadApi.socketPath }, "Workload API serving");

    return {
      workloadSocketPath: config.workloadApi.socketPath,
      agentId,
      ready: () =>
        !signal.aborted &&
        server !== undefined &&
        firstSyncDone &&
        agentIdentity.status().state === "ready",
      status: () => ({
        agentId,
        identity: agentIdentity.status(),
        sync: sync.stats(),
        cache: svidCache.stats(),
        natsConnected: wakeups?.connected() ?? false,
        bundleSequenceNumber: bundleSequence,
      }),
      done: async () => {
        await new Promise<void>((resolve) => {
          if (signal.aborted) resolve();
          else signal.addEventListener("abort", () => resolve(), { once: true });
        });
        await stop();
        return banned ? "banned" : "stopped";
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Wake-ups of an agent without NATS: none, ending when `signal` aborts. */
function neverWakeups(signal: AbortSignal): AsyncIterable<number> {
  const ended = new Promise<IteratorResult<number>>((resolve) => {
    const end = (): void => resolve({ done: true, value: undefined });
    if (signal.aborted) end();
    else signal.addEventListener("abort", end, { once: true });
  });
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => ended,
      return: () => Promise.resolve({ done: true, value: undefined }),
    }),
  };
}

interface WatchBundleParams {
  readonly watch: (signal: AbortSignal) => AsyncIterable<AgentBundle>;
  readonly apply: (bundle: AgentBundle) => Promise<void>;
  readonly onReconnect: () => void;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

/** Follows the CA's WatchBundle stream, re-opening it with backoff until `signal` aborts. */
async function watchBundle(params: WatchBundleParams): Promise<void> {
  const { signal, logger } = params;
  let delayMs = BUNDLE_WATCH_RETRY_INITIAL_MS;
  let opened = 0;
  while (!signal.aborted) {
    try {
      let first = true;
      for await (const bundle of params.watch(signal)) {
        if (first) {
          first = false;
          opened++;
          delayMs = BUNDLE_WATCH_RETRY_INITIAL_MS;
          if (opened > 1) params.onReconnect();
        }
        await params.apply(bundle);
      }
      if (signal.aborted) return;
      logger.warn("the CA ended the WatchBundle stream; re-opening");
    } catch (err) {
      if (signal.aborted) return;
      logger.warn({ [LogKeys.err]: errorText(err), retryMs: delayMs }, "WatchBundle failed");
    }
    try {
      await params.clock.sleep(delayMs, signal);
    } catch {
      return;
    }
    delayMs = Math.min(delayMs * 2, BUNDLE_WATCH_RETRY_MAX_MS);
  }
}
