import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import type { CaClient, Clock } from "../ports";
import type { AgentEntry } from "./types";

/** Default interval of the full reconcile sync (30 s). */
export const DEFAULT_RECONCILE_INTERVAL_MS = 30_000;
/** Default first retry delay after a failed sync (200 ms); doubles up to the maximum. */
export const DEFAULT_SYNC_RETRY_INITIAL_MS = 200;
/** Default longest retry delay after failed syncs (10 s). */
export const DEFAULT_SYNC_RETRY_MAX_MS = 10_000;
/** Gauge: seconds since the last successful entry sync (the agent's sync lag). */
export const METRIC_SYNC_LAG = "meshid_agent_sync_lag_seconds";
/** Counter: entry syncs by `kind` (full, delta) and `outcome` (ok, error). */
export const METRIC_SYNCS = "meshid_agent_entry_syncs_total";

/** Dependencies of {@link createEntrySync}. */
export interface EntrySyncDeps {
  /** The CA, for SyncAuthorizedEntries. */
  readonly caClient: Pick<CaClient, "syncAuthorizedEntries">;
  /**
   * Wake-up revision hints (e.g. from NATS). A hint above the last revision seen triggers a
   * delta sync; 0 asks for a full sync (a reconnect, when events may have been lost).
   */
  readonly wakeups: AsyncIterable<number>;
  /** Called with the whole authorised entry map after every sync that changed it. */
  readonly onEntries: (entries: ReadonlyMap<string, AgentEntry>) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Full reconcile interval in ms (default {@link DEFAULT_RECONCILE_INTERVAL_MS}). */
  readonly reconcileIntervalMs?: number;
  /** First retry delay in ms after a failed sync (default {@link DEFAULT_SYNC_RETRY_INITIAL_MS}). */
  readonly retryInitialMs?: number;
  /** Longest retry delay in ms (default {@link DEFAULT_SYNC_RETRY_MAX_MS}). */
  readonly retryMaxMs?: number;
}

/** Counters of an {@link EntrySync}. */
export interface EntrySyncStats {
  /** Successful syncs (full + delta). */
  readonly syncs: number;
  /** Successful full syncs. */
  readonly fullSyncs: number;
  /** Failed sync attempts. */
  readonly failures: number;
  /** Authorised entries held now. */
  readonly entries: number;
  /** CA revision the held map reflects (0 before the first sync). */
  readonly lastRevision: number;
  /** When the last sync succeeded, if ever. */
  readonly lastSuccessAt: Date | undefined;
  /** Seconds since the last successful sync (since run started, before any). */
  readonly lagSeconds: number;
}

