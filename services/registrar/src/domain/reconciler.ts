// The reconcile loop of the leader: keeps the registrar's entries at the CA equal to the
// entries its pods should have. A full reconcile (start of a term, ClusterSPIFFEID changes,
// every resync interval, after any doubt) lists the owned entries and diffs everything; a pod
// event reconciles just that pod against the cached entries, at once. Writes are batched.
import { createHash } from "node:crypto";
import { isMeshidError } from "@meshid/errors";
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import type {
  ClusterView,
  Clock,
  EntryClient,
  EntryWrite,
  PodRef,
  RegistrationEvents,
  TemplateProblemReporter,
} from "../ports";
import { diffEntries, entryKey, type EntryDiff } from "./entry-diff";
import {
  isMeshedPod,
  renderPodEntries,
  templatesToApply,
  type PodSelection,
} from "./desired-entries";
import type { CurrentEntry, DesiredEntry } from "./types";

/** Owner tag of every entry the registrar writes (ListEntries `by_owner`). */
export const REGISTRAR_OWNER = "registrar";
/** First delay after a failed reconcile (500 ms); doubles up to {@link RETRY_MAX_MS}. */
export const RETRY_INITIAL_MS = 500;
/** Longest delay between attempts while the CA is unreachable (30 s). */
export const RETRY_MAX_MS = 30_000;

/** Metric names. */
export const RegistrarMetrics = {
  entriesCreated: "meshid_registrar_entries_created_total",
  entriesUpdated: "meshid_registrar_entries_updated_total",
  entriesDeleted: "meshid_registrar_entries_deleted_total",
  entryWriteFailures: "meshid_registrar_entry_write_failures_total",
  renderFailures: "meshid_registrar_template_render_failures_total",
  reconcileDuration: "meshid_registrar_reconcile_duration_seconds",
  reconcileFailures: "meshid_registrar_reconcile_failures_total",
  leader: "meshid_registrar_leader",
} as const;

/** google.rpc.Code values the reconciler reacts to. */
const CODE_NOT_FOUND = 5;
const CODE_ALREADY_EXISTS = 6;

/** Dependencies of {@link createReconciler}. */
export interface ReconcilerDeps {
  readonly cluster: ClusterView;
  readonly entries: EntryClient;
  readonly events: RegistrationEvents;
  readonly problems: TemplateProblemReporter;
  readonly selection: PodSelection;
  readonly trustDomain: string;
  readonly clusterName: string;
  /** Most entries per batch call (the CA's maxBatchSize). */
  readonly batchSize: number;
  /** Interval of the full reconcile, in ms. */
  readonly resyncIntervalMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default {@link RETRY_INITIAL_MS}. */
  readonly retryInitialMs?: number;
  /** Default {@link RETRY_MAX_MS}. */
  readonly retryMaxMs?: number;
}

/** Counters of a reconciler (for health, status and tests). */
export interface ReconcilerStats {
  readonly fullReconciles: number;
  readonly podReconciles: number;
  readonly failures: number;
  readonly created: number;
  readonly updated: number;
  readonly deleted: number;
  /** False after a failed CA call until the next success. */
  readonly caReachable: boolean;
  /** Entries owned by the registrar as last known. */
  readonly ownedEntries: number;
}

/** The leader's reconcile loop. */
export interface Reconciler {
  /**
   * Reconciles until `signal` aborts (one leadership term): a full reconcile first, then pod
   * changes as they come and a full one every resync interval; failed rounds are retried with
   * capped exponential backoff. Never rejects.
   */
  run(signal: AbortSignal): Promise<void>;
  /** A pod was added, changed or deleted (`ref` of a deleted pod names it in events). */
  podChanged(uid: string, ref?: PodRef): void;
  /** Everything may have changed (templates, nodes, Services, a re-list). */
  requestFull(): void;
  stats(): ReconcilerStats;
}

/**
 * The id the registrar gives the entry `key` at the CA: a UUID derived from the key, so a
 * create repeated after a crash or by a new leader hits the existing entry (ALREADY_EXISTS)
 * instead of making a duplicate.
 */
