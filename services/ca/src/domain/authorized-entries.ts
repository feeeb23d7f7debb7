// Which entries an agent may receive: those parented to its SPIFFE ID and, transitively, those
// parented to the SPIFFE ID of an entry it may receive (node aliases, nested parents). The
// entry graph may contain cycles; every walk keeps a visited set so it always ends.
import type { SpiffeId } from "@meshid/spiffe";
import type { Datastore } from "../ports";
import type { EntryRef, RegistrationEntry } from "./types";

/** The store queries the walks need. */
export type EntryGraphStore = Pick<
  Datastore,
  "listEntriesByParents" | "listEntryRefsByParents" | "getEntriesByIds" | "listEntries"
>;

/** Most parent IDs sent to one listEntriesByParents or listEntryRefsByParents call. */
export const PARENT_QUERY_CHUNK = 500;

/** Most entry ids sent to one {@link Datastore.getEntriesByIds} call. */
export const ENTRY_ID_QUERY_CHUNK = 500;

/** Page size of the by-SPIFFE-ID lookups of the upward walks (the store's maximum). */
const LOOKUP_PAGE_SIZE = 1000;

/**
 * The downward walk shared by {@link findAuthorizedEntries} and
 * {@link findAuthorizedEntryRefs}: level by level from `agentId`, at most
 * {@link PARENT_QUERY_CHUNK} parent IDs a `listChildren` call, each SPIFFE ID queried once (so
 * cycles end), each entry kept once. Order: breadth-first, as the store returns each level.
 */
async function walkDown<T extends { readonly id: string }>(
  agentId: SpiffeId | string,
  listChildren: (parentIds: readonly string[]) => Promise<readonly T[]>,
  spiffeIdOf: (child: T) => string,
): Promise<T[]> {
  const root = agentId.toString();
  const queried = new Set<string>([root]);
  const found = new Map<string, T>();
  let frontier = [root];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (let i = 0; i < frontier.length; i += PARENT_QUERY_CHUNK) {
      for (const child of await listChildren(frontier.slice(i, i + PARENT_QUERY_CHUNK))) {
        if (found.has(child.id)) continue;
        found.set(child.id, child);
        const id = spiffeIdOf(child);
        if (!queried.has(id)) {
          queried.add(id);
          next.push(id);
        }
      }
    }
    frontier = next;
  }
  return [...found.values()];
}

/**
 * Returns every entry authorised for `agentId`, as full entries: walks the entry graph
 * downwards with {@link Datastore.listEntriesByParents} (see walkDown: chunked, cycles end).
 * Order: breadth-first. Use it when every entry is needed (a full sync); otherwise walk with
 * {@link findAuthorizedEntryRefs} and load only what you need.
 */
export async function findAuthorizedEntries(
  store: Pick<Datastore, "listEntriesByParents">,
  agentId: SpiffeId | string,
): Promise<RegistrationEntry[]> {
  return walkDown(
    agentId,
    (parentIds) => store.listEntriesByParents(parentIds),
    (entry) => entry.spiffeId.toString(),
  );
}

/**
 * Returns the {@link EntryRef} (id, SPIFFE ID, revision) of every entry authorised for
 * `agentId`: the same walk as {@link findAuthorizedEntries} with
 * {@link Datastore.listEntryRefsByParents}, so it reads no more of an entry than its ref;
 * load the entries you need with {@link loadEntries}. Order: breadth-first.
 */
export async function findAuthorizedEntryRefs(
  store: Pick<Datastore, "listEntryRefsByParents">,
  agentId: SpiffeId | string,
): Promise<EntryRef[]> {
  return walkDown(
    agentId,
    (parentIds) => store.listEntryRefsByParents(parentIds),
    (ref) => ref.spiffeId,
  );
}

/**
 * Loads the entries with the given ids with {@link Datastore.getEntriesByIds}, at most
 * {@link ENTRY_ID_QUERY_CHUNK} ids a call. Returns them in the order of `ids`; an id the
 * store no longer has (deleted since it was found) is left out.
 */
export async function loadEntries(
  store: Pick<Datastore, "getEntriesByIds">,
  ids: readonly string[],
): Promise<RegistrationEntry[]> {
  const byId = new Map<string, RegistrationEntry>();
  for (let i = 0; i < ids.length; i += ENTRY_ID_QUERY_CHUNK) {
    for (const entry of await store.getEntriesByIds(ids.slice(i, i + ENTRY_ID_QUERY_CHUNK))) {
      byId.set(entry.id, entry);
    }
  }
  const out: RegistrationEntry[] = [];
  for (const id of ids) {
    const entry = byId.get(id);
    if (entry !== undefined) out.push(entry);
  }
  return out;
}

/**
 * Looks up, with memoisation, the parent IDs of the entries whose SPIFFE ID is a given ID
 * (one step up the entry graph). One instance serves one request: it caches store reads.
 */
export interface ParentLookup {
  /** Parent IDs (strings, deduplicated) of the entries whose SPIFFE ID is `spiffeId`. */
  parentsOf(spiffeId: string): Promise<readonly string[]>;
}

/** Creates a {@link ParentLookup} over `store` with a per-instance cache. */
export function createParentLookup(store: EntryGraphStore): ParentLookup {
  const cache = new Map<string, Promise<readonly string[]>>();
  const load = async (spiffeId: string): Promise<readonly string[]> => {
    const parents = new Set<string>();
    let pageToken = "";
    do {
      const page = await store.listEntries({
        bySpiffeId: spiffeId,
        pageSize: LOOKUP_PAGE_SIZE,
        pageToken,
      });
      for (const entry of page.items) parents.add(entry.parentId.toString());
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return [...parents];
  };
  return {
    parentsOf(spiffeId) {
      let pending = cache.get(spiffeId);
      if (pending === undefined) {
        pending = load(spiffeId);
        cache.set(spiffeId, pending);
      }
      return pending;
    },
  };
}

/**
 * Reports whether `entry` is authorised for `agentId`: its parent is the agent, or (walking up)
 * the parent is the SPIFFE ID of an entry authorised for the agent. The upward walk visits
 * each ID once, so cycles end; an entry parented directly to the agent needs no store read.
 */
export async function isEntryAuthorized(
  lookup: ParentLookup,
  agentId: SpiffeId | string,
  entry: Pick<RegistrationEntry, "parentId">,
): Promise<boolean> {
  const target = agentId.toString();
  const start = entry.parentId.toString();
  if (start === target) return true;
  const visited = new Set<string>([start]);
  let frontier = [start];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      for (const parent of await lookup.parentsOf(id)) {
        if (parent === target) return true;
        if (!visited.has(parent)) {
          visited.add(parent);
          next.push(parent);
        }
      }
    }
    frontier = next;
  }
  return false;
}

/**
 * Returns the tops of the parent chains above `parentId` (itself included when no entry has it
 * as SPIFFE ID): the IDs reached walking up that are not the SPIFFE ID of any entry. Agent IDs
 * are always tops, because no entry may take an ID under `/meshid/agent/` (see
 * entry-validation), so these are the agents whose authorised sets contain entries parented
 * to `parentId`. A chain that only loops has no top.
 */
export async function findChainTops(lookup: ParentLookup, parentId: string): Promise<string[]> {
  const visited = new Set<string>([parentId]);
  const tops: string[] = [];
  let frontier = [parentId];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const id of frontier) {
      const parents = await lookup.parentsOf(id);
      if (parents.length === 0) tops.push(id);
      for (const parent of parents) {
        if (!visited.has(parent)) {
          visited.add(parent);
          next.push(parent);
        }
      }
    }
    frontier = next;
  }
  return tops;
}