/** Keeps the agent's authorised entry map in step with the CA (see {@link createEntrySync}). */
export interface EntrySync {
  /**
   * Syncs in full at once, then on wake-ups, every reconcile interval and on
   * {@link EntrySync.requestFullSync}, until `signal` aborts. Resolves when stopped.
   */
  run(signal: AbortSignal): Promise<void>;
  /**
   * Asks for a delta sync and resolves once a sync that started after the call has succeeded.
   * Rejects when `run` stops first (or is not running).
   */
  syncNow(): Promise<void>;
  /**
   * Schedules a full sync (e.g. after the CA connection or NATS reconnected). Resolves once a
   * full sync that started after the call has succeeded; rejects when `run` stops first.
   */
  requestFullSync(): Promise<void>;
  /** The CA revision the held entries reflect (0 before the first sync). */
  lastRevision(): number;
  /** The authorised entries held now. */
  entries(): ReadonlyMap<string, AgentEntry>;
  stats(): EntrySyncStats;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

interface SyncRequest {
  full: boolean;
  /** Skip the delta when the held revision already reaches this (wake-up hints only). */
  minRevision: number;
  /** Run even when `minRevision` is already reached (syncNow, retries). */
  force: boolean;
  waiters: Waiter[];
}

function sameEntries(
  a: ReadonlyMap<string, AgentEntry>,
  b: ReadonlyMap<string, AgentEntry>,
): boolean {
  if (a.size !== b.size) return false;
  for (const [id, entry] of a) {
    const other = b.get(id);
    if (other === undefined || other.revision !== entry.revision) return false;
  }
  return true;
}

/**
 * Creates the agent's entry sync. It holds the entries the CA authorises for this agent and
 * keeps them current: a delta sync (SyncAuthorizedEntries since the last revision; entries
 * not in the union of `authorizedEntryIds` are dropped, the returned ones upserted; when the
 * CA leaves the ID list out, `authorizedIdsOmitted`, nothing is dropped) on every
 * wake-up whose revision is above the last one seen, and a full sync (since 0) at start, every
 * reconcile interval, on a wake-up hint of 0 and after a failed attempt (the CA connection may
 * have been re-established). Triggers collapse into one running sync plus one pending; a
 * trigger during a sync schedules another, so no change is lost. Failed syncs are retried
 * with exponential backoff. Reports `meshid_agent_sync_lag_seconds` (seconds since the last success).
 */
export function createEntrySync(deps: EntrySyncDeps): EntrySync {
  const { caClient, clock, onEntries } = deps;
  const logger = deps.logger.child({ [LogKeys.component]: "entry-sync" });
  const reconcileIntervalMs = deps.reconcileIntervalMs ?? DEFAULT_RECONCILE_INTERVAL_MS;
  const retryInitialMs = deps.retryInitialMs ?? DEFAULT_SYNC_RETRY_INITIAL_MS;
  const retryMaxMs = deps.retryMaxMs ?? DEFAULT_SYNC_RETRY_MAX_MS;

  let held: ReadonlyMap<string, AgentEntry> = new Map();
  let revision = 0;
  let syncs = 0;
  let fullSyncs = 0;
  let failures = 0;
  let lastSuccessAt: Date | undefined;
  let startedAt: Date | undefined;
  let running = false;
  let pending: SyncRequest | undefined;
  let wakeWorker: (() => void) | undefined;

  const meter = getMeter("@meshid/agent");
  const syncCounter = meter.createCounter(METRIC_SYNCS, { description: "Entry syncs" });
  const lagGauge = meter.createObservableGauge(METRIC_SYNC_LAG, {
    description: "Seconds since the last successful entry sync",
    unit: "s",
  });
  const observeLag = (result: { observe(value: number): void }): void => {
    result.observe(lagSeconds());
  };

  function lagSeconds(): number {
    const since = lastSuccessAt ?? startedAt;
    if (since === undefined) return 0;
    return Math.max(0, (clock.now().getTime() - since.getTime()) / 1000);
  }

  function request(req: Omit<SyncRequest, "waiters">, waiter?: Waiter): SyncRequest {
    if (pending === undefined) {
      pending = { ...req, waiters: [] };
    } else {
      pending.full ||= req.full;
      pending.force ||= req.force;
      pending.minRevision = Math.max(pending.minRevision, req.minRevision);
    }
    if (waiter !== undefined) pending.waiters.push(waiter);
    const w = wakeWorker;
    wakeWorker = undefined;
    w?.();
    return pending;
  }

  function waitFor(full: boolean): Promise<void> {
    if (!running) {
      return Promise.reject(new Error("entry sync is not running"));
    }
    return new Promise<void>((resolve, reject) => {
      request({ full, minRevision: 0, force: true }, { resolve, reject });
    });
  }

  /**
   * The held map with `delta` upserted, for a delta whose ID list the CA left out (nothing
   * left the set). Returns the held map itself when no entry is new or at a new revision.
   */
  function upserted(delta: ReadonlyMap<string, AgentEntry>): {
    next: ReadonlyMap<string, AgentEntry>;
    changed: boolean;
  } {
    let next: Map<string, AgentEntry> | undefined;
    for (const [id, entry] of delta) {
      if (held.get(id)?.revision === entry.revision) continue;
      // Copied once, on the first real change: the held map may be in the SVID cache's hands.
      next ??= new Map(held);
      next.set(id, entry);
    }
    return next === undefined ? { next: held, changed: false } : { next, changed: true };
  }

  async function syncOnce(full: boolean, signal: AbortSignal): Promise<void> {
    const since = full ? 0 : revision;
    const delta = new Map<string, AgentEntry>();
    const authorized = new Set<string>();
    let reached: number | undefined;
    let idsOmitted = false;
    // Full syncs always take the ID list: they are the safety net that drops whatever a
    // delta could have missed.
    const options = full ? {} : { omitUnchangedIds: true };
    for await (const page of caClient.syncAuthorizedEntries(since, signal, options)) {
      for (const entry of page.entries) delta.set(entry.id, entry);
      for (const id of page.authorizedEntryIds) authorized.add(id);
      if (page.done) {
        reached = page.revision;
        idsOmitted = page.authorizedIdsOmitted;
        break;
      }
    }
    if (reached === undefined) {
      throw new Error("entry sync stream ended before its last page");
    }
    if (idsOmitted) {
      if (full) throw new Error("the CA left out the ID list of a full sync");
      const { next, changed } = upserted(delta);
      finish(full, reached, next, changed);
      return;
    }
    const next = new Map<string, AgentEntry>();
    let missing = 0;
    for (const id of authorized) {
      const entry = delta.get(id) ?? (full ? undefined : held.get(id));
      if (entry === undefined) {
        // Authorised but neither returned nor held: it joined the set through a graph change
        // (e.g. an alias adopting it) without changing itself. A full sync fetches it.
        logger.warn({ [LogKeys.entryId]: id }, "authorised entry missing from the sync");
        missing++;
        continue;
      }
      // Keyed by the entry's own ID string: the authorised-ID list is a fresh copy of every ID
      // on each sync, and the map keys are what the SVID cache keeps.
      next.set(entry.id, entry);
    }
    finish(full, reached, next, !sameEntries(held, next));
    // At once rather than at the next reconcile; after a delta only (a full sync returns every
    // authorised entry, so a full sync with a missing one has nothing more to ask for).
    if (missing > 0 && !full) request({ full: true, minRevision: 0, force: true });
  }

  /** Takes `next` as the held map at revision `reached` and reports it when `changed`. */
  function finish(
    full: boolean,
    reached: number,
    next: ReadonlyMap<string, AgentEntry>,
    changed: boolean,
  ): void {
    revision = full ? reached : Math.max(revision, reached);
    held = next;
    syncs++;
    if (full) fullSyncs++;
    lastSuccessAt = clock.now();
    logger.debug(
      { kind: full ? "full" : "delta", revision, entries: next.size, changed },
      "entries synced",
    );
    if (changed) onEntries(next);
  }

  async function worker(signal: AbortSignal): Promise<void> {
    let retryMs = retryInitialMs;
    while (!signal.aborted) {
      const req = pending;
      if (req === undefined) {
        await new Promise<void>((resolve) => {
          wakeWorker = resolve;
        });
        continue;
      }
      pending = undefined;
      if (!req.full && !req.force && req.minRevision <= revision) continue;
      try {
        await syncOnce(req.full, signal);
        syncCounter.add(1, { kind: req.full ? "full" : "delta", outcome: "ok" });
        retryMs = retryInitialMs;
        for (const w of req.waiters) w.resolve();
      } catch (err) {
        if (signal.aborted) {
          for (const w of req.waiters) w.reject(signal.reason);
          break;
        }
        failures++;
        syncCounter.add(1, { kind: req.full ? "full" : "delta", outcome: "error" });
        logger.warn(
          { [LogKeys.err]: err, kind: req.full ? "full" : "delta", retryMs },
          "entry sync failed; retrying",
        );
        // The connection may have been re-established meanwhile: retry in full.
        request({ full: true, minRevision: 0, force: true }).waiters.push(...req.waiters);
        try {
          await clock.sleep(retryMs, signal);
        } catch {
          break;
        }
        retryMs = Math.min(retryMs * 2, retryMaxMs);
      }
    }
  }

  async function consumeWakeups(signal: AbortSignal): Promise<void> {
    const iterator = deps.wakeups[Symbol.asyncIterator]();
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<"aborted">((resolve) => {
      onAbort = () => resolve("aborted");
      signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      while (!signal.aborted) {
        const next = await Promise.race([iterator.next(), aborted]);
        if (next === "aborted" || next.done === true) break;
        const hint = next.value;
        if (hint <= 0) {
          request({ full: true, minRevision: 0, force: true });
        } else if (hint > revision) {
          request({ full: false, minRevision: hint, force: false });
        }
      }
    } catch (err) {
      if (!signal.aborted) {
        logger.warn({ [LogKeys.err]: err }, "wake-up source failed; relying on reconcile");
      }
    } finally {
      if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
      // Ends the source (e.g. unsubscribes) without waiting on a pending next().
      void iterator.return?.()?.catch(() => undefined);
    }
  }

  async function reconcile(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await clock.sleep(reconcileIntervalMs, signal);
      } catch {
        return;
      }
      request({ full: true, minRevision: 0, force: true });
    }
  }

  return {
    async run(signal) {
      if (running) throw new Error("entry sync is already running");
      running = true;
      startedAt = clock.now();
      lagGauge.addCallback(observeLag);
      const onAbort = (): void => {
        const w = wakeWorker;
        wakeWorker = undefined;
        w?.();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      request({ full: true, minRevision: 0, force: true });
      try {
        await Promise.all([worker(signal), consumeWakeups(signal), reconcile(signal)]);
      } finally {
        signal.removeEventListener("abort", onAbort);
        lagGauge.removeCallback(observeLag);
        running = false;
        const left = pending;
        pending = undefined;
        const reason: unknown = signal.reason ?? new Error("entry sync stopped");
        for (const w of left?.waiters ?? []) w.reject(reason);
      }
    },
    syncNow: () => waitFor(false),
    requestFullSync: () => waitFor(true),
    lastRevision: () => revision,
    entries: () => held,
    stats: () => ({
      syncs,
      fullSyncs,
      failures,
      entries: held.size,
      lastRevision: revision,
      lastSuccessAt,
      lagSeconds: lagSeconds(),
    }),
  };
}
