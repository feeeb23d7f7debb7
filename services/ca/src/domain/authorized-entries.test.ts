import { randomUUID } from "node:crypto";
import { parseSpiffeId } from "@meshid/spiffe";
import type { ListEntriesParams } from "../ports";
import {
  ENTRY_ID_QUERY_CHUNK,
  type EntryGraphStore,
  PARENT_QUERY_CHUNK,
  createParentLookup,
  findAuthorizedEntries,
  findAuthorizedEntryRefs,
  findChainTops,
  isEntryAuthorized,
  loadEntries,
} from "./authorized-entries";
import type { Page, RegistrationEntry } from "./types";

const TD = "spiffe://example.org";
const AGENT_A = `${TD}/meshid/agent/join_token/a`;
const AGENT_B = `${TD}/meshid/agent/join_token/b`;

function entry(spiffeId: string, parentId: string): RegistrationEntry {
  const now = new Date(0);
  return {
    id: randomUUID(),
    spiffeId: parseSpiffeId(spiffeId),
    parentId: parseSpiffeId(parentId),
    selectors: [{ type: "unix", value: "uid:1" }],
    x509SvidTtlSeconds: 0,
    dnsNames: [],
    admin: false,
    hint: "",
    owner: "",
    revision: 1,
    createdAt: now,
    updatedAt: now,
  };
}

/** A graph store over a fixed list that counts its queries (the walks only read). */
function graphStore(entries: readonly RegistrationEntry[]) {
  const calls = {
    byParents: [] as string[][],
    bySpiffeId: [] as string[],
    refsByParents: [] as string[][],
    byIds: [] as string[][],
  };
  const store: EntryGraphStore = {
    listEntriesByParents(parentIds) {
      calls.byParents.push([...parentIds]);
      const wanted = new Set(parentIds);
      return Promise.resolve(entries.filter((e) => wanted.has(e.parentId.toString())));
    },
    listEntryRefsByParents(parentIds) {
      calls.refsByParents.push([...parentIds]);
      const wanted = new Set(parentIds);
      return Promise.resolve(
        entries
          .filter((e) => wanted.has(e.parentId.toString()))
          .map((e) => ({ id: e.id, spiffeId: e.spiffeId.toString(), revision: e.revision })),
      );
    },
    getEntriesByIds(ids) {
      calls.byIds.push([...ids]);
      const wanted = new Set(ids);
      return Promise.resolve(entries.filter((e) => wanted.has(e.id)));
    },
    listEntries(params: ListEntriesParams): Promise<Page<RegistrationEntry>> {
      calls.bySpiffeId.push(params.bySpiffeId ?? "");
      const all = entries.filter((e) => e.spiffeId.toString() === params.bySpiffeId);
      // Two items a page, to exercise paging.
      const start = Number(params.pageToken === "" ? 0 : (params.pageToken ?? 0));
      const items = all.slice(start, start + 2);
      const next = start + 2 < all.length ? String(start + 2) : "";
      return Promise.resolve({ items, nextPageToken: next });
    },
  };
  return { store, calls };
}

