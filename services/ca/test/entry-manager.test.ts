// EntryManager against the real SQLite datastore (in memory): batch CRUD with per-item results,
// entry events and per-agent wake-ups, transitive authorisation, and delta sync at 10k entries.
import { MeshidError } from "@meshid/errors";
import {
  type EventPayload,
  type EventType,
  type PublishEventOptions,
  agentWakeupSubject,
} from "@meshid/events";
import { type Selector, type SpiffeId, parseSpiffeId } from "@meshid/spiffe";
import { type Logger, createNoopLogger } from "@meshid/telemetry";
import { createSqliteDatastore } from "../src/adapters/sqlite-datastore";
import type { EntryManager, SyncPage } from "../src/api/deps";
import { type EntryManagerLimits, createEntryManager } from "../src/domain/entry-manager";
import type {
  BatchItemResult,
  NewRegistrationEntry,
  RegistrationEntry,
  RegistrationEntryUpdate,
} from "../src/domain/types";
import type { Datastore, EventSink } from "../src/ports";

const TD = "example.org";
const AGENT_A = parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/agent-a`);
const AGENT_B = parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/agent-b`);
const WAKE_A = agentWakeupSubject(AGENT_A.toString());
const WAKE_B = agentWakeupSubject(AGENT_B.toString());

interface RecordedEvent {
  readonly type: EventType;
  readonly payload: unknown;
  readonly options: PublishEventOptions | undefined;
}

/** An EventSink that records every event, and fails on demand. */
function recordingSink() {
  const events: RecordedEvent[] = [];
  const state = { fail: false };
  const sink: EventSink = {
    publish<K extends EventType>(type: K, payload: EventPayload<K>, options?: PublishEventOptions) {
      if (state.fail) {
        return Promise.reject(new MeshidError("unavailable", "events.publish.failed", "down"));
      }
      events.push({ type, payload, options });
      return Promise.resolve({ id: String(events.length) });
    },
  };
  return {
    sink,
    state,
    events,
    ofType: (type: EventType) => events.filter((e) => e.type === type),
    wakeups: () =>
      events
        .filter((e) => e.type === "agent.wakeup")
        .map((e) => ({ subject: e.options?.natsSubject, payload: e.payload })),
    clear: () => events.splice(0, events.length),
  };
}

function sel(text: string): Selector {
  const colon = text.indexOf(":");
  return { type: text.slice(0, colon), value: text.slice(colon + 1) };
}

function newEntry(
  path: string,
  parent: SpiffeId | string,
  over: Partial<NewRegistrationEntry> = {},
): NewRegistrationEntry {
  return {
    spiffeId: parseSpiffeId(`spiffe://${TD}${path}`),
    parentId: typeof parent === "string" ? parseSpiffeId(parent) : parent,
    selectors: [sel(`k8s:pod-name:${path.slice(1).replace(/\//g, "-")}`)],
    x509SvidTtlSeconds: 0,
    dnsNames: [],
    admin: false,
    hint: "",
    owner: "registrar",
    ...over,
  };
}

function toUpdate(e: RegistrationEntry, over: Partial<RegistrationEntryUpdate> = {}) {
  const { revision: _r, createdAt: _c, updatedAt: _u, ...fields } = e;
  return { ...fields, ...over };
}

function values<T>(results: readonly BatchItemResult<T>[]): T[] {
  return results.map((r) => {
    if (!r.ok) throw r.error;
    return r.value;
  });
}

async function collect(it: AsyncIterable<SyncPage>): Promise<SyncPage[]> {
  const pages: SyncPage[] = [];
  for await (const page of it) pages.push(page);
  return pages;
}

/** Sync result: entries sent, authorised ids (union of the pages), revision and pages. */
async function sync(m: EntryManager, agent: SpiffeId, since = 0, pageSize?: number) {
  const pages = await collect(m.syncAuthorized(agent, since, pageSize));
  const last = pages[pages.length - 1]!;
  return {
    pages,
    entries: pages.flatMap((p) => p.entries),
    ids: new Set(pages.flatMap((p) => p.authorizedEntryIds)),
    revision: last.revision,
  };
}

/**
 * Wraps `store` (the real SQLite store) and counts, per method, the full RegistrationEntry
 * objects it returns: the rows a call turned into entries (selectors parsed, SPIFFE IDs,
 * dates). Refs and other results are not counted.
 */
