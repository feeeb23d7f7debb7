// Registration entries: validation, batch CRUD with events and agent wake-ups, and the delta
// sync agents use. The gRPC layer only converts messages and checks who is calling.
import { MeshidError } from "@meshid/errors";
import { agentWakeupSubject, type EventPayload, type EventType } from "@meshid/events";
import { type SpiffeId, parseTrustDomain } from "@meshid/spiffe";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { EntryManager, SyncAuthorizedOptions, SyncPage } from "../api/deps";
import type { Datastore, EventSink, ListEntriesParams } from "../ports";
import {
  createParentLookup,
  findAuthorizedEntries,
  findAuthorizedEntryRefs,
  findChainTops,
  isEntryAuthorized,
  loadEntries,
} from "./authorized-entries";
import {
  AGENT_ID_PATH_PREFIX,
  type EntryValidationLimits,
  type EntryValidationResult,
  checkEntryId,
  validateEntryUpdate,
  validateNewEntry,
} from "./entry-validation";
import type { BatchItemResult, RegistrationEntry } from "./types";

/** Default for {@link EntryManagerLimits.maxBatchSize}. */
export const DEFAULT_MAX_BATCH_SIZE = 500;
/** Default page size of {@link EntryManager.syncAuthorized}. */
export const DEFAULT_SYNC_PAGE_SIZE = 500;
/** Largest page size of {@link EntryManager.syncAuthorized}; larger requests are capped. */
export const MAX_SYNC_PAGE_SIZE = 1000;
/**
 * Default for {@link EntryManagerLimits.maxIdsPerSyncPage}: 20,000 ids of 38 bytes each in
 * protobuf (36-character UUID plus tag and length) is 760 KB, under a fifth of gRPC's 4 MiB.
 */
export const DEFAULT_MAX_IDS_PER_SYNC_PAGE = 20_000;
/**
 * Default for {@link EntryManagerLimits.maxSyncPageBytes}: 1 MiB of entries a page, so a page
 * (entries plus at most {@link DEFAULT_MAX_IDS_PER_SYNC_PAGE} ids) stays under half of gRPC's
 * default 4 MiB message limit however large the entries are.
 */
export const DEFAULT_MAX_SYNC_PAGE_BYTES = 1_048_576;
/**
 * Default for {@link EntryManagerLimits.maxChangesWithoutIds}: a delta that may leave out the
 * ID list reads at most this many changed entries store-wide (full rows); above it the sync
 * walks the agent's set and sends the IDs as before.
 */
export const DEFAULT_MAX_CHANGES_WITHOUT_IDS = 2000;

/** Bounds applied by the entry manager. */
export interface EntryManagerLimits extends EntryValidationLimits {
  /** Most items in one batch call; more → `ca.batch.too_large`. Default 500. */
  readonly maxBatchSize?: number;
  /**
   * Most authorised-entry ids on one sync page. Default {@link DEFAULT_MAX_IDS_PER_SYNC_PAGE}.
   * A larger authorised set is spread over the final pages of the sync (see syncAuthorized).
   */
  readonly maxIdsPerSyncPage?: number;
  /** Byte budget of the entries of one sync page. Default {@link DEFAULT_MAX_SYNC_PAGE_BYTES}. */
  readonly maxSyncPageBytes?: number;
  /**
   * Most entries changed store-wide since a delta's revision for which the sync still leaves
   * out the ID list. Default {@link DEFAULT_MAX_CHANGES_WITHOUT_IDS}.
   */
  readonly maxChangesWithoutIds?: number;
}

/** Dependencies of {@link createEntryManager}. */
export interface EntryManagerDeps {
  /** The CA's trust domain name; entries and their parents must belong to it. */
  readonly trustDomain: string;
  readonly store: Datastore;
  /** Where entry events and agent wake-ups go; a failed publish is logged, never fatal. */
  readonly events: EventSink;
  readonly logger: Logger;
  readonly limits?: EntryManagerLimits;
}

