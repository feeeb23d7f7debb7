import { MeshidError } from "@meshid/errors";
import type { KeyType } from "@meshid/pki";
import { parseSpiffeId, selectorKey, type Selector } from "@meshid/spiffe";
import { getMeter, LogKeys, type Logger } from "@meshid/telemetry";
import type { WatchIdentityOptions, WorkloadIdentitySource } from "../api/deps";
import type { CaClient, Clock, EventSink } from "../ports";
import { CachedSvidRecord } from "./cached-svid-record";
import { readLeafFields } from "./leaf-fields";
import { computeRetryDelayMs, computeRotateAt } from "./rotation-time";
import { internString, joinFlat } from "./intern";
import { createSelectorIndex } from "./selector-index";
import type { AgentBundle, AgentEntry, CachedSvid, WorkloadIdentity } from "./types";
import { generateWorkloadKeyAndCsr } from "./workload-key";

/** Most CSRs sent in one BatchNewX509SVID call (the CA's limit). */
export const DEFAULT_MAX_BATCH_SIZE = 500;
/** Default key type of workload SVIDs. */
export const DEFAULT_SVID_KEY_TYPE: KeyType = "ec-p256";
/** Default bounded wait of a first Workload API message for SVIDs still being minted. */
export const DEFAULT_MINT_WAIT_MS = 5_000;
/** Default retry backoff after a CA failure, in milliseconds. */
export const DEFAULT_RETRY_BACKOFF_MS = Object.freeze({ min: 500, max: 30_000 });
/** Longest the minting loop sleeps without work (it wakes on new work at once anyway). */
export const IDLE_SLEEP_MS = 60_000;

/**
 * Workload keys made between two yields to the event loop while a batch is prepared: EC keys
 * are made synchronously (≈ 0.1 ms each with the CSR), so a batch of 500 would otherwise hold
 * the Workload API off for tens of milliseconds.
 */
export const KEYS_PER_YIELD = 16;

/** Intermediate certificates shared between cached chains (older ones are copied per SVID). */
const MAX_INTERNED_INTERMEDIATES = 16;
const NO_CERTIFICATES: readonly Uint8Array[] = Object.freeze([]);

/** Metric: SVIDs held by the cache (gauge). */
export const METRIC_SVIDS_CACHED = "meshid_agent_svids_cached";
/** Metric: open identity watchers, i.e. Workload API streams (gauge). */
export const METRIC_WORKLOAD_STREAMS = "meshid_agent_workload_streams";
/** Metric: seconds until the soonest-expiring cached SVID expires (observable gauge). */
export const METRIC_SVID_EXPIRY_SECONDS = "meshid_agent_svid_expiry_seconds";
/**
 * Metric: seconds until each SVID served to a connected workload expires, by `spiffe_id`
 * (observable gauge). Only SVIDs on open Workload API streams have a series, so the metric
 * grows with the workloads on the node, not with every cached SVID.
 */
export const METRIC_WORKLOAD_SVID_EXPIRY_SECONDS = "meshid_agent_workload_svid_expiry_seconds";
/** Name of the meter the cache's instruments belong to. */
export const SVID_CACHE_METER = "@meshid/agent/svid-cache";

/** Dependencies of {@link createSvidCache}. */
export interface SvidCacheDeps {
  readonly caClient: Pick<CaClient, "batchNewX509Svid">;
  readonly clock: Clock;
  readonly events: EventSink;
  readonly logger: Logger;
  /** SPIFFE ID of this agent (reported in svid.rotated). */
  readonly agentId: string;
  /** Key type of workload SVIDs. Default {@link DEFAULT_SVID_KEY_TYPE}. */
  readonly keyType?: KeyType;
  /** Most CSRs per CA call. Default {@link DEFAULT_MAX_BATCH_SIZE}. */
  readonly maxBatchSize?: number;
  /** Uniform random in [0, 1) for rotation and retry jitter. Default Math.random. */
  readonly random?: () => number;
  /** Retry backoff bounds in ms. Default {@link DEFAULT_RETRY_BACKOFF_MS}. */
  readonly retryBackoffMs?: { readonly min: number; readonly max: number };
  /** Called after each CA batch with the number of SVIDs it added to the cache (if any). */
  readonly onMinted?: (count: number) => void;
}