describe("authorized entries – downward walk", () => {
  it("authorized entries – direct children and three levels of nesting", async () => {
    const direct = entry(`${TD}/web`, AGENT_A);
    const alias = entry(`${TD}/alias/l1`, AGENT_A);
    const level2 = entry(`${TD}/alias/l2`, `${TD}/alias/l1`);
    const level3 = entry(`${TD}/deep`, `${TD}/alias/l2`);
    const other = entry(`${TD}/other`, AGENT_B);
    const unrelated = entry(`${TD}/orphan`, `${TD}/alias/none`);
    const { store, calls } = graphStore([direct, alias, level2, level3, other, unrelated]);
    const ids = (await findAuthorizedEntries(store, parseSpiffeId(AGENT_A))).map((e) => e.id);
    expect(ids.sort()).toEqual([direct.id, alias.id, level2.id, level3.id].sort());
    // One query per level (A; web + l1; l2; deep) and the last level finds nothing.
    expect(calls.byParents.length).toBe(4);
  });

  it("authorized entries – a cycle ends and each ID is queried once", async () => {
    const x = entry(`${TD}/x`, AGENT_A);
    const y = entry(`${TD}/y`, `${TD}/x`);
    const xAgain = entry(`${TD}/x`, `${TD}/y`);
    const self = entry(`${TD}/self`, `${TD}/self`);
    const { store, calls } = graphStore([x, y, xAgain, self]);
    const ids = (await findAuthorizedEntries(store, AGENT_A)).map((e) => e.id);
    expect(ids.sort()).toEqual([x.id, y.id, xAgain.id].sort());
    const queried = calls.byParents.flat();
    expect(new Set(queried).size).toBe(queried.length);
    expect(await findAuthorizedEntries(store, `${TD}/self`)).toEqual([self]);
  });

  it("authorized entries – an agent with no entries gets none", async () => {
    const { store } = graphStore([entry(`${TD}/web`, AGENT_B)]);
    expect(await findAuthorizedEntries(store, AGENT_A)).toEqual([]);
  });

  it("authorized entries – a wide level is queried in chunks", async () => {
    const aliases = Array.from({ length: PARENT_QUERY_CHUNK + 10 }, (_, i) =>
      entry(`${TD}/alias/${i}`, AGENT_A),
    );
    const leaves = aliases.map((a) => entry(`${TD}/leaf`, a.spiffeId.toString()));
    const { store, calls } = graphStore([...aliases, ...leaves]);
    const found = await findAuthorizedEntries(store, AGENT_A);
    expect(found.length).toBe(aliases.length + leaves.length);
    expect(Math.max(...calls.byParents.map((c) => c.length))).toBe(PARENT_QUERY_CHUNK);
  });
});

describe("authorized entries – refs and loading", () => {
  it("authorized entries – the refs walk follows aliases and cycles and loads no entry", async () => {
    const direct = entry(`${TD}/web`, AGENT_A);
    const x = entry(`${TD}/x`, AGENT_A);
    const y = entry(`${TD}/y`, `${TD}/x`);
    const xAgain = entry(`${TD}/x`, `${TD}/y`);
    const other = entry(`${TD}/other`, AGENT_B);
    const { store, calls } = graphStore([direct, x, y, xAgain, other]);
    const refs = await findAuthorizedEntryRefs(store, AGENT_A);
    expect(refs.map((r) => r.id).sort()).toEqual([direct.id, x.id, y.id, xAgain.id].sort());
    expect(refs.find((r) => r.id === y.id)).toEqual({
      id: y.id,
      spiffeId: `${TD}/y`,
      revision: 1,
    });
    expect(calls.byIds).toEqual([]);
    expect(calls.byParents).toEqual([]);
    const queried = calls.refsByParents.flat();
    expect(new Set(queried).size).toBe(queried.length);
    // The same walk as findAuthorizedEntries: the same entries, level by level.
    const full = await findAuthorizedEntries(store, AGENT_A);
    expect(full.map((e) => e.id)).toEqual(refs.map((r) => r.id));
    expect(calls.refsByParents.map((c) => c.length)).toEqual(calls.byParents.map((c) => c.length));
  });

  it("authorized entries – the refs walk queries a wide level in chunks", async () => {
    const aliases = Array.from({ length: PARENT_QUERY_CHUNK + 10 }, (_, i) =>
      entry(`${TD}/alias/${i}`, AGENT_A),
    );
    const leaves = aliases.map((a) => entry(`${TD}/leaf`, a.spiffeId.toString()));
    const { store, calls } = graphStore([...aliases, ...leaves]);
    const refs = await findAuthorizedEntryRefs(store, AGENT_A);
    expect(refs.length).toBe(aliases.length + leaves.length);
    expect(Math.max(...calls.refsByParents.map((c) => c.length))).toBe(PARENT_QUERY_CHUNK);
  });

  it("authorized entries – loadEntries chunks, keeps the order of the ids and skips missing ones", async () => {
    const entries = Array.from({ length: ENTRY_ID_QUERY_CHUNK + 7 }, (_, i) =>
      entry(`${TD}/w/${i}`, AGENT_A),
    );
    const { store, calls } = graphStore(entries);
    const wanted = [...entries].reverse().map((e) => e.id);
    const missing = randomUUID();
    wanted.splice(3, 0, missing);
    const loaded = await loadEntries(store, wanted);
    expect(loaded.map((e) => e.id)).toEqual(wanted.filter((id) => id !== missing));
    expect(calls.byIds.map((c) => c.length)).toEqual([ENTRY_ID_QUERY_CHUNK, 8]);
    expect(await loadEntries(store, [])).toEqual([]);
    expect(calls.byIds).toHaveLength(2);
  });
});

