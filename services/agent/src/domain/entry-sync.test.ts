import { createNoopLogger } from "@meshid/telemetry";
import { createFakeClock, type FakeClock } from "@meshid/testkit";
import type { CaClient, EntrySyncPage, SyncAuthorizedEntriesOptions } from "../ports";
import { createEntrySync, type EntrySync } from "./entry-sync";
import type { AgentEntry } from "./types";

const AGENT_ID = "spiffe://example.org/meshid/agent/node-1";

/**
 * An in-memory CA: entries with store revisions, paged like SyncAuthorizedEntries. Like the
 * real CA it leaves out the ID list of a delta that asks for it when no entry was removed
 * since (`forceOmit` makes it leave the list out anyway, to see what the agent does).
 */
function createFakeCa(pageSize = 2) {
  let revision = 0;
  let graphRevision = 0;
  const state = { forceOmit: false };
  const entries = new Map<string, AgentEntry>();
  const calls: number[] = [];
  /** Per call: whether the agent asked to omit the ID list. */
  const omitAsked: boolean[] = [];
  let failNext = 0;
  let gate: Promise<void> | undefined;
  const put = (id: string): AgentEntry => {
    revision++;
    const entry: AgentEntry = {
      id,
      spiffeId: `spiffe://example.org/w/${id}`,
      parentId: AGENT_ID,
      selectors: [{ type: "unix", value: "uid:1000" }],
      dnsNames: [],
      x509SvidTtlSeconds: 0,
      hint: "",
      revision,
    };
    entries.set(id, entry);
    return entry;
  };
  const remove = (id: string): void => {
    revision++;
    graphRevision = revision;
    entries.delete(id);
  };
  /**
   * An entry that joins the agent's set through a graph change (an alias adopting it): it
   * keeps its old revision (1, the oldest there is), so a delta lists its ID without
   * returning it.
   */
  const adopt = (id: string): AgentEntry => {
    const entry: AgentEntry = { ...put(id), revision: 1 };
    entries.set(id, entry);
    graphRevision = revision;
    return entry;
  };
  const client: Pick<CaClient, "syncAuthorizedEntries"> = {
    async *syncAuthorizedEntries(
      since: number,
      _signal?: AbortSignal,
      options?: SyncAuthorizedEntriesOptions,
    ): AsyncIterable<EntrySyncPage> {
      calls.push(since);
      const omitUnchangedIds = options?.omitUnchangedIds === true;
      omitAsked.push(omitUnchangedIds);
      // Snapshot first, as the CA reads its store at one revision.
      const at = revision;
      const changed = [...entries.values()].filter((e) => e.revision > since);
      const omitted = omitUnchangedIds && since > 0 && (state.forceOmit || graphRevision <= since);
      const ids = omitted ? [] : [...entries.keys()];
      if (gate !== undefined) await gate;
      if (failNext > 0) {
        failNext--;
        throw new Error("ca unavailable");
      }
      const pages = Math.max(1, Math.ceil(Math.max(changed.length, ids.length) / pageSize));
      for (let p = 0; p < pages; p++) {
        const done = p === pages - 1;
        yield {
          entries: changed.slice(p * pageSize, (p + 1) * pageSize),
          authorizedEntryIds: ids.slice(p * pageSize, (p + 1) * pageSize),
          done,
          revision: done ? at : 0,
          authorizedIdsOmitted: done && omitted,
        };
      }
    },
  };
  return {
    client,
    calls,
    omitAsked,
    state,
    put,
    remove,
    adopt,
    revision: () => revision,
    failNext: (n: number) => {
      failNext = n;
    },
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => {
        release = r;
      });
      return () => {
        gate = undefined;
        release();
      };
    },
  };
}

/** A pushable wake-up source. */
function createWakeups() {
  const queue: number[] = [];
  let wake: (() => void) | undefined;
  const iterable: AsyncIterable<number> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    },
  };
  return {
    iterable,
    push: (revision: number) => {
      queue.push(revision);
      const w = wake;
      wake = undefined;
      w?.();
    },
  };
}