export function entryIdFor(spiffeId: string, podUid: string): string {
  const h = createHash("sha256")
    .update(`${REGISTRAR_OWNER}|${entryKey(spiffeId, podUid)}`)
    .digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50; // version 5 layout (name-based, SHA digest)
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Creates the reconcile loop (see {@link Reconciler}). */
export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const { cluster, entries: client, events, problems, logger, clock } = deps;
  const retryInitialMs = deps.retryInitialMs ?? RETRY_INITIAL_MS;
  const retryMaxMs = deps.retryMaxMs ?? RETRY_MAX_MS;
  // Lowered for good when the CA refuses a batch as too large.
  let currentBatchSize = Math.max(1, deps.batchSize);

  const meter = getMeter("@meshid/registrar");
  const createdCounter = meter.createCounter(RegistrarMetrics.entriesCreated, {
    description: "Entries the registrar created at the CA",
  });
  const updatedCounter = meter.createCounter(RegistrarMetrics.entriesUpdated, {
    description: "Entries the registrar updated at the CA",
  });
  const deletedCounter = meter.createCounter(RegistrarMetrics.entriesDeleted, {
    description: "Entries the registrar deleted at the CA",
  });
  const writeFailures = meter.createCounter(RegistrarMetrics.entryWriteFailures, {
    description: "Batch items the CA refused",
  });
  const renderFailures = meter.createCounter(RegistrarMetrics.renderFailures, {
    description: "Templates that failed to render for a pod",
  });
  const reconcileFailures = meter.createCounter(RegistrarMetrics.reconcileFailures, {
    description: "Reconcile rounds that failed (CA unreachable, …)",
  });
  const duration = meter.createHistogram(RegistrarMetrics.reconcileDuration, {
    description: "Duration of reconcile rounds",
    unit: "s",
  });

  // The owned entries at the CA as last listed and written since (valid only while `cacheOk`).
  const cache = new Map<string, CurrentEntry>();
  const byPod = new Map<string, Set<string>>();
  let cacheOk = false;
  const dirty = new Set<string>();
  const tombstones = new Map<string, PodRef>();
  let fullRequested = true;
  let wake: (() => void) | undefined;
  const stats = {
    fullReconciles: 0,
    podReconciles: 0,
    failures: 0,
    created: 0,
    updated: 0,
    deleted: 0,
    caReachable: true,
  };

  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const remember = (entry: CurrentEntry): void => {
    forget(entry.id);
    cache.set(entry.id, entry);
    const pod = entry.podUid ?? "";
    let ids = byPod.get(pod);
    if (ids === undefined) byPod.set(pod, (ids = new Set()));
    ids.add(entry.id);
  };
  const forget = (id: string): void => {
    const old = cache.get(id);
    if (old === undefined) return;
    cache.delete(id);
    const ids = byPod.get(old.podUid ?? "");
    ids?.delete(id);
    if (ids?.size === 0) byPod.delete(old.podUid ?? "");
  };

  /** The entries a pod should have (none for pods that are gone or not meshed). */
  const desiredForPod = (
    uid: string,
    templates: ReturnType<typeof currentTemplates>,
  ): DesiredEntry[] => {
    const pod = cluster.pod(uid);
    if (pod === undefined || pod.terminated || !isMeshedPod(pod, deps.selection)) return [];
    const result = renderPodEntries({
      trustDomain: deps.trustDomain,
      clusterName: deps.clusterName,
      pod,
      node: pod.nodeName === "" ? undefined : cluster.node(pod.nodeName),
      namespace: cluster.namespace(pod.namespace),
      services: cluster.services(pod.namespace),
      templates,
    });
    for (const failure of result.failures) {
      renderFailures.add(1, { template: failure.template });
      problems.report({
        template: failure.template,
        templateUid: failure.templateUid,
        templateRevision: failure.templateRevision,
        message: `pod ${failure.namespace}/${failure.podName}: ${failure.error}`,
      });
    }
    return [...result.entries];
  };

  const currentTemplates = () => {
    const { valid, invalid } = cluster.templates();
    return templatesToApply(valid, invalid.length);
  };

  const podRefOf = (entry: CurrentEntry | DesiredEntry, uid: string): PodRef => {
    const pod = cluster.pod(uid);
    if (pod !== undefined) return { uid, name: pod.name, namespace: pod.namespace };
    return (
      tombstones.get(uid) ?? {
        uid,
        name: "podName" in entry ? entry.podName : "",
        namespace: "namespace" in entry ? entry.namespace : "",
      }
    );
  };

  const logItemFailure = (what: string, id: string, code: number, message: string): void => {
    writeFailures.add(1, { operation: what });
    logger.warn(
      { entryId: id, grpcCode: code, [LogKeys.err]: message },
      `entry ${what} refused by the CA`,
    );
  };

  /**
   * Calls `call` on `items` in batches of the current batch size and hands each batch's
   * results to `handle`. A batch the CA refuses as too large (RESOURCE_EXHAUSTED) is retried
   * in halves, and the smaller size is kept: `batchSize` above the CA's limit self-corrects.
   */
  const inBatches = async <T, R>(
    items: readonly T[],
    signal: AbortSignal,
    call: (batch: T[]) => Promise<R[]>,
    handle: (batch: readonly T[], results: readonly R[]) => void,
  ): Promise<void> => {
    let at = 0;
    while (at < items.length && !signal.aborted) {
      const batch = items.slice(at, at + currentBatchSize);
      let results: R[];
      try {
        results = await call(batch);
      } catch (err) {
        if (batch.length > 1 && isMeshidError(err) && err.kind === "resource_exhausted") {
          currentBatchSize = Math.max(1, Math.floor(batch.length / 2));
          logger.warn(
            { batchSize: currentBatchSize, [LogKeys.err]: err.message },
            "the CA refused the batch size: halving it",
          );
          continue;
        }
        throw err;
      }
      handle(batch, results);
      at += batch.length;
    }
  };

  /** Applies a diff in batches; false when the cache may now be wrong (a full pass is due). */
  const apply = async (
    diff: EntryDiff,
    signal: AbortSignal,
    afterFreshList: boolean,
  ): Promise<boolean> => {
    let consistent = true;
    /** An entry the CA accepted: cached, counted and announced. */
    const registered = (
      write: EntryWrite,
      entry: CurrentEntry,
      kind: "created" | "updated",
    ): void => {
      remember(entry);
      stats[kind] += 1;
      (kind === "created" ? createdCounter : updatedCounter).add(1);
      events.registered(podRefOf(write, write.podUid), write.spiffeId, entry.id);
    };
    await inBatches(
      diff.delete,
      signal,
      (batch) =>
        client.deleteEntries(
          batch.map((e) => e.id),
          signal,
        ),
      (batch, results) => {
        for (const [i, result] of results.entries()) {
          const entry = batch[i];
          if (entry === undefined) continue;
          if (result.ok || result.code === CODE_NOT_FOUND) {
            forget(entry.id);
            if (!result.ok) continue;
            stats.deleted += 1;
            deletedCounter.add(1);
            if (entry.podUid !== undefined) {
              events.deregistered(podRefOf(entry, entry.podUid), entry.spiffeId, entry.id);
            }
          } else logItemFailure("delete", entry.id, result.code, result.message);
        }
      },
    );
    const updates: EntryWrite[] = diff.update.map((u) => ({ ...u.desired, id: u.id }));
    await inBatches(
      updates,
      signal,
      (batch) => client.updateEntries(batch, REGISTRAR_OWNER, signal),
      (batch, results) => {
        for (const [i, result] of results.entries()) {
          const write = batch[i];
          if (write === undefined) continue;
          if (result.ok) {
            registered(write, result.entry, "updated");
          } else {
            if (result.code === CODE_NOT_FOUND) {
              forget(write.id);
              consistent = false;
            }
            logItemFailure("update", write.id, result.code, result.message);
          }
        }
      },
    );
    const creates: EntryWrite[] = diff.create.map((d) => ({
      ...d,
      id: entryIdFor(d.spiffeId, d.podUid),
    }));
    await inBatches(
      creates,
      signal,
      (batch) => client.createEntries(batch, REGISTRAR_OWNER, signal),
      (batch, results) => {
        for (const [i, result] of results.entries()) {
          const write = batch[i];
          if (write === undefined) continue;
          if (result.ok) {
            registered(write, result.entry, "created");
          } else if (result.code === CODE_ALREADY_EXISTS && !afterFreshList) {
            // After a pod-only pass our cache may have missed the entry: list again. Right
            // after a fresh list it is another owner's identical entry: only report it.
            consistent = false;
          } else logItemFailure("create", write.id, result.code, result.message);
        }
      },
    );
    return consistent;
  };

  const fullReconcile = async (signal: AbortSignal): Promise<void> => {
    // Never diff against a half-known cluster: that would delete the entries of unseen pods.
    if (!cluster.synced()) throw new Error("the cluster watches have not listed yet");
    const listed = await client.listOwnedEntries(REGISTRAR_OWNER, signal);
    cache.clear();
    byPod.clear();
    for (const entry of listed) remember(entry);
    cacheOk = true;
    // Pod events that arrived meanwhile are covered by this pass.
    dirty.clear();
    for (const problem of cluster.templates().invalid) problems.report(problem);
    const templates = currentTemplates();
    const desired: DesiredEntry[] = [];
    for (const pod of cluster.pods()) desired.push(...desiredForPod(pod.uid, templates));
    const consistent = await apply(diffEntries(desired, listed), signal, true);
    tombstones.clear();
    stats.fullReconciles += 1;
    if (!consistent) fullRequested = true;
  };

  const podReconcile = async (uids: readonly string[], signal: AbortSignal): Promise<void> => {
    const templates = currentTemplates();
    const desired: DesiredEntry[] = [];
    const current: CurrentEntry[] = [];
    for (const uid of uids) {
      desired.push(...desiredForPod(uid, templates));
      for (const id of byPod.get(uid) ?? []) {
        const entry = cache.get(id);
        if (entry !== undefined) current.push(entry);
      }
    }
    const consistent = await apply(diffEntries(desired, current), signal, false);
    for (const uid of uids) if (cluster.pod(uid) === undefined) tombstones.delete(uid);
    stats.podReconciles += 1;
    if (!consistent) fullRequested = true;
  };

  const runTerm = async (signal: AbortSignal): Promise<void> => {
    fullRequested = true;
    cacheOk = false;
    let nextFullAt = 0;
    let retryMs = retryInitialMs;
    const onAbort = (): void => poke();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const now = clock.now();
        const full = fullRequested || !cacheOk || now >= nextFullAt;
        if (!full && dirty.size === 0) {
          const woken = new Promise<void>((resolve) => (wake = resolve));
          const timer = new AbortController();
          await Promise.race([woken, clock.sleep(nextFullAt - now, timer.signal)]);
          timer.abort();
          wake = undefined;
          continue;
        }
        const started = clock.now();
        const taken = full ? [] : [...dirty];
        if (!full) for (const uid of taken) dirty.delete(uid);
        try {
          if (full) {
            fullRequested = false;
            await fullReconcile(signal);
            nextFullAt = clock.now() + deps.resyncIntervalMs;
          } else {
            await podReconcile(taken, signal);
          }
          duration.record((clock.now() - started) / 1000, { kind: full ? "full" : "pod" });
          stats.caReachable = true;
          retryMs = retryInitialMs;
        } catch (err) {
          if (signal.aborted) break;
          for (const uid of taken) dirty.add(uid);
          fullRequested = true;
          cacheOk = false;
          stats.failures += 1;
          stats.caReachable = false;
          reconcileFailures.add(1);
          logger.warn(
            { [LogKeys.err]: errorText(err), retryInMs: retryMs },
            "reconcile failed: retrying",
          );
          await clock.sleep(retryMs, signal);
          retryMs = Math.min(retryMs * 2, retryMaxMs);
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      cacheOk = false;
    }
  };

  let lastRun: Promise<void> = Promise.resolve();

  return {
    async run(signal) {
      // A new leadership term waits for the previous one's loop to wind down: two loops must
      // never share the cache or write at the same time.
      const previous = lastRun;
      let finished: () => void = () => undefined;
      lastRun = new Promise<void>((resolve) => (finished = resolve));
      await previous;
      try {
        await runTerm(signal);
      } finally {
        finished();
      }
    },
    podChanged(uid, ref) {
      if (ref !== undefined && cluster.pod(uid) === undefined) tombstones.set(uid, ref);
      dirty.add(uid);
      poke();
    },
    requestFull() {
      fullRequested = true;
      poke();
    },
    stats: () => ({ ...stats, ownedEntries: cache.size }),
  };
}