/** Error codes raised by the entry manager itself (validation codes: entry-validation.ts). */
export const EntryManagerCode = {
  /** A batch has more items than maxBatchSize (resource_exhausted). */
  batchTooLarge: "ca.batch.too_large",
  /** No entry has the id (not_found). */
  notFound: "ca.entry.not_found",
  /** sinceRevision is not an integer ≥ 0 (invalid_argument). */
  syncRevision: "ca.sync.revision",
  /** pageSize is not an integer ≥ 1 (invalid_argument). */
  syncPageSize: "ca.sync.page_size",
  /** The store returned a result list that does not match the request (internal). */
  storeMismatch: "ca.store.result_mismatch",
} as const;

type EntryEvent = "entry.created" | "entry.updated" | "entry.deleted";

/** Splits `items` into chunks of at most `size`. */
function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** Bytes of a protobuf string field: tag, length prefix (≤ 3 bytes here) and UTF-8 bytes. */
function stringFieldBytes(s: string): number {
  return Buffer.byteLength(s, "utf8") + 4;
}

/**
 * Estimates, from above, the bytes of an entry encoded as a protobuf `RegistrationEntry`
 * inside a sync response (strings as UTF-8 with tag and length, fixed overhead for the
 * numbers, flags and timestamps). Used to cut sync pages below a byte budget.
 */
export function estimateEntryBytes(entry: RegistrationEntry): number {
  let bytes = 64 + stringFieldBytes(entry.id) + stringFieldBytes(entry.hint);
  bytes += stringFieldBytes(entry.owner);
  for (const id of [entry.spiffeId, entry.parentId]) {
    bytes += 4 + stringFieldBytes(id.trustDomain.name) + stringFieldBytes(id.path);
  }
  for (const s of entry.selectors)
    bytes += 4 + stringFieldBytes(s.type) + stringFieldBytes(s.value);
  for (const name of entry.dnsNames) bytes += stringFieldBytes(name);
  return bytes;
}

/** Splits entries into pages of at most `pageSize` entries and about `maxBytes` bytes. */
function pageEntries(
  entries: readonly RegistrationEntry[],
  pageSize: number,
  maxBytes: number,
): RegistrationEntry[][] {
  const pages: RegistrationEntry[][] = [];
  let page: RegistrationEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = estimateEntryBytes(entry);
    // A page always takes at least one entry, so a huge entry still goes out alone.
    if (page.length > 0 && (page.length >= pageSize || bytes + size > maxBytes)) {
      pages.push(page);
      page = [];
      bytes = 0;
    }
    page.push(entry);
    bytes += size;
  }
  if (page.length > 0) pages.push(page);
  return pages;
}

/** Parameters of {@link buildSyncPages}. */
export interface BuildSyncPagesParams {
  readonly entries: readonly RegistrationEntry[];
  readonly authorizedEntryIds: readonly string[];
  readonly revision: number;
  /** Most entries a page. */
  readonly pageSize: number;
  /** Byte budget of the entries of a page (see {@link estimateEntryBytes}). */
  readonly maxPageBytes: number;
  /** Most authorised ids a page. */
  readonly maxIds: number;
  /** Set `authorizedIdsOmitted` on the last page (then `authorizedEntryIds` must be empty). */
  readonly authorizedIdsOmitted?: boolean;
}

/**
 * Builds the pages of one sync: entries in pages of at most `pageSize` entries and about
 * `maxPageBytes` bytes, and the authorised ids in chunks of `maxIds` on the LAST pages (only the
 * very last one unless there are more than `maxIds`). `done` and `revision` are set on the last
 * page only; the agent's authorised set is the union of `authorizedEntryIds` over all pages.
 * Pure; exported for tests.
 */
export function buildSyncPages(params: BuildSyncPagesParams): SyncPage[] {
  const entryChunks = pageEntries(params.entries, params.pageSize, params.maxPageBytes);
  const idChunks = chunk(params.authorizedEntryIds, params.maxIds);
  const pageCount = Math.max(entryChunks.length, idChunks.length, 1);
  const firstIdPage = pageCount - idChunks.length;
  const pages: SyncPage[] = [];
  for (let k = 0; k < pageCount; k++) {
    const done = k === pageCount - 1;
    pages.push({
      entries: entryChunks[k] ?? [],
      done,
      revision: done ? params.revision : 0,
      authorizedEntryIds: k >= firstIdPage ? (idChunks[k - firstIdPage] ?? []) : [],
      authorizedIdsOmitted: done && params.authorizedIdsOmitted === true,
    });
  }
  return pages;
}