/** Counters of the cache, for health, tests and benchmarks. */
export interface SvidCacheStats {
  /** SVIDs held. */
  readonly cached: number;
  /** Entries waiting for a first SVID, a re-mint or a retry. */
  readonly pending: number;
  /** Open identity watchers (Workload API streams). */
  readonly openWatchers: number;
  /** Open bundle watchers. */
  readonly bundleWatchers: number;
  /** Entry-versus-watcher subset checks done since creation (shows the index at work). */
  readonly matchChecks: number;
  /** Watcher notifications since creation (coalesced wake-ups, not messages). */
  readonly notifications: number;
  /** BatchNewX509SVID calls made since creation. */
  readonly caCalls: number;
}

/** The agent's SVID cache: the Workload API source plus what the sync and the loop drive. */
export interface SvidCache extends WorkloadIdentitySource {
  /**
   * Replaces the authorised entry set (the full set after a sync): new entries are queued for
   * minting, changed ones (revision, selectors, SPIFFE ID, DNS names, TTL) re-minted, missing
   * ones withdrawn at once. An entry whose SPIFFE ID changed loses its old SVID at once.
   */
  applyEntries(entries: ReadonlyMap<string, AgentEntry>): void;
  /** Sets the bundle, re-mints every SVID signed by a tainted authority, notifies watchers. */
  applyBundle(bundle: AgentBundle): void;
  /**
   * Runs the minting and rotation loop until `signal` aborts (then resolves). Mints pending
   * work at once in batches of at most `maxBatchSize`, re-mints each SVID at its `rotateAt`.
   * Rejects with failed_precondition `agent.svid_cache.running` when a loop already runs.
   */
  run(signal: AbortSignal): Promise<void>;
  /** Current counters. */
  stats(): SvidCacheStats;
  /** Every cached SVID (ordered by entry id). */
  snapshot(): readonly CachedSvid[];
}

interface EntryState {
  entry: AgentEntry;
  /** Sorted, deduplicated selector keys of the entry. */
  keys: readonly string[];
  svid: CachedSvidRecord | undefined;
  /** Bumped on every change, so a mint started before the change is discarded. */
  generation: number;
  /** Needs a (re-)mint regardless of rotateAt (new, changed, tainted). */
  needsMint: boolean;
  /** Failed attempts since the last success. */
  attempts: number;
  /** Epoch ms before which no retry is made (0 = none). */
  retryAtMs: number;
}

interface IdentityWatcher {
  readonly keys: ReadonlySet<string>;
  readonly keyList: readonly string[];
  readonly matched: Set<EntryState>;
  dirty: boolean;
  wake: (() => void) | undefined;
}

interface BundleWatcher {
  dirty: boolean;
  wake: (() => void) | undefined;
}

function entryKeys(selectors: readonly Selector[]): string[] {
  // slice() trims the array to its length: one small array per entry and watcher.
  return [...new Set(selectors.map(selectorKey))].sort().slice();
}

interface WorkloadKeys {
  readonly list: readonly string[];
  readonly set: ReadonlySet<string>;
}

/** Keys of workload selector lists: every call on one connection passes the same list. */
const workloadKeys = new WeakMap<readonly Selector[], WorkloadKeys>();

/** {@link entryKeys} of a workload's selectors (list and set), computed once per selector list. */
function keysOfWorkload(selectors: readonly Selector[]): WorkloadKeys {
  let keys = workloadKeys.get(selectors);
  if (keys === undefined) {
    const list = Object.freeze(entryKeys(selectors));
    keys = { list, set: new Set(list) };
    workloadKeys.set(selectors, keys);
  }
  return keys;
}

/** Keys of shared (interned) selector lists: entries with equal selectors share their keys. */
const sharedKeys = new WeakMap<readonly Selector[], readonly string[]>();