function countingStore(store: Datastore): { store: Datastore; fullEntries: Map<string, number> } {
  const fullEntries = new Map<string, number>();
  const count = (method: string, n: number): void => {
    fullEntries.set(method, (fullEntries.get(method) ?? 0) + n);
  };
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      const method = String(property);
      return async (...args: unknown[]) => {
        const result: unknown = await (value as (...a: unknown[]) => Promise<unknown>).apply(
          target,
          args,
        );
        if (method === "getEntry" && result !== undefined) count(method, 1);
        if (method === "listEntries") count(method, (result as { items: unknown[] }).items.length);
        if (method === "listEntriesByParents" || method === "getEntriesByIds") {
          count(method, (result as unknown[]).length);
        }
        return result;
      };
    },
  });
  return { store: wrapped, fullEntries };
}

describe("entry manager (SQLite)", () => {
  let store: Datastore;
  let rec: ReturnType<typeof recordingSink>;
  let warnings: unknown[];
  let m: EntryManager;

  function manager(limits?: { maxBatchSize?: number }): EntryManager {
    const noop = createNoopLogger();
    const logger: Logger = {
      ...noop,
      warn: (obj: unknown) => {
        warnings.push(obj);
      },
      child: () => logger,
    };
    return createEntryManager({ trustDomain: TD, store, events: rec.sink, logger, limits });
  }

  beforeEach(async () => {
    store = await createSqliteDatastore({ path: ":memory:" });
    rec = recordingSink();
    warnings = [];
    m = manager();
  });

  afterEach(async () => {
    await store.close();
  });

  it("entry manager – create publishes entry.created per entry and one wake-up per agent", async () => {
    const created = values(
      await m.batchCreate([
        newEntry("/a1", AGENT_A),
        newEntry("/a2", AGENT_A),
        newEntry("/a3", AGENT_A),
        newEntry("/b1", AGENT_B),
      ]),
    );
    const revision = await store.getRevision();
    expect(revision).toBe(4);
    const createdEvents = rec.ofType("entry.created");
    expect(createdEvents.map((e) => e.payload)).toEqual(
      created.map((e) => ({
        entryId: e.id,
        spiffeId: { trustDomain: TD, path: e.spiffeId.path },
        parentId: { trustDomain: TD, path: e.parentId.path },
        revision: e.revision,
        owner: "registrar",
      })),
    );
    expect(createdEvents.map((e) => e.options?.subject)).toEqual(created.map((e) => e.id));
    expect(rec.wakeups()).toEqual([
      { subject: WAKE_A, payload: { revision } },
      { subject: WAKE_B, payload: { revision } },
    ]);
    // Entry events come before the wake-ups, so an agent that syncs on the wake-up sees them.
    expect(rec.events.map((e) => e.type)).toEqual([
      ...Array<string>(4).fill("entry.created"),
      "agent.wakeup",
      "agent.wakeup",
    ]);
  });

  it("entry manager – update publishes entry.updated and wakes the agent", async () => {
    const [web] = values(await m.batchCreate([newEntry("/web", AGENT_A)]));
    rec.clear();
    const [after] = values(
      await m.batchUpdate([toUpdate(web!, { dnsNames: ["web.default.svc"], hint: "web" })]),
    );
    expect(after).toMatchObject({ id: web!.id, dnsNames: ["web.default.svc"], hint: "web" });
    expect(after!.revision).toBeGreaterThan(web!.revision);
    expect(await m.get(web!.id)).toEqual(after);
    expect(rec.ofType("entry.updated").map((e) => e.payload)).toEqual([
      expect.objectContaining({ entryId: web!.id, revision: after!.revision }),
    ]);
    expect(rec.wakeups()).toEqual([{ subject: WAKE_A, payload: { revision: after!.revision } }]);
  });

  it("entry manager – moving an entry from agent A to agent B wakes both", async () => {
    const [web] = values(await m.batchCreate([newEntry("/web", AGENT_A)]));
    rec.clear();
    values(await m.batchUpdate([toUpdate(web!, { parentId: AGENT_B })]));
    expect(new Set(rec.wakeups().map((w) => w.subject))).toEqual(new Set([WAKE_A, WAKE_B]));
    expect(rec.wakeups()).toHaveLength(2);
    expect((await sync(m, AGENT_A)).ids.has(web!.id)).toBe(false);
    expect((await sync(m, AGENT_B)).ids.has(web!.id)).toBe(true);
  });

  it("entry manager – delete publishes entry.deleted with the deletion revision and wakes the agent", async () => {
    const [web] = values(await m.batchCreate([newEntry("/web", AGENT_A)]));
    rec.clear();
    const [deleted] = values(await m.batchDelete([web!.id]));
    const revision = await store.getRevision();
    expect(deleted!.id).toBe(web!.id);
    expect(rec.ofType("entry.deleted").map((e) => e.payload)).toEqual([
      expect.objectContaining({ entryId: web!.id, revision }),
    ]);
    expect(rec.wakeups()).toEqual([{ subject: WAKE_A, payload: { revision } }]);
    await expect(m.get(web!.id)).rejects.toMatchObject({
      code: "ca.entry.not_found",
      kind: "not_found",
    });
  });

  it("entry manager – a batch over the limit changes nothing and publishes nothing", async () => {
    const [web] = values(await m.batchCreate([newEntry("/web", AGENT_A)]));
    rec.clear();
    const before = await store.getRevision();
    const tooMany = Array.from({ length: 501 }, (_, i) => newEntry(`/w${i}`, AGENT_A));
    await expect(m.batchCreate(tooMany)).rejects.toMatchObject({
      code: "ca.batch.too_large",
      kind: "resource_exhausted",
    });
    const small = manager({ maxBatchSize: 2 });
    await expect(
      small.batchUpdate([toUpdate(web!), toUpdate(web!), toUpdate(web!)]),
    ).rejects.toMatchObject({ code: "ca.batch.too_large" });
    await expect(small.batchDelete([web!.id, web!.id, web!.id])).rejects.toMatchObject({
      code: "ca.batch.too_large",
    });
    expect(await store.getRevision()).toBe(before);
    expect(await m.get(web!.id)).toEqual(web);
    expect((await m.list({})).items).toHaveLength(1);
    expect(rec.events).toEqual([]);
    // Exactly the limit is fine.
    expect(values(await m.batchCreate(tooMany.slice(0, 500)))).toHaveLength(500);
  });

  it("entry manager – per-item errors fail alone, in input order, and leave the store unchanged for them", async () => {
    const results = await m.batchCreate([
      newEntry("/ok1", AGENT_A),
      newEntry("/bad", AGENT_A, { selectors: [sel("docker:label:a:b")] }),
      newEntry("/ok1", AGENT_A),
      newEntry("/foreign", `spiffe://other.org/meshid/agent/x`),
      newEntry("/ok2", AGENT_B),
    ]);
    expect(results.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "spiffe.selector.unknown_type",
      "ca.entry.duplicate",
      "ca.entry.parent_foreign_trust_domain",
      "ok",
    ]);
    const [ok1, , , , ok2] = results;
    const entries = (await m.list({})).items;
    expect(entries.map((e) => e.spiffeId.path).sort()).toEqual(["/ok1", "/ok2"]);
    expect(rec.ofType("entry.created")).toHaveLength(2);
    expect(await store.getRevision()).toBe(2);

    // Updates: one good, one invalid, one unknown id; the invalid and unknown change nothing.
    const e1 = ok1!.ok ? ok1!.value : undefined;
    const e2 = ok2!.ok ? ok2!.value : undefined;
    rec.clear();
    const updates = await m.batchUpdate([
      toUpdate(e1!, { hint: "changed" }),
      toUpdate(e2!, { x509SvidTtlSeconds: -5 }),
      toUpdate(e2!, { id: "0f8fad5b-d9cb-469f-a165-70867728950e" }),
    ]);
    expect(updates.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ok",
      "ca.entry.ttl",
      "ca.entry.not_found",
    ]);
    expect(await m.get(e2!.id)).toEqual(e2);
    expect(rec.ofType("entry.updated")).toHaveLength(1);
    expect(rec.wakeups().map((w) => w.subject)).toEqual([WAKE_A]);

    // Deletes: a non-UUID and an unknown id fail; the known one goes.
    rec.clear();
    const deletes = await m.batchDelete(["nope", e2!.id, "0f8fad5b-d9cb-469f-a165-70867728950e"]);
    expect(deletes.map((r) => (r.ok ? "ok" : r.error.code))).toEqual([
      "ca.entry.id_invalid",
      "ok",
      "ca.entry.not_found",
    ]);
    expect((await m.list({})).items.map((e) => e.id)).toEqual([e1!.id]);
    expect(rec.wakeups().map((w) => w.subject)).toEqual([WAKE_B]);
  });

  it("entry manager – transitive authorisation three levels deep, wake-ups reach the agent at the top", async () => {
    const [l1] = values(await m.batchCreate([newEntry("/alias/l1", AGENT_A)]));
    const [l2] = values(await m.batchCreate([newEntry("/alias/l2", l1!.spiffeId)]));
    rec.clear();
    const [deep] = values(await m.batchCreate([newEntry("/deep", l2!.spiffeId)]));
    // The wake-up goes to agent A, the top of deep → l2 → l1 → A, not to the alias IDs.
    expect(rec.wakeups().map((w) => w.subject)).toEqual([WAKE_A]);
    expect(await m.isAuthorized(AGENT_A, deep!)).toBe(true);
    expect(await m.isAuthorized(AGENT_B, deep!)).toBe(false);
    const a = await sync(m, AGENT_A);
    expect([...a.ids].sort()).toEqual([l1!.id, l2!.id, deep!.id].sort());
    expect((await sync(m, AGENT_B)).ids.size).toBe(0);

    // Moving the middle alias to agent B moves its subtree: both agents are woken.
    rec.clear();
    values(await m.batchUpdate([toUpdate(l2!, { parentId: AGENT_B })]));
    expect(new Set(rec.wakeups().map((w) => w.subject))).toEqual(new Set([WAKE_A, WAKE_B]));
    expect([...(await sync(m, AGENT_B)).ids].sort()).toEqual([l2!.id, deep!.id].sort());
    expect([...(await sync(m, AGENT_A)).ids]).toEqual([l1!.id]);
    expect(await m.isAuthorized(AGENT_A, deep!)).toBe(false);
    expect(await m.isAuthorized(AGENT_B, deep!)).toBe(true);
  });

  it("entry manager – a parent cycle neither loops nor leaks", async () => {
    const X = `spiffe://${TD}/cycle/x`;
    const Y = `spiffe://${TD}/cycle/y`;
    const [x, y, x2] = values(
      await m.batchCreate([
        newEntry("/cycle/x", AGENT_A),
        newEntry("/cycle/y", X),
        newEntry("/cycle/x", Y),
      ]),
    );
    const [lonely1, lonely2] = values(
      await m.batchCreate([
        newEntry("/loop/p", `spiffe://${TD}/loop/q`),
        newEntry("/loop/q", `spiffe://${TD}/loop/p`),
      ]),
    );
    const a = await sync(m, AGENT_A);
    expect([...a.ids].sort()).toEqual([x!.id, y!.id, x2!.id].sort());
    expect(await m.isAuthorized(AGENT_A, x2!)).toBe(true);
    expect(await m.isAuthorized(AGENT_A, lonely1!)).toBe(false);
    expect(await m.isAuthorized(AGENT_B, lonely2!)).toBe(false);
    // A loop with no agent above it wakes nobody; updates inside it still succeed.
    rec.clear();
    values(await m.batchUpdate([toUpdate(lonely1!, { hint: "still here" })]));
    expect(rec.wakeups()).toEqual([]);
  });

  it("entry manager – agent A never sees agent B's entries in a sync", async () => {
    values(
      await m.batchCreate([
        newEntry("/a1", AGENT_A),
        newEntry("/b1", AGENT_B),
        newEntry("/b2", AGENT_B),
        newEntry("/alias-b", AGENT_B),
        newEntry("/under-alias-b", `spiffe://${TD}/alias-b`),
      ]),
    );
    const bIds = new Set((await sync(m, AGENT_B)).entries.map((e) => e.id));
    expect(bIds.size).toBe(4);
    const a = await sync(m, AGENT_A);
    expect(a.entries.map((e) => e.spiffeId.path)).toEqual(["/a1"]);
    for (const id of [...a.ids, ...a.entries.map((e) => e.id)]) expect(bIds.has(id)).toBe(false);
    for (const page of a.pages) {
      for (const e of page.entries) expect(e.parentId.equals(AGENT_A)).toBe(true);
    }
  });

  it("entry manager – a failed publish is logged and never fails the call", async () => {
    rec.state.fail = true;
    const results = await m.batchCreate([newEntry("/web", AGENT_A)]);
    expect(results[0]?.ok).toBe(true);
    // One entry.created and one wake-up failed, each logged.
    expect(warnings).toHaveLength(2);
    expect((await m.list({})).items).toHaveLength(1);
  });

  it("entry manager – get and list", async () => {
    const [web] = values(await m.batchCreate([newEntry("/web", AGENT_A, { owner: "ops" })]));
    values(await m.batchCreate([newEntry("/api", AGENT_A)]));
    expect(await m.get(web!.id)).toEqual(web);
    expect((await m.list({ byOwner: "ops" })).items.map((e) => e.id)).toEqual([web!.id]);
    await expect(m.get("0f8fad5b-d9cb-469f-a165-70867728950e")).rejects.toMatchObject({
      code: "ca.entry.not_found",
    });
  });

  it("entry manager – delta sync across 10,000 entries", async () => {
    const all: RegistrationEntry[] = [];
    for (let batch = 0; batch < 20; batch++) {
      const items = Array.from({ length: 500 }, (_, i) => {
        const n = batch * 500 + i;
        // 7 in 10 entries belong to agent A, the rest to agent B.
        return newEntry(`/ns/n${n}/sa/web`, n % 10 < 7 ? AGENT_A : AGENT_B);
      });
      all.push(...values(await m.batchCreate(items)));
    }
    expect(all).toHaveLength(10_000);
    const ofA = all.filter((e) => e.parentId.equals(AGENT_A));
    const ofB = all.filter((e) => e.parentId.equals(AGENT_B));
    expect(ofA).toHaveLength(7000);

    const full = await sync(m, AGENT_A);
    expect(full.revision).toBe(10_000);
    expect(full.pages).toHaveLength(14);
    expect(full.pages.every((p) => p.entries.length <= 500)).toBe(true);
    expect(full.pages.map((p) => p.done)).toEqual([...Array<boolean>(13).fill(false), true]);
    expect(new Set(full.entries.map((e) => e.id))).toEqual(new Set(ofA.map((e) => e.id)));
    expect(full.ids).toEqual(new Set(ofA.map((e) => e.id)));

    // Change 10 of A's entries, delete 5 others, and touch some of B's (A must not see them).
    const changed = ofA.slice(100, 110);
    const removed = ofA.slice(200, 205);
    values(await m.batchUpdate(changed.map((e) => toUpdate(e, { hint: "v2" }))));
    values(await m.batchDelete(removed.map((e) => e.id)));
    values(await m.batchUpdate(ofB.slice(0, 3).map((e) => toUpdate(e, { hint: "b2" }))));

    const delta = await sync(m, AGENT_A, full.revision);
    expect(delta.pages).toHaveLength(1);
    expect(delta.entries.map((e) => e.id).sort()).toEqual(changed.map((e) => e.id).sort());
    expect(delta.entries.every((e) => e.hint === "v2")).toBe(true);
    expect(delta.ids.size).toBe(6995);
    for (const e of removed) expect(delta.ids.has(e.id)).toBe(false);
    expect(delta.revision).toBe(full.revision + 10 + 5 + 3);

    // Nothing changed since: an empty delta that still lists every authorised id.
    const again = await sync(m, AGENT_A, delta.revision);
    expect(again.entries).toEqual([]);
    expect(again.ids).toEqual(delta.ids);
  });

  it("entry manager – a delta sync with one change among 1,000 builds only that entry, and sends every id", async () => {
    const counted = countingStore(store);
    const cm = createEntryManager({
      trustDomain: TD,
      store: counted.store,
      events: rec.sink,
      logger: createNoopLogger(),
    });
    // 1,000 entries for A (the alias and 999 more, 400 of them under the alias: A → alias →
    // entry), and 200 of B.
    const [alias] = values(await cm.batchCreate([newEntry("/node-alias", AGENT_A)]));
    const mine: RegistrationEntry[] = [alias!];
    // 999 more in batches of at most 500: two in five under the alias.
    for (let start = 0; start < 999; start += 500) {
      const items = Array.from({ length: Math.min(500, 999 - start) }, (_, i) => start + i).map(
        (n) => newEntry(`/ns/n${n}/sa/web`, n % 5 < 2 ? alias!.spiffeId : AGENT_A),
      );
      mine.push(...values(await cm.batchCreate(items)));
    }
    const ofB = values(
      await cm.batchCreate(
        Array.from({ length: 200 }, (_, i) => newEntry(`/ns/b${i}/sa/web`, AGENT_B)),
      ),
    );
    expect(mine).toHaveLength(1000);
    const allIds = new Set(mine.map((e) => e.id));

    counted.fullEntries.clear();
    const full = await sync(cm, AGENT_A);
    expect(full.ids).toEqual(allIds);
    expect(full.entries).toHaveLength(1000);
    // A full sync builds every authorised entry once (one walk over full rows), none of B's.
    expect([...counted.fullEntries.entries()]).toEqual([["listEntriesByParents", 1000]]);

    const target = mine[500]!;
    const [changed] = values(await cm.batchUpdate([toUpdate(target, { hint: "changed" })]));
    // A change outside A's set neither reaches A's delta nor gets built for it.
    values(await cm.batchUpdate([toUpdate(ofB[0]!, { hint: "b changed" })]));
    counted.fullEntries.clear();
    const delta = await sync(cm, AGENT_A, full.revision);
    expect(delta.entries).toEqual([changed]);
    expect(delta.ids).toEqual(allIds);
    expect(delta.revision).toBe(changed!.revision + 1);
    // Only the changed row became a full entry; the other 999 were walked as refs.
    expect([...counted.fullEntries.entries()]).toEqual([["getEntriesByIds", 1]]);

    // An entry under the alias changes: still exactly one built.
    const nested = mine.find((e) => e.parentId.equals(alias!.spiffeId))!;
    const [nestedChanged] = values(await cm.batchUpdate([toUpdate(nested, { hint: "nested" })]));
    counted.fullEntries.clear();
    const delta2 = await sync(cm, AGENT_A, delta.revision);
    expect(delta2.entries).toEqual([nestedChanged]);
    expect(delta2.ids).toEqual(allIds);
    expect([...counted.fullEntries.entries()]).toEqual([["getEntriesByIds", 1]]);

    // Nothing changed: no full entry at all.
    counted.fullEntries.clear();
    const empty = await sync(cm, AGENT_A, delta2.revision);
    expect(empty.entries).toEqual([]);
    expect(empty.ids).toEqual(allIds);
    expect(counted.fullEntries.size).toBe(0);
  });

  it("entry manager – a changed entry deleted during a delta sync is left out of entries and ids", async () => {
    const [old, keep, gone] = values(
      await m.batchCreate([
        newEntry("/old", AGENT_A),
        newEntry("/keep", AGENT_A),
        newEntry("/gone", AGENT_A),
      ]),
    );
    const since = old!.revision;
    // The store loses `gone` between the walk (refs) and the load of the changed entries.
    const racing: Datastore = new Proxy(store, {
      get(target, property, receiver) {
        if (property === "getEntriesByIds") {
          return async (ids: readonly string[]) => {
            await target.deleteEntries([gone!.id]);
            return target.getEntriesByIds(ids);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? (value as () => unknown).bind(target) : value;
      },
    });
    const rm = createEntryManager({
      trustDomain: TD,
      store: racing,
      events: rec.sink,
      logger: createNoopLogger(),
    });
    const result = await sync(rm, AGENT_A, since);
    expect(result.entries.map((e) => e.id)).toEqual([keep!.id]);
    expect([...result.ids].sort()).toEqual([old!.id, keep!.id].sort());
    // The revision was read before the walk, so the next delta still sees the deletion.
    expect(result.revision).toBeLessThan(await store.getRevision());
  });
});