describe("authorized entries – upward walk", () => {
  it("authorized entries – a direct child needs no store read", async () => {
    const { store, calls } = graphStore([]);
    const web = entry(`${TD}/web`, AGENT_A);
    expect(await isEntryAuthorized(createParentLookup(store), AGENT_A, web)).toBe(true);
    expect(calls.bySpiffeId).toEqual([]);
  });

  it("authorized entries – three levels up, and not for another agent", async () => {
    const l1 = entry(`${TD}/alias/l1`, AGENT_A);
    const l2 = entry(`${TD}/alias/l2`, `${TD}/alias/l1`);
    const deep = entry(`${TD}/deep`, `${TD}/alias/l2`);
    const { store } = graphStore([l1, l2, deep]);
    const lookup = createParentLookup(store);
    expect(await isEntryAuthorized(lookup, parseSpiffeId(AGENT_A), deep)).toBe(true);
    expect(await isEntryAuthorized(lookup, AGENT_B, deep)).toBe(false);
  });

  it("authorized entries – a cycle without the agent ends with false", async () => {
    const x = entry(`${TD}/x`, `${TD}/y`);
    const y = entry(`${TD}/y`, `${TD}/x`);
    const { store } = graphStore([x, y]);
    expect(await isEntryAuthorized(createParentLookup(store), AGENT_A, x)).toBe(false);
  });

  it("authorized entries – several entries share a SPIFFE ID (paged lookups)", async () => {
    const shared = [AGENT_B, `${TD}/p1`, `${TD}/p2`, AGENT_A].map((p) => entry(`${TD}/alias`, p));
    const leaf = entry(`${TD}/leaf`, `${TD}/alias`);
    const { store } = graphStore([...shared, leaf]);
    const lookup = createParentLookup(store);
    expect(await isEntryAuthorized(lookup, AGENT_A, leaf)).toBe(true);
    expect(await findChainTops(lookup, `${TD}/alias`)).toEqual(
      expect.arrayContaining([AGENT_A, AGENT_B, `${TD}/p1`, `${TD}/p2`]),
    );
  });

  it("authorized entries – chain tops: the agent above nested parents, none for a pure loop", async () => {
    const l1 = entry(`${TD}/alias/l1`, AGENT_A);
    const l2 = entry(`${TD}/alias/l2`, `${TD}/alias/l1`);
    const x = entry(`${TD}/x`, `${TD}/y`);
    const y = entry(`${TD}/y`, `${TD}/x`);
    const { store, calls } = graphStore([l1, l2, x, y]);
    const lookup = createParentLookup(store);
    expect(await findChainTops(lookup, `${TD}/alias/l2`)).toEqual([AGENT_A]);
    expect(await findChainTops(lookup, AGENT_B)).toEqual([AGENT_B]);
    expect(await findChainTops(lookup, `${TD}/x`)).toEqual([]);
    // The lookup caches: a second walk over the same IDs reads nothing new.
    const before = calls.bySpiffeId.length;
    await findChainTops(lookup, `${TD}/alias/l2`);
    expect(calls.bySpiffeId.length).toBe(before);
  });
});
