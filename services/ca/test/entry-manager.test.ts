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
import { createEntryManager } from "../src/domain/entry-manager";
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