async function until(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (predicate()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error("condition not reached");
}

describe("entry sync", () => {
  let clock: FakeClock;
  let ca: ReturnType<typeof createFakeCa>;
  let wakeups: ReturnType<typeof createWakeups>;
  let seen: ReadonlyMap<string, AgentEntry>[];
  let sync: EntrySync;
  let controller: AbortController;
  let running: Promise<void>;

  function start(reconcileIntervalMs = 30_000): void {
    sync = createEntrySync({
      caClient: ca.client,
      wakeups: wakeups.iterable,
      onEntries: (entries) => seen.push(entries),
      clock,
      logger: createNoopLogger(),
      reconcileIntervalMs,
      retryInitialMs: 100,
      retryMaxMs: 400,
    });
    controller = new AbortController();
    running = sync.run(controller.signal);
  }

  beforeEach(() => {
    clock = createFakeClock(new Date("2026-01-01T00:00:00Z"));
    ca = createFakeCa();
    wakeups = createWakeups();
    seen = [];
  });

  afterEach(async () => {
    controller.abort();
    await running;
  });

  it("entry sync – syncs in full at start, over several pages", async () => {
    for (const id of ["a", "b", "c", "d", "e"]) ca.put(id);
    start();
    await until(() => seen.length === 1);
    expect([...(seen[0]?.keys() ?? [])].sort()).toEqual(["a", "b", "c", "d", "e"]);
    expect(ca.calls).toEqual([0]);
    expect(sync.lastRevision()).toBe(5);
    expect(sync.stats()).toMatchObject({ syncs: 1, fullSyncs: 1, entries: 5, failures: 0 });
  });

  it("entry sync – a wake-up above the last revision syncs the delta, drops deleted entries", async () => {
    ca.put("a");
    ca.put("b");
    start();
    await until(() => seen.length === 1);
    ca.remove("a");
    const c = ca.put("c");
    wakeups.push(ca.revision());
    await until(() => seen.length === 2);
    expect(ca.calls).toEqual([0, 2]);
    expect([...(seen[1]?.keys() ?? [])].sort()).toEqual(["b", "c"]);
    expect(seen[1]?.get("c")).toEqual(c);
    expect(sync.lastRevision()).toBe(4);
  });

  it("entry sync – deltas ask the CA to omit the ID list, full syncs never do", async () => {
    ca.put("a");
    start(1000);
    await until(() => sync.stats().syncs === 1);
    ca.put("b");
    wakeups.push(ca.revision());
    await until(() => sync.stats().syncs === 2);
    await clock.advance(1000);
    await until(() => sync.stats().fullSyncs === 2);
    expect(ca.calls).toEqual([0, 1, 0]);
    expect(ca.omitAsked).toEqual([false, true, false]);
  });

  it("entry sync – a delta without the ID list upserts the returned entries and drops nothing", async () => {
    ca.put("a");
    ca.put("b");
    start();
    await until(() => seen.length === 1);
    const first = seen[0]!;
    const c = ca.put("c");
    const a2 = ca.put("a");
    wakeups.push(ca.revision());
    await until(() => seen.length === 2);
    expect(ca.calls).toEqual([0, 2]);
    expect([...(seen[1]?.keys() ?? [])].sort()).toEqual(["a", "b", "c"]);
    expect(seen[1]?.get("a")).toEqual(a2);
    expect(seen[1]?.get("c")).toEqual(c);
    expect(seen[1]?.get("b")).toBe(first.get("b"));
    // The map handed out before is a snapshot: the upsert copied it.
    expect([...first.keys()].sort()).toEqual(["a", "b"]);
    expect(sync.lastRevision()).toBe(4);

    // A CA that leaves the list out is trusted: nothing is dropped by a delta…
    ca.state.forceOmit = true;
    ca.remove("b");
    const d = ca.put("d");
    wakeups.push(ca.revision());
    await until(() => seen.length === 3);
    expect([...(seen[2]?.keys() ?? [])].sort()).toEqual(["a", "b", "c", "d"]);
    expect(seen[2]?.get("d")).toEqual(d);
    // …and the full sync, which never omits, drops it.
    await sync.requestFullSync();
    expect([...(seen[3]?.keys() ?? [])].sort()).toEqual(["a", "c", "d"]);
    expect(ca.omitAsked).toEqual([false, true, true, false]);
  });

  it("entry sync – a delta without the ID list and without changes keeps the map and calls nobody", async () => {
    ca.put("a");
    start();
    await until(() => seen.length === 1);
    const held = sync.entries();
    ca.put("b");
    await sync.syncNow();
    expect(seen).toHaveLength(2);
    const afterB = sync.entries();
    // Nothing new: no onEntries, the very same map.
    await sync.syncNow();
    await sync.syncNow();
    expect(seen).toHaveLength(2);
    expect(sync.entries()).toBe(afterB);
    expect(afterB).not.toBe(held);
    expect(sync.stats()).toMatchObject({ syncs: 4, fullSyncs: 1, entries: 2 });
    expect(ca.omitAsked).toEqual([false, true, true, true]);
  });

  it("entry sync – an authorised ID neither returned nor held is fetched by a full sync at once", async () => {
    ca.put("a");
    start();
    await until(() => seen.length === 1);
    const adopted = ca.adopt("old");
    wakeups.push(ca.revision());
    // The delta lists "old" without returning it (its revision predates the agent's); the
    // agent does not wait for the reconcile interval: it syncs in full straight away.
    await until(() => sync.stats().fullSyncs === 2);
    await until(() => sync.entries().has("old"));
    expect(sync.entries().get("old")).toEqual(adopted);
    expect(ca.calls).toEqual([0, 1, 0]);
    // No time passed: it did not wait for the reconcile interval.
    expect(clock.now().toISOString()).toBe("2026-01-01T00:00:00.000Z");
  });

  it("entry sync – a wake-up at or below the last revision does nothing", async () => {
    ca.put("a");
    start();
    await until(() => sync.stats().syncs === 1);
    wakeups.push(1);
    await sync.syncNow();
    // Only the forced syncNow ran after the start.
    expect(ca.calls).toEqual([0, 1]);
    expect(seen).toHaveLength(1);
  });

  it("entry sync – a wake-up of revision 0 (reconnect) syncs in full", async () => {
    ca.put("a");
    start();
    await until(() => sync.stats().syncs === 1);
    wakeups.push(0);
    await until(() => sync.stats().fullSyncs === 2);
    expect(ca.calls).toEqual([0, 0]);
  });

  it("entry sync – reconciles in full every interval", async () => {
    ca.put("a");
    start(1000);
    await until(() => sync.stats().syncs === 1);
    ca.put("b");
    await clock.advance(1000);
    await until(() => sync.stats().fullSyncs === 2);
    expect(ca.calls).toEqual([0, 0]);
    expect([...(seen[1]?.keys() ?? [])].sort()).toEqual(["a", "b"]);
  });

  it("entry sync – triggers during a sync collapse into one pending sync that loses no change", async () => {
    ca.put("a");
    start();
    await until(() => sync.stats().syncs === 1);
    const release = ca.hold();
    ca.put("b");
    wakeups.push(ca.revision());
    await until(() => ca.calls.length === 2);
    ca.put("c");
    wakeups.push(ca.revision());
    ca.put("d");
    wakeups.push(ca.revision());
    await new Promise((r) => setImmediate(r));
    release();
    await until(() => sync.stats().syncs === 3);
    await sync.syncNow();
    // start, the held delta, one collapsed delta, the syncNow.
    expect(ca.calls).toHaveLength(4);
    expect([...sync.entries().keys()].sort()).toEqual(["a", "b", "c", "d"]);
  });

  it("entry sync – retries a failed sync in full with backoff", async () => {
    ca.put("a");
    ca.failNext(2);
    start();
    await until(() => sync.stats().failures === 1);
    expect(seen).toHaveLength(0);
    await clock.advance(100);
    await until(() => sync.stats().failures === 2);
    await clock.advance(100);
    // The second retry waits 200 ms.
    expect(sync.stats().syncs).toBe(0);
    await clock.advance(100);
    await until(() => sync.stats().syncs === 1);
    expect(ca.calls).toEqual([0, 0, 0]);
    expect(seen).toHaveLength(1);
  });

  it("entry sync – a failed delta is retried in full and the syncNow caller waits for it", async () => {
    ca.put("a");
    start();
    await until(() => sync.stats().syncs === 1);
    ca.put("b");
    ca.failNext(1);
    const done = sync.syncNow();
    await until(() => sync.stats().failures === 1);
    await clock.advance(100);
    await done;
    expect(ca.calls).toEqual([0, 1, 0]);
    expect([...sync.entries().keys()].sort()).toEqual(["a", "b"]);
  });

  it("entry sync – reports the seconds since the last successful sync", async () => {
    ca.put("a");
    start(60_000);
    await until(() => sync.stats().syncs === 1);
    clock.set(new Date(clock.now().getTime() + 12_000));
    expect(sync.stats().lagSeconds).toBe(12);
  });

  it("entry sync – stops on abort, rejecting waiters, and syncNow rejects when not running", async () => {
    ca.put("a");
    start();
    await until(() => sync.stats().syncs === 1);
    ca.failNext(5);
    const waiting = sync.requestFullSync();
    await until(() => sync.stats().failures === 1);
    controller.abort();
    await running;
    await expect(waiting).rejects.toBeDefined();
    await expect(sync.syncNow()).rejects.toThrow("not running");
  });
});