/** Wraps `store` (the real SQLite store) and counts the calls of each method. */
function callCountingStore(store: Datastore): { store: Datastore; calls: Map<string, number> } {
  const calls = new Map<string, number>();
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      const method = String(property);
      return (...args: unknown[]) => {
        calls.set(method, (calls.get(method) ?? 0) + 1);
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
  return { store: wrapped, calls };
}

describe("entry manager – delta sync without the ID list (SQLite)", () => {
  let store: Datastore;
  let counted: ReturnType<typeof callCountingStore>;
  let m: EntryManager;

  function manager(limits?: EntryManagerLimits): EntryManager {
    return createEntryManager({
      trustDomain: TD,
      store: counted.store,
      events: recordingSink().sink,
      logger: createNoopLogger(),
      ...(limits === undefined ? {} : { limits }),
    });
  }

  /** A sync as a new agent asks for it (omitUnchangedIds), or as an old one (`omit` false). */
  async function delta(mgr: EntryManager, agent: SpiffeId, since: number, omit = true) {
    const pages = await collect(
      mgr.syncAuthorized(agent, since, undefined, { omitUnchangedIds: omit }),
    );
    const last = pages[pages.length - 1]!;
    expect(pages.slice(0, -1).every((p) => !p.authorizedIdsOmitted && !p.done)).toBe(true);
    return {
      entries: pages.flatMap((p) => p.entries),
      ids: new Set(pages.flatMap((p) => p.authorizedEntryIds)),
      omitted: last.authorizedIdsOmitted,
      revision: last.revision,
    };
  }

  /** A's set: an alias with one entry under it, and two entries parented to A; one of B. */
  async function seed() {
    const [alias] = values(await m.batchCreate([newEntry("/node-alias", AGENT_A)]));
    const [nested, a1, a2, b1] = values(
      await m.batchCreate([
        newEntry("/nested", alias!.spiffeId),
        newEntry("/a1", AGENT_A),
        newEntry("/a2", AGENT_A),
        newEntry("/b1", AGENT_B),
      ]),
    );
    const full = await delta(m, AGENT_A, 0);
    return { alias: alias!, nested: nested!, a1: a1!, a2: a2!, b1: b1!, full };
  }

  beforeEach(async () => {
    store = await createSqliteDatastore({ path: ":memory:" });
    counted = callCountingStore(store);
    m = manager();
  });

  afterEach(async () => {
    await store.close();
  });

  it("sync without ids – since 0 is always a full sync with every id, even when omission is asked", async () => {
    const { alias, nested, a1, a2, full } = await seed();
    expect(full.omitted).toBe(false);
    expect(full.ids).toEqual(new Set([alias.id, nested.id, a1.id, a2.id]));
    expect(full.entries).toHaveLength(4);
  });

  it("sync without ids – a delta after plain creates and updates returns only A's changes, no ids, and walks nothing", async () => {
    const { alias, nested, full } = await seed();
    const [created] = values(
      await m.batchCreate([newEntry("/a3", AGENT_A), newEntry("/b2", AGENT_B)]),
    );
    const [underAlias] = values(await m.batchCreate([newEntry("/nested2", alias.spiffeId)]));
    const [nestedChanged] = values(await m.batchUpdate([toUpdate(nested, { hint: "v2" })]));
    counted.calls.clear();
    const d = await delta(m, AGENT_A, full.revision);
    expect(d.omitted).toBe(true);
    expect(d.ids.size).toBe(0);
    expect(d.entries).toEqual([created, underAlias, nestedChanged]);
    expect(d.revision).toBe(await store.getRevision());
    // No walk over A's set: one read of the changes, one parent lookup for the alias, none
    // for /b2 (parented to agent B, so B's alone).
    expect(counted.calls.get("listEntryRefsByParents")).toBeUndefined();
    expect(counted.calls.get("listEntriesByParents")).toBeUndefined();
    expect(counted.calls.get("listEntriesChangedSince")).toBe(1);
    expect(counted.calls.get("listEntries")).toBe(1);

    // Nothing changed since: an empty page that still says "omitted".
    const again = await delta(m, AGENT_A, d.revision);
    expect(again).toEqual({ entries: [], ids: new Set(), omitted: true, revision: d.revision });
  });

  it("sync without ids – after a delete the ids are sent, without the deleted entry", async () => {
    const { alias, nested, a1, a2, full } = await seed();
    values(await m.batchDelete([a2.id]));
    const d = await delta(m, AGENT_A, full.revision);
    expect(d.omitted).toBe(false);
    expect(d.ids).toEqual(new Set([alias.id, nested.id, a1.id]));
    expect(d.entries).toEqual([]);
  });

  it("sync without ids – after a re-parent the ids are sent, on both sides", async () => {
    const { alias, nested, a1, a2, b1, full } = await seed();
    const fullB = await delta(m, AGENT_B, 0);
    const [moved] = values(await m.batchUpdate([toUpdate(a1, { parentId: AGENT_B })]));
    const d = await delta(m, AGENT_A, full.revision);
    expect(d.omitted).toBe(false);
    expect(d.ids).toEqual(new Set([alias.id, nested.id, a2.id]));
    const dB = await delta(m, AGENT_B, fullB.revision);
    expect(dB.omitted).toBe(false);
    expect(dB.ids).toEqual(new Set([b1.id, a1.id]));
    expect(dB.entries).toEqual([moved]);
  });

  it("sync without ids – after a SPIFFE ID change the ids are sent, without the orphaned entries", async () => {
    const { alias, a1, a2, full } = await seed();
    const [renamed] = values(
      await m.batchUpdate([
        toUpdate(alias, { spiffeId: parseSpiffeId(`spiffe://${TD}/node-alias-2`) }),
      ]),
    );
    const d = await delta(m, AGENT_A, full.revision);
    expect(d.omitted).toBe(false);
    expect(d.ids).toEqual(new Set([alias.id, a1.id, a2.id]));
    expect(d.entries).toEqual([renamed]);
  });

  it("sync without ids – an alias adopting existing entries sends the ids, adopted ones included", async () => {
    const { alias, nested, a1, a2, full } = await seed();
    // Entries waiting under an alias no entry has yet: in nobody's set.
    const waiting = values(
      await m.batchCreate([
        newEntry("/w1", `spiffe://${TD}/late-alias`),
        newEntry("/w2", `spiffe://${TD}/late-alias`),
      ]),
    );
    const before = await delta(m, AGENT_A, full.revision);
    expect(before.omitted).toBe(true);
    expect(before.entries).toEqual([]);
    const [late] = values(await m.batchCreate([newEntry("/late-alias", AGENT_A)]));
    const d = await delta(m, AGENT_A, before.revision);
    expect(d.omitted).toBe(false);
    expect(d.ids).toEqual(
      new Set([alias.id, nested.id, a1.id, a2.id, late!.id, ...waiting.map((e) => e.id)]),
    );
    expect(d.entries).toEqual([late]);
  });

  it("sync without ids – an old agent (no omitUnchangedIds) always gets the ids", async () => {
    const { alias, nested, a1, a2, full } = await seed();
    const [created] = values(await m.batchCreate([newEntry("/a3", AGENT_A)]));
    const d = await delta(m, AGENT_A, full.revision, false);
    expect(d.omitted).toBe(false);
    expect(d.ids).toEqual(new Set([alias.id, nested.id, a1.id, a2.id, created!.id]));
    expect(d.entries).toEqual([created]);
    const plain = await sync(m, AGENT_A, full.revision);
    expect(plain.ids).toEqual(d.ids);
    expect(plain.pages.every((p) => !p.authorizedIdsOmitted)).toBe(true);
  });

  it("sync without ids – more store-wide changes than maxChangesWithoutIds fall back to the ids", async () => {
    const { alias, nested, a1, a2, full } = await seed();
    const small = manager({ maxChangesWithoutIds: 3 });
    // Three changes (one of them B's): still without ids.
    const three = values(
      await m.batchCreate([
        newEntry("/a3", AGENT_A),
        newEntry("/a4", AGENT_A),
        newEntry("/b2", AGENT_B),
      ]),
    );
    const d3 = await delta(small, AGENT_A, full.revision);
    expect(d3.omitted).toBe(true);
    expect(d3.entries).toEqual(three.slice(0, 2));
    // A fourth: the limit is passed, the sync walks A's set and sends every id.
    const [fourth] = values(await m.batchCreate([newEntry("/b3", AGENT_B)]));
    const d4 = await delta(small, AGENT_A, full.revision);
    expect(d4.omitted).toBe(false);
    expect(d4.entries).toEqual(three.slice(0, 2));
    expect(d4.ids).toEqual(
      new Set([alias.id, nested.id, a1.id, a2.id, three[0]!.id, three[1]!.id]),
    );
    expect(fourth!.parentId.equals(AGENT_B)).toBe(true);
  });

  it("sync without ids – an agent ahead of the store (a restored backup) gets the ids", async () => {
    const { full } = await seed();
    const d = await delta(m, AGENT_A, full.revision + 10);
    expect(d.omitted).toBe(false);
    expect(d.ids.size).toBe(4);
  });

  it("sync without ids – changes racing the sync are sent again, and a racing delete brings the ids back", async () => {
    const { alias, nested, a1, a2, full } = await seed();
    const [early] = values(await m.batchCreate([newEntry("/early", AGENT_A)]));
    let racer: RegistrationEntry | undefined;
    const racing: Datastore = new Proxy(store, {
      get(target, property, receiver) {
        if (property === "listEntriesChangedSince") {
          return async (revision: number, limit: number) => {
            // After the sync read the revisions: one plain create and one delete.
            [racer] = values(await target.createEntries([newEntry("/racer", AGENT_A)]));
            values(await target.deleteEntries([a2.id]));
            return target.listEntriesChangedSince(revision, limit);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === "function" ? (value as () => unknown).bind(target) : value;
      },
    });
    const rm = createEntryManager({
      trustDomain: TD,
      store: racing,
      events: recordingSink().sink,
      logger: createNoopLogger(),
    });
    const d = await delta(rm, AGENT_A, full.revision);
    // The revisions were read before the race: no graph change yet, so no ids.
    expect(d.omitted).toBe(true);
    expect(d.revision).toBe(early!.revision);
    expect(d.entries.map((e) => e.id)).toContain(early!.id);

    const next = await delta(m, AGENT_A, d.revision);
    expect(next.omitted).toBe(false);
    expect(next.entries).toEqual([racer]);
    expect(next.ids).toEqual(new Set([alias.id, nested.id, a1.id, early!.id, racer!.id]));
  });
});