/** {@link entryKeys} of an entry: the keys flat, shared strings, the list shared when its selectors are. */
function keysOfEntry(selectors: readonly Selector[]): readonly string[] {
  const known = sharedKeys.get(selectors);
  if (known !== undefined) return known;
  const flat = selectors.map((s) => internString(joinFlat(s.type, ":", s.value)));
  const keys = Object.freeze([...new Set(flat)].sort());
  sharedKeys.set(selectors, keys);
  return keys;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

function entryChanged(
  before: AgentEntry,
  after: AgentEntry,
  keys: readonly string[],
  afterKeys: readonly string[],
): boolean {
  return (
    before.revision !== after.revision ||
    before.spiffeId !== after.spiffeId ||
    before.x509SvidTtlSeconds !== after.x509SvidTtlSeconds ||
    !sameKeys(keys, afterKeys) ||
    before.dnsNames.length !== after.dnsNames.length ||
    before.dnsNames.some((d, i) => d !== after.dnsNames[i])
  );
}

function wakeUp(w: { dirty: boolean; wake: (() => void) | undefined }): void {
  w.dirty = true;
  const wake = w.wake;
  w.wake = undefined;
  wake?.();
}

function waitDirty(w: { dirty: boolean; wake: (() => void) | undefined }): Promise<void> {
  if (w.dirty) return Promise.resolve();
  return new Promise((resolve) => {
    w.wake = resolve;
  });
}

/**
 * A copy of `der` when it is a view into a larger buffer (e.g. a whole gRPC response), so a
 * cached SVID never keeps a batch's bytes alive.
 */
function ownDer(der: Uint8Array): Uint8Array {
  return der.byteOffset === 0 && der.byteLength === der.buffer.byteLength
    ? der
    : new Uint8Array(der);
}

function errorFields(err: unknown): Record<string, unknown> {
  return err instanceof MeshidError
    ? { code: err.code, message: err.message }
    : { message: err instanceof Error ? err.message : String(err) };
}

/**
 * Creates the agent's SVID cache. Nothing is minted until {@link SvidCache.run} runs; watchers
 * may be opened before. The cache registers its gauges on the global meter at creation.
 */
export function createSvidCache(deps: SvidCacheDeps): SvidCache {
  const logger = deps.logger.child({ [LogKeys.component]: "svid-cache" });
  const keyType = deps.keyType ?? DEFAULT_SVID_KEY_TYPE;
  const maxBatchSize = Math.max(1, deps.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE);
  const random = deps.random ?? Math.random;
  const backoff = deps.retryBackoffMs ?? DEFAULT_RETRY_BACKOFF_MS;

  const entries = new Map<string, EntryState>();
  const entryIndex = createSelectorIndex<EntryState>();
  const watcherIndex = createSelectorIndex<IdentityWatcher>();
  const identityWatchers = new Set<IdentityWatcher>();
  const bundleWatchers = new Set<BundleWatcher>();
  let bundle: AgentBundle | undefined;
  let cachedCount = 0;
  let matchChecks = 0;
  let notifications = 0;
  let caCalls = 0;
  /** Intermediates seen recently: every SVID of one authority shares the same bytes. */
  const intermediates: Uint8Array[] = [];

  function internDer(der: Uint8Array): Uint8Array {
    for (const known of intermediates) if (Buffer.compare(known, der) === 0) return known;
    const own = ownDer(der);
    intermediates.unshift(own);
    if (intermediates.length > MAX_INTERNED_INTERMEDIATES) intermediates.pop();
    return own;
  }
  /** The intermediates lists seen recently, shared by every SVID of one authority. */
  const chainTails: (readonly Uint8Array[])[] = [];

  /** The shared list of the certificates after the leaf of `chain`. */
  function internChainTail(chain: readonly Uint8Array[]): readonly Uint8Array[] {
    if (chain.length <= 1) return NO_CERTIFICATES;
    const tail = chain.slice(1).map(internDer);
    for (const known of chainTails) {
      if (known.length === tail.length && known.every((der, n) => der === tail[n])) return known;
    }
    const frozen = Object.freeze(tail);
    chainTails.unshift(frozen);
    if (chainTails.length > MAX_INTERNED_INTERMEDIATES) chainTails.pop();
    return frozen;
  }
  let wakeLoop: (() => void) | undefined;
  let workSignalled = false;
  let running = false;

  const meter = getMeter(SVID_CACHE_METER);
  meter
    .createObservableGauge(METRIC_SVIDS_CACHED, { description: "SVIDs held by the agent cache" })
    .addCallback((r) => r.observe(cachedCount));
  meter
    .createObservableGauge(METRIC_WORKLOAD_STREAMS, { description: "Open Workload API streams" })
    .addCallback((r) => r.observe(identityWatchers.size));
  meter
    .createObservableGauge(METRIC_SVID_EXPIRY_SECONDS, {
      description: "Seconds until the soonest-expiring cached SVID expires",
      unit: "s",
    })
    .addCallback((r) => {
      // One series, not one per SVID: a series per SPIFFE ID cost the metrics SDK more
      // memory than the cached SVID itself.
      let soonestMs = Infinity;
      for (const state of entries.values()) {
        if (state.svid !== undefined) soonestMs = Math.min(soonestMs, state.svid.notAfterMs);
      }
      if (soonestMs !== Infinity) r.observe((soonestMs - deps.clock.now().getTime()) / 1000);
    });
  meter
    .createObservableGauge(METRIC_WORKLOAD_SVID_EXPIRY_SECONDS, {
      description: "Seconds until each SVID served to a connected workload expires",
      unit: "s",
    })
    .addCallback((r) => {
      const served = new Map<string, number>();
      for (const watcher of identityWatchers) {
        for (const state of watcher.matched) {
          const svid = state.svid;
          if (svid === undefined) continue;
          const known = served.get(svid.spiffeId);
          if (known === undefined || svid.notAfterMs < known)
            served.set(svid.spiffeId, svid.notAfterMs);
        }
      }
      const nowMs = deps.clock.now().getTime();
      for (const [spiffeId, notAfterMs] of served) {
        r.observe((notAfterMs - nowMs) / 1000, { spiffe_id: spiffeId });
      }
    });

  function signalWork(): void {
    workSignalled = true;
    const wake = wakeLoop;
    wakeLoop = undefined;
    wake?.();
  }

  function isMatch(w: IdentityWatcher, state: EntryState): boolean {
    matchChecks++;
    return state.keys.length > 0 && state.keys.every((k) => w.keys.has(k));
  }

  function notify(w: IdentityWatcher): void {
    notifications++;
    wakeUp(w);
  }

  /** Watchers that currently match `state` (found through the index). */
  function notifyMatched(state: EntryState): void {
    for (const w of watcherIndex.smallest(state.keys)) {
      matchChecks++;
      if (w.matched.has(state)) notify(w);
    }
  }

  function attach(state: EntryState): void {
    entryIndex.add(state, state.keys);
    for (const w of watcherIndex.smallest(state.keys)) {
      if (isMatch(w, state)) {
        w.matched.add(state);
        notify(w);
      }
    }
  }

  function detach(state: EntryState): void {
    for (const w of watcherIndex.smallest(state.keys)) {
      matchChecks++;
      if (w.matched.delete(state)) notify(w);
    }
    entryIndex.remove(state, state.keys);
  }

  function setSvid(state: EntryState, svid: CachedSvidRecord | undefined): void {
    if (state.svid === undefined && svid !== undefined) cachedCount++;
    if (state.svid !== undefined && svid === undefined) cachedCount--;
    state.svid = svid;
    notifyMatched(state);
  }

  function applyEntries(next: ReadonlyMap<string, AgentEntry>): void {
    let work = false;
    for (const [id, state] of entries) {
      if (next.has(id)) continue;
      entries.delete(id);
      if (state.svid !== undefined) cachedCount--;
      state.svid = undefined;
      detach(state);
      logger.debug({ [LogKeys.entryId]: id }, "entry withdrawn");
    }
    for (const [id, entry] of next) {
      const keys = keysOfEntry(entry.selectors);
      const state = entries.get(id);
      if (state === undefined) {
        const created: EntryState = {
          entry,
          keys,
          svid: undefined,
          generation: 0,
          needsMint: true,
          attempts: 0,
          retryAtMs: 0,
        };
        entries.set(id, created);
        attach(created);
        work = true;
        continue;
      }
      if (!entryChanged(state.entry, entry, state.keys, keys)) {
        state.entry = entry;
        continue;
      }
      const spiffeIdChanged = state.entry.spiffeId !== entry.spiffeId;
      const selectorsChanged = !sameKeys(state.keys, keys);
      if (selectorsChanged) detach(state);
      state.entry = entry;
      state.keys = keys;
      state.generation++;
      state.needsMint = true;
      state.attempts = 0;
      state.retryAtMs = 0;
      if (selectorsChanged) attach(state);
      // An SVID for an identity no longer granted must not be served while its successor mints.
      if (spiffeIdChanged && state.svid !== undefined) setSvid(state, undefined);
      work = true;
    }
    if (work) signalWork();
  }

  function applyBundle(nextBundle: AgentBundle): void {
    bundle = nextBundle;
    const tainted = new Set(nextBundle.taintedAuthorityIds.map((id) => id.toLowerCase()));
    let work = false;
    if (tainted.size > 0) {
      for (const state of entries.values()) {
        if (state.svid !== undefined && !state.needsMint && tainted.has(state.svid.authorityId)) {
          state.needsMint = true;
          state.generation++;
          state.attempts = 0;
          state.retryAtMs = 0;
          work = true;
        }
      }
    }
    for (const w of identityWatchers) notify(w);
    for (const w of bundleWatchers) wakeUp(w);
    if (work) signalWork();
  }

  /** When the entry next needs the CA: now for new, changed or tainted; else at rotateAt; never before a pending retry. */
  function dueAtMs(state: EntryState): number {
    const wantMs = state.needsMint || state.svid === undefined ? 0 : state.svid.rotateAtMs;
    return Math.max(wantMs, state.retryAtMs);
  }

  function nextDueMs(): number {
    let next = Infinity;
    for (const state of entries.values()) next = Math.min(next, dueAtMs(state));
    return next;
  }

  function scheduleRetry(state: EntryState, nowMs: number): void {
    state.attempts++;
    state.retryAtMs =
      nowMs +
      computeRetryDelayMs({
        attempts: state.attempts,
        minMs: backoff.min,
        maxMs: backoff.max,
        random: random(),
      });
  }

  function publishRotated(svid: CachedSvidRecord, serialHex: string): void {
    const failed = (err: unknown): void => {
      logger.warn(
        { [LogKeys.entryId]: svid.entryId, [LogKeys.err]: errorFields(err) },
        "svid.rotated not published",
      );
    };
    try {
      const id = parseSpiffeId(svid.spiffeId);
      void deps.events
        .publish("svid.rotated", {
          spiffeId: { trustDomain: id.trustDomain.name, path: id.path },
          serial: serialHex,
          expiresAt: svid.notAfter,
          entryId: svid.entryId,
          agentId: deps.agentId,
        })
        .then(undefined, failed);
    } catch (err) {
      failed(err);
    }
  }

  async function mintBatch(batch: readonly EntryState[], signal: AbortSignal): Promise<void> {
    const requests: { entryId: string; csrDer: Uint8Array }[] = [];
    const keys: Uint8Array[] = [];
    const generations: number[] = [];
    const prepared: EntryState[] = [];
    let made = 0;
    for (const state of batch) {
      if (made > 0 && made % KEYS_PER_YIELD === 0) {
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      made++;
      try {
        const key = await generateWorkloadKeyAndCsr(keyType, state.entry.spiffeId);
        requests.push({ entryId: state.entry.id, csrDer: key.csrDer });
        keys.push(key.privateKeyPkcs8Der);
        generations.push(state.generation);
        prepared.push(state);
      } catch (err) {
        logger.error(
          { [LogKeys.entryId]: state.entry.id, [LogKeys.err]: errorFields(err) },
          "workload key or CSR failed",
        );
        scheduleRetry(state, deps.clock.now().getTime());
      }
    }
    if (requests.length === 0) return;
    caCalls++;
    let results;
    try {
      results = await deps.caClient.batchNewX509Svid(requests, signal);
    } catch (err) {
      if (signal.aborted) return;
      const nowMs = deps.clock.now().getTime();
      for (const state of prepared) scheduleRetry(state, nowMs);
      logger.warn(
        { count: requests.length, [LogKeys.err]: errorFields(err) },
        "SVID batch failed; retrying with backoff",
      );
      return;
    }
    const nowMs = deps.clock.now().getTime();
    let minted = 0;
    prepared.forEach((state, i) => {
      const result = results[i];
      // A stale result (the entry changed or went away meanwhile) is dropped: it is re-minted.
      if (entries.get(state.entry.id) !== state || state.generation !== generations[i]) return;
      if (result === undefined || !result.ok || result.entryId !== state.entry.id) {
        scheduleRetry(state, nowMs);
        logger.warn(
          {
            [LogKeys.entryId]: state.entry.id,
            code: result !== undefined && !result.ok ? result.code : "agent.svid.missing_result",
            message: result !== undefined && !result.ok ? result.message : "no result for the item",
            attempts: state.attempts,
          },
          "SVID not signed; retrying with backoff",
        );
        return;
      }
      try {
        const leaf = result.certChainDer[0];
        if (leaf === undefined)
          throw new MeshidError("internal", "agent.svid.malformed", "empty certificate chain");
        const fields = readLeafFields(leaf);
        // The record copies leaf and key into one allocation (no view into the response).
        const svid = new CachedSvidRecord({
          entryId: state.entry.id,
          spiffeId: state.entry.spiffeId,
          hint: state.entry.hint,
          certChainDer: [leaf],
          intermediates: internChainTail(result.certChainDer),
          privateKeyPkcs8Der: keys[i] as Uint8Array,
          notBeforeMs: fields.notBeforeMs,
          notAfterMs: fields.notAfterMs,
          rotateAtMs: computeRotateAt({
            notBefore: new Date(fields.notBeforeMs),
            notAfter: new Date(fields.notAfterMs),
            random: random(),
          }).getTime(),
          authorityId: internString(fields.authorityId),
          entryRevision: state.entry.revision,
        });
        state.needsMint = false;
        state.attempts = 0;
        state.retryAtMs = 0;
        setSvid(state, svid);
        minted++;
        // Read from the leaf once for the log line and the event.
        const serialHex = svid.serialHex;
        logger.debug(
          {
            [LogKeys.entryId]: svid.entryId,
            [LogKeys.spiffeId]: svid.spiffeId,
            [LogKeys.serialNumber]: serialHex,
            [LogKeys.notAfter]: svid.notAfter.toISOString(),
          },
          "SVID cached",
        );
        publishRotated(svid, serialHex);
      } catch (err) {
        scheduleRetry(state, nowMs);
        logger.error(
          { [LogKeys.entryId]: state.entry.id, [LogKeys.err]: errorFields(err) },
          "signed SVID unusable",
        );
      }
    });
    if (minted > 0) deps.onMinted?.(minted);
  }

  async function run(signal: AbortSignal): Promise<void> {
    if (running) {
      throw new MeshidError(
        "failed_precondition",
        "agent.svid_cache.running",
        "the SVID cache loop is already running",
      );
    }
    running = true;
    const onAbort = (): void => signalWork();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        workSignalled = false;
        const nowMs = deps.clock.now().getTime();
        const batch: EntryState[] = [];
        for (const state of entries.values()) {
          if (dueAtMs(state) <= nowMs) {
            batch.push(state);
            if (batch.length >= maxBatchSize) break;
          }
        }
        if (batch.length > 0) {
          await mintBatch(batch, signal);
          continue;
        }
        if (workSignalled) continue;
        const delayMs = Math.min(IDLE_SLEEP_MS, Math.max(1, nextDueMs() - nowMs));
        const sleepAbort = new AbortController();
        const woken = new Promise<void>((resolve) => {
          wakeLoop = resolve;
        });
        await Promise.race([
          deps.clock.sleep(delayMs, sleepAbort.signal).then(
            () => undefined,
            () => undefined,
          ),
          woken,
        ]);
        wakeLoop = undefined;
        sleepAbort.abort();
      }
    } finally {
      running = false;
      signal.removeEventListener("abort", onAbort);
    }
  }

  function identityOf(w: IdentityWatcher, current: AgentBundle): WorkloadIdentity {
    const svids: CachedSvid[] = [];
    for (const state of w.matched) if (state.svid !== undefined) svids.push(state.svid);
    svids.sort((a, b) => (a.entryId < b.entryId ? -1 : a.entryId > b.entryId ? 1 : 0));
    return { svids, bundle: current };
  }

  function sameIdentity(a: WorkloadIdentity | undefined, b: WorkloadIdentity): boolean {
    return (
      a !== undefined &&
      a.bundle === b.bundle &&
      a.svids.length === b.svids.length &&
      a.svids.every((s, i) => s === b.svids[i])
    );
  }

  async function* watchIdentity(
    selectors: readonly Selector[],
    options: WatchIdentityOptions,
  ): AsyncGenerator<WorkloadIdentity> {
    const { signal } = options;
    const mintWaitMs = options.mintWaitMs ?? DEFAULT_MINT_WAIT_MS;
    if (signal.aborted) return;
    const { list: keyList, set: keySet } = keysOfWorkload(selectors);
    const w: IdentityWatcher = {
      keys: keySet,
      keyList,
      matched: new Set(),
      dirty: false,
      wake: undefined,
    };
    // Candidate entries: those indexed under any of the workload's selectors.
    for (const key of keyList) {
      for (const state of entryIndex.get(key)) {
        if (!w.matched.has(state) && isMatch(w, state)) w.matched.add(state);
      }
    }
    identityWatchers.add(w);
    watcherIndex.add(w, keyList);
    const unregister = (): void => {
      if (identityWatchers.delete(w)) watcherIndex.remove(w, keyList);
    };
    // Unregister on abort even while the consumer holds a message (generator paused at yield).
    const onAbort = (): void => {
      unregister();
      wakeUp(w);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (bundle === undefined) {
        w.dirty = false;
        await waitDirty(w);
        if (signal.aborted) return;
      }
      const pending = (): boolean => {
        for (const state of w.matched) if (state.svid === undefined) return true;
        return false;
      };
      if (pending()) {
        const timer = new AbortController();
        let timedOut = false;
        void deps.clock.sleep(mintWaitMs, timer.signal).then(
          () => {
            timedOut = true;
            wakeUp(w);
          },
          () => undefined,
        );
        try {
          while (!timedOut && pending()) {
            w.dirty = false;
            await waitDirty(w);
            if (signal.aborted) return;
          }
        } finally {
          timer.abort();
        }
      }
      let last: WorkloadIdentity | undefined;
      for (;;) {
        w.dirty = false;
        const current = bundle;
        const identity = identityOf(w, current);
        if (!sameIdentity(last, identity)) {
          last = identity;
          yield identity;
          if (signal.aborted) return;
          // State changed while the consumer held the message: loop to yield the newest.
          if (w.dirty) continue;
        }
        await waitDirty(w);
        if (signal.aborted) return;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      unregister();
    }
  }

  async function* watchBundle(signal: AbortSignal): AsyncGenerator<AgentBundle> {
    if (signal.aborted) return;
    const w: BundleWatcher = { dirty: bundle !== undefined, wake: undefined };
    bundleWatchers.add(w);
    const onAbort = (): void => {
      bundleWatchers.delete(w);
      wakeUp(w);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      let last: AgentBundle | undefined;
      for (;;) {
        await waitDirty(w);
        if (signal.aborted) return;
        w.dirty = false;
        const current = bundle;
        if (current !== undefined && current !== last) {
          last = current;
          yield current;
          if (signal.aborted) return;
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      bundleWatchers.delete(w);
    }
  }

  return {
    applyEntries,
    applyBundle,
    run,
    watchIdentity,
    watchBundle,
    stats() {
      let pending = 0;
      const nowMs = deps.clock.now().getTime();
      for (const state of entries.values()) {
        if (state.needsMint || state.svid === undefined || state.svid.rotateAtMs <= nowMs) {
          pending++;
        }
      }
      return {
        cached: cachedCount,
        pending,
        openWatchers: identityWatchers.size,
        bundleWatchers: bundleWatchers.size,
        matchChecks,
        notifications,
        caCalls,
      };
    },
    snapshot() {
      const out: CachedSvid[] = [];
      for (const state of entries.values()) if (state.svid !== undefined) out.push(state.svid);
      return out.sort((a, b) => (a.entryId < b.entryId ? -1 : a.entryId > b.entryId ? 1 : 0));
    },
  };
}