function checkPositiveLimit(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) {
    throw new MeshidError("invalid_argument", "ca.config.limit", `${name} must be an integer ≥ 1`);
  }
  return v;
}

/**
 * Creates the {@link EntryManager}: validates entries (see entry-validation.ts), applies
 * batches through the store with per-item results in input order, publishes
 * `entry.created|updated|deleted` per successful item and one `agent.wakeup` per affected agent
 * per batch, and serves the agents' delta sync.
 *
 * @throws MeshidError `invalid_argument` for a bad trust domain or limit.
 */
export function createEntryManager(deps: EntryManagerDeps): EntryManager {
  const { store, events } = deps;
  const logger = deps.logger.child({ [LogKeys.component]: "entry-manager" });
  const trustDomain = parseTrustDomain(deps.trustDomain);
  const limits = deps.limits ?? {};
  const maxBatchSize = checkPositiveLimit(
    limits.maxBatchSize,
    DEFAULT_MAX_BATCH_SIZE,
    "maxBatchSize",
  );
  const maxIds = checkPositiveLimit(
    limits.maxIdsPerSyncPage,
    DEFAULT_MAX_IDS_PER_SYNC_PAGE,
    "maxIdsPerSyncPage",
  );
  const maxPageBytes = checkPositiveLimit(
    limits.maxSyncPageBytes,
    DEFAULT_MAX_SYNC_PAGE_BYTES,
    "maxSyncPageBytes",
  );
  const maxChangesWithoutIds = checkPositiveLimit(
    limits.maxChangesWithoutIds,
    DEFAULT_MAX_CHANGES_WITHOUT_IDS,
    "maxChangesWithoutIds",
  );
  const validationLimits: EntryValidationLimits = {
    ...(limits.maxDnsNames === undefined ? {} : { maxDnsNames: limits.maxDnsNames }),
    ...(limits.maxSelectors === undefined ? {} : { maxSelectors: limits.maxSelectors }),
    ...(limits.maxHintLength === undefined ? {} : { maxHintLength: limits.maxHintLength }),
  };

  function checkBatchSize(count: number, what: string): void {
    if (count > maxBatchSize) {
      throw new MeshidError(
        "resource_exhausted",
        EntryManagerCode.batchTooLarge,
        `${what} batch of ${count} items is larger than the limit of ${maxBatchSize}`,
        { details: { limit: maxBatchSize, count } },
      );
    }
  }

  /**
   * Validates every item, sends the valid ones to the store in one call, and merges the
   * results back in input order.
   */
  async function runBatch<I, V, S>(
    items: readonly I[],
    validate: (item: I) => EntryValidationResult<V>,
    apply: (valid: V[]) => Promise<BatchItemResult<S>[]>,
  ): Promise<BatchItemResult<S>[]> {
    const results: (BatchItemResult<S> | undefined)[] = new Array<undefined>(items.length);
    const valid: V[] = [];
    const positions: number[] = [];
    items.forEach((item, i) => {
      const checked = validate(item);
      if (checked.ok) {
        valid.push(checked.value);
        positions.push(i);
      } else {
        results[i] = checked;
      }
    });
    if (valid.length > 0) {
      const applied = await apply(valid);
      if (applied.length !== valid.length) {
        throw new MeshidError(
          "internal",
          EntryManagerCode.storeMismatch,
          `store returned ${applied.length} results for ${valid.length} items`,
        );
      }
      applied.forEach((result, k) => {
        results[positions[k] ?? -1] = result;
      });
    }
    return results as BatchItemResult<S>[];
  }

  async function publishSafely<K extends EventType>(
    type: K,
    payload: EventPayload<K>,
    options: { subject?: string; natsSubject?: string },
  ): Promise<void> {
    try {
      await events.publish(type, payload, options);
    } catch (err) {
      // Agents reconcile periodically, so a lost event only delays them.
      logger.warn(
        { [LogKeys.err]: err, [LogKeys.subject]: type, ...options },
        "event publish failed; agents will catch up at their next reconcile",
      );
    }
  }

  async function publishEntryEvent(type: EntryEvent, entry: RegistrationEntry): Promise<void> {
    await publishSafely(
      type,
      {
        entryId: entry.id,
        spiffeId: { trustDomain: entry.spiffeId.trustDomain.name, path: entry.spiffeId.path },
        parentId: { trustDomain: entry.parentId.trustDomain.name, path: entry.parentId.path },
        revision: entry.revision,
        owner: entry.owner,
      },
      { subject: entry.id },
    );
  }

  /**
   * Publishes the entry events of a batch, then one wake-up per agent at the top of the parent
   * chains of `parentIds` (before and after each change), with the store revision after the
   * batch.
   */
  async function notify(
    changes: readonly { readonly type: EntryEvent; readonly entry: RegistrationEntry }[],
    parentIds: ReadonlySet<string>,
  ): Promise<void> {
    if (changes.length === 0) return;
    for (const { type, entry } of changes) await publishEntryEvent(type, entry);
    let revision = Math.max(...changes.map((c) => c.entry.revision));
    const agents = new Set<string>();
    try {
      revision = Math.max(revision, await store.getRevision());
      const lookup = createParentLookup(store);
      for (const parentId of parentIds) {
        for (const top of await findChainTops(lookup, parentId)) agents.add(top);
      }
    } catch (err) {
      logger.warn(
        { [LogKeys.err]: err },
        "could not resolve the agents to wake up; they will catch up at their next reconcile",
      );
    }
    for (const agentId of agents) {
      await publishSafely(
        "agent.wakeup",
        { revision },
        { natsSubject: agentWakeupSubject(agentId) },
      );
    }
  }

  return {
    async batchCreate(entries) {
      checkBatchSize(entries.length, "create");
      const results = await runBatch(
        entries,
        (entry) => validateNewEntry({ entry, trustDomain, limits: validationLimits }),
        (valid) => store.createEntries(valid),
      );
      const created = results.flatMap((r) => (r.ok ? [r.value] : []));
      await notify(
        created.map((entry) => ({ type: "entry.created" as const, entry })),
        new Set(created.map((e) => e.parentId.toString())),
      );
      return results;
    },

    async batchUpdate(updates) {
      checkBatchSize(updates.length, "update");
      const results = await runBatch(
        updates,
        (entry) => validateEntryUpdate({ entry, trustDomain, limits: validationLimits }),
        (valid) => store.updateEntries(valid),
      );
      const changed = results.flatMap((r) => (r.ok ? [r.value] : []));
      const parents = new Set<string>();
      for (const { before, after } of changed) {
        parents.add(before.parentId.toString());
        parents.add(after.parentId.toString());
      }
      await notify(
        changed.map(({ after }) => ({ type: "entry.updated" as const, entry: after })),
        parents,
      );
      return results.map((r) => (r.ok ? { ok: true as const, value: r.value.after } : r));
    },

    async batchDelete(ids) {
      checkBatchSize(ids.length, "delete");
      const results = await runBatch(
        ids,
        (id) => {
          try {
            return { ok: true, value: checkEntryId(id) };
          } catch (err) {
            return { ok: false, error: err as MeshidError };
          }
        },
        (valid) => store.deleteEntries(valid),
      );
      const deleted = results.flatMap((r) => (r.ok ? [r.value] : []));
      await notify(
        deleted.map((entry) => ({ type: "entry.deleted" as const, entry })),
        new Set(deleted.map((e) => e.parentId.toString())),
      );
      return results;
    },

    async get(id) {
      checkEntryId(id);
      const entry = await store.getEntry(id);
      if (entry === undefined) {
        throw new MeshidError("not_found", EntryManagerCode.notFound, `entry ${id} not found`);
      }
      return entry;
    },

    list(params: ListEntriesParams) {
      return store.listEntries(params);
    },

    syncAuthorized(
      agentId: SpiffeId,
      sinceRevision: number,
      pageSize = DEFAULT_SYNC_PAGE_SIZE,
      options: SyncAuthorizedOptions = {},
    ) {
      return syncPages(agentId, sinceRevision, pageSize, options.omitUnchangedIds === true);
    },

    async isAuthorized(agentId, entry) {
      return isEntryAuthorized(createParentLookup(store), agentId, entry);
    },
  };

  /**
   * The changed entries authorised for `agentId` when the ID list can be left out: the store's
   * graph revision is at most `sinceRevision` (nothing left the agent's set, nothing unchanged
   * joined it) and at most `maxChangesWithoutIds` entries changed since, store-wide. Each is
   * kept when its parent is the agent or the upward walk reaches the agent (one lookup, so
   * one cache, for the whole sync). Undefined when the IDs must be sent.
   */
  async function changedWithoutIds(
    agentId: SpiffeId,
    sinceRevision: number,
    revisions: { readonly revision: number; readonly graphRevision: number },
  ): Promise<RegistrationEntry[] | undefined> {
    // An agent ahead of the store (a restored backup) may hold entries the store lost.
    if (revisions.graphRevision > sinceRevision || sinceRevision > revisions.revision) {
      return undefined;
    }
    const changed = await store.listEntriesChangedSince(sinceRevision, maxChangesWithoutIds + 1);
    if (changed.length > maxChangesWithoutIds) return undefined;
    const lookup = createParentLookup(store);
    const mine: RegistrationEntry[] = [];
    const self = agentId.toString();
    // isEntryAuthorized answers an entry parented to the agent without a store read. One
    // parented to another agent is that agent's alone (no entry may take an ID under
    // AGENT_ID_PATH_PREFIX, so the walk up from an agent ends at once): skipped without a read,
    // so a delta costs no lookup per other node that changed meanwhile.
    for (const entry of changed) {
      const parent = entry.parentId;
      if (parent.path.startsWith(AGENT_ID_PATH_PREFIX) && parent.toString() !== self) continue;
      if (await isEntryAuthorized(lookup, agentId, entry)) mine.push(entry);
    }
    return mine;
  }

  async function* syncPages(
    agentId: SpiffeId,
    sinceRevision: number,
    pageSize: number,
    omitUnchangedIds: boolean,
  ): AsyncGenerator<SyncPage> {
    if (!Number.isSafeInteger(sinceRevision) || sinceRevision < 0) {
      throw new MeshidError(
        "invalid_argument",
        EntryManagerCode.syncRevision,
        `sinceRevision must be an integer ≥ 0, got ${String(sinceRevision)}`,
      );
    }
    if (!Number.isInteger(pageSize) || pageSize < 1) {
      throw new MeshidError(
        "invalid_argument",
        EntryManagerCode.syncPageSize,
        `pageSize must be an integer ≥ 1, got ${String(pageSize)}`,
      );
    }
    // Read the revisions BEFORE the entries: a change racing with this sync then has a
    // revision above the one returned, so the next delta sends it again (never loses it), and
    // a racing graph change makes the next delta send the IDs.
    const revisions = await store.getRevisions();
    const revision = revisions.revision;
    const pageParams = {
      revision,
      pageSize: Math.min(pageSize, MAX_SYNC_PAGE_SIZE),
      maxPageBytes,
      maxIds,
    };
    if (omitUnchangedIds && sinceRevision > 0) {
      const mine = await changedWithoutIds(agentId, sinceRevision, revisions);
      if (mine !== undefined) {
        // Already ordered by revision (each revision belongs to one entry).
        yield* buildSyncPages({
          ...pageParams,
          entries: mine,
          authorizedEntryIds: [],
          authorizedIdsOmitted: true,
        });
        return;
      }
    }
    let changed: RegistrationEntry[];
    let ids: string[];
    if (sinceRevision === 0) {
      // A full sync sends every entry: one walk over full rows beats refs plus a load by id.
      changed = await findAuthorizedEntries(store, agentId);
      ids = changed.map((e) => e.id);
    } else {
      // A delta walks only (id, SPIFFE ID, revision) of each authorised entry and loads the
      // changed ones alone: O(authorised) light rows plus O(changed) full ones, where building
      // every authorised entry made a burst of N new pods cost O(N²).
      const refs = await findAuthorizedEntryRefs(store, agentId);
      const changedIds = refs.filter((r) => r.revision > sinceRevision).map((r) => r.id);
      changed = await loadEntries(store, changedIds);
      // A changed entry deleted between the walk and the load is no longer authorised: leave
      // its id out too, so every id sent for a changed entry comes with the entry.
      const vanished = new Set(changedIds);
      for (const e of changed) vanished.delete(e.id);
      ids = refs.map((r) => r.id);
      if (vanished.size > 0) ids = ids.filter((id) => !vanished.has(id));
    }
    changed.sort((a, b) => a.revision - b.revision || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    ids.sort();
    yield* buildSyncPages({ ...pageParams, entries: changed, authorizedEntryIds: ids });
  }
}
