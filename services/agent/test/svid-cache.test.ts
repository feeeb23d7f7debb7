import { createPrivateKey, createPublicKey } from "node:crypto";
import { metrics, type Attributes, type Meter, type ObservableResult } from "@opentelemetry/api";
import type { EventPayload, EventType } from "@meshid/events";
import { readCertificateInfo } from "@meshid/pki";
import { createBundle, parseSelector, validateX509Svid, type Selector } from "@meshid/spiffe";
import { createMemoryLogger, type MemoryLogger } from "@meshid/telemetry";
import {
  createFakeClock,
  createTestCa,
  type FakeClock,
  type TestCa,
  type TestIntermediateCa,
} from "@meshid/testkit";
import { computeRotateAt } from "../src/domain/rotation-time";
import {
  METRIC_SVID_EXPIRY_SECONDS,
  METRIC_WORKLOAD_SVID_EXPIRY_SECONDS,
  createSvidCache,
  type SvidCache,
  type SvidCacheDeps,
} from "../src/domain/svid-cache";
import type { AgentBundle, AgentEntry, CachedSvid, WorkloadIdentity } from "../src/domain/types";
import type { EventSink } from "../src/ports";
import { createTestCaClient, type TestCaClient } from "../src/testing/test-ca-client";

// Two tests mint over a thousand keys: a bound, not a timing assertion, for a loaded machine.
jest.setTimeout(60_000);

const START = new Date("2026-11-22T12:00:00.000Z");
const AGENT_ID = "spiffe://example.org/meshid/agent/node-1";
const BACKOFF = { min: 1_000, max: 8_000 };

interface Published {
  readonly type: EventType;
  readonly payload: unknown;
}

interface Harness {
  readonly clock: FakeClock;
  readonly ca: TestCa;
  readonly caClient: TestCaClient;
  readonly cache: SvidCache;
  readonly entries: Map<string, AgentEntry>;
  readonly published: Published[];
  readonly log: MemoryLogger;
  readonly bundle: AgentBundle;
  /** Sends the current `entries` to the cache. */
  sync(): void;
  /** Starts the minting loop (stopped after the test). */
  start(): void;
}

const harnesses: { abort: AbortController; running: Promise<void>[] }[] = [];

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    h.abort.abort();
    await Promise.all(h.running);
  }
});

function uid(n: number): Selector {
  return parseSelector(`unix:uid:${n}`);
}

function entry(id: string, selectors: Selector[], extra: Partial<AgentEntry> = {}): AgentEntry {
  return {
    id,
    spiffeId: `spiffe://example.org/workload/${id}`,
    parentId: AGENT_ID,
    selectors,
    dnsNames: [],
    x509SvidTtlSeconds: 0,
    hint: "",
    revision: 1,
    ...extra,
  };
}

function ski(certDer: Uint8Array): string {
  return Buffer.from(readCertificateInfo(certDer).subjectKeyId).toString("hex");
}

async function setup(
  overrides: Partial<SvidCacheDeps> = {},
  opts: { withBundle?: boolean } = {},
): Promise<Harness> {
  const clock = createFakeClock(START);
  const ca = await createTestCa({ now: new Date(START.getTime() - 60_000) });
  const entries = new Map<string, AgentEntry>();
  const caClient = createTestCaClient({
    ca,
    getEntry: (id) => entries.get(id),
    now: () => clock.now(),
  });
  const published: Published[] = [];
  const events: EventSink = {
    publish<K extends EventType>(type: K, payload: EventPayload<K>): Promise<unknown> {
      published.push({ type, payload });
      return Promise.resolve();
    },
  };
  const log = createMemoryLogger();
  const cache = createSvidCache({
    caClient,
    clock,
    events,
    logger: log.logger,
    agentId: AGENT_ID,
    random: () => 0.5,
    retryBackoffMs: BACKOFF,
    ...overrides,
  });
  const bundle: AgentBundle = {
    trustDomain: "example.org",
    x509AuthoritiesDer: [ca.rootCertDer],
    taintedAuthorityIds: [],
    sequenceNumber: 1,
  };
  if (opts.withBundle !== false) cache.applyBundle(bundle);
  const control = { abort: new AbortController(), running: [] as Promise<void>[] };
  harnesses.push(control);
  return {
    clock,
    ca,
    caClient,
    cache,
    entries,
    published,
    log,
    bundle,
    sync: () => cache.applyEntries(new Map(entries)),
    start: () => {
      control.running.push(cache.run(control.abort.signal));
    },
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (cond()) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** A watcher whose messages are read one at a time. */
function watch(
  cache: SvidCache,
  selectors: Selector[],
  options: { mintWaitMs?: number } = {},
): {
  next(): Promise<WorkloadIdentity>;
  abort: AbortController;
} {
  const abort = new AbortController();
  harnesses.push({ abort, running: [] });
  const it = cache
    .watchIdentity(selectors, { signal: abort.signal, ...options })
    [Symbol.asyncIterator]();
  return {
    abort,
    async next() {
      const r = await it.next();
      if (r.done === true) throw new Error("stream ended");
      return r.value;
    },
  };
}

/** Reads messages until one satisfies `cond` (coalescing may skip intermediate states). */
async function nextMatching(
  w: { next(): Promise<WorkloadIdentity> },
  cond: (id: WorkloadIdentity) => boolean,
): Promise<WorkloadIdentity> {
  for (let i = 0; i < 1_000; i++) {
    const id = await w.next();
    if (cond(id)) return id;
  }
  throw new Error("no matching message");
}

/** Whether `promise` has settled after letting pending I/O and microtasks run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

async function expectValid(h: Harness, svid: CachedSvid): Promise<void> {
  const bundle = createBundle({
    trustDomain: "example.org",
    x509Authorities: [h.ca.rootCertDer],
    jwtAuthorities: [],
    sequenceNumber: 1,
    refreshHintSeconds: 0,
  });
  const validated = await validateX509Svid({ chain: svid.certChainDer, bundle, at: h.clock.now() });
  expect(validated.spiffeId.toString()).toBe(svid.spiffeId);
  const leaf = svid.certChainDer[0] as Uint8Array;
  const publicFromKey = createPublicKey(
    createPrivateKey({ key: Buffer.from(svid.privateKeyPkcs8Der), format: "der", type: "pkcs8" }),
  ).export({ type: "spki", format: "der" });
  expect(Buffer.from(readCertificateInfo(leaf).spkiDer).equals(publicFromKey)).toBe(true);
}

async function expectAllValid(h: Harness): Promise<void> {
  for (const svid of h.cache.snapshot()) await expectValid(h, svid);
}

function serials(id: WorkloadIdentity): string[] {
  return id.svids.map((s) => s.serialHex);
}

describe("svid cache", () => {
  it("svid cache – a new entry is minted at once and reaches an open watcher", async () => {
    const h = await setup();
    h.start();
    const w = watch(h.cache, [uid(1000), parseSelector("unix:gid:1000")]);
    const first = await w.next();
    expect(first.svids).toEqual([]);
    expect(first.bundle).toBe(h.bundle);

    h.entries.set("e1", entry("e1", [uid(1000)], { dnsNames: ["web.local"], hint: "web" }));
    h.sync();
    const second = await w.next();
    expect(second.svids.map((s) => s.entryId)).toEqual(["e1"]);
    const svid = second.svids[0] as CachedSvid;
    expect(svid.spiffeId).toBe("spiffe://example.org/workload/e1");
    expect(svid.hint).toBe("web");
    expect(svid.entryRevision).toBe(1);
    expect(svid.authorityId).toBe(ski(h.ca.rootCertDer));
    await expectValid(h, svid);
    expect(h.cache.stats()).toMatchObject({ cached: 1, pending: 0, openWatchers: 1, caCalls: 1 });
    // No timer was needed: the clock never moved.
    expect(h.clock.now()).toEqual(START);

    // A watcher opened once everything is minted gets its first message at once.
    const late = watch(h.cache, [uid(1000)]);
    expect(serials(await late.next())).toEqual([svid.serialHex]);
  });

  it("svid cache – the first message waits for a pending SVID and arrives when it is minted", async () => {
    const h = await setup();
    h.entries.set("e1", entry("e1", [uid(1000)]));
    h.sync();
    const w = watch(h.cache, [uid(1000)]);
    const first = w.next();
    expect(await settled(first)).toBe(false);
    h.start();
    const identity = await first;
    expect(identity.svids.map((s) => s.entryId)).toEqual(["e1"]);
    expect(h.clock.now()).toEqual(START);
  });

  it("svid cache – the bounded mint wait ends on the clock and yields what is ready", async () => {
    const h = await setup();
    h.caClient.failItem("slow", 1_000);
    h.entries.set("slow", entry("slow", [uid(1000)]));
    h.entries.set("ready", entry("ready", [uid(1000), parseSelector("unix:gid:5")]));
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 1, "the ready SVID");
    const w = watch(h.cache, [uid(1000), parseSelector("unix:gid:5")], { mintWaitMs: 2_000 });
    const first = w.next();
    expect(await settled(first)).toBe(false);
    await h.clock.advance(1_999);
    expect(await settled(first)).toBe(false);
    await h.clock.advance(1);
    const identity = await first;
    expect(identity.svids.map((s) => s.entryId)).toEqual(["ready"]);
  });

  it("svid cache – no bundle yet: the first message waits for applyBundle", async () => {
    const h = await setup({}, { withBundle: false });
    const w = watch(h.cache, [uid(1000)]);
    const first = w.next();
    expect(await settled(first)).toBe(false);
    const abort = new AbortController();
    harnesses.push({ abort, running: [] });
    const bundles = h.cache.watchBundle(abort.signal)[Symbol.asyncIterator]();
    const firstBundle = bundles.next();
    expect(await settled(firstBundle)).toBe(false);
    h.cache.applyBundle(h.bundle);
    expect((await first).bundle).toBe(h.bundle);
    expect((await firstBundle).value).toBe(h.bundle);
    // Bundle watchers see every change; a new bundle is also a new identity message.
    const next: AgentBundle = { ...h.bundle, sequenceNumber: 2 };
    h.cache.applyBundle(next);
    expect((await bundles.next()).value).toBe(next);
    expect((await w.next()).bundle).toBe(next);
    abort.abort();
    expect((await bundles.next()).done).toBe(true);
  });

  it("svid cache – rotation at half-life ± jitter: new serial on the stream and svid.rotated without keys", async () => {
    const h = await setup({ random: () => 0.9 });
    h.entries.set("e1", entry("e1", [uid(1000)], { x509SvidTtlSeconds: 600 }));
    h.sync();
    h.start();
    const w = watch(h.cache, [uid(1000)]);
    const first = (await w.next()).svids[0] as CachedSvid;
    const expected = computeRotateAt({
      notBefore: first.notBefore,
      notAfter: first.notAfter,
      random: 0.9,
    });
    expect(first.rotateAt).toEqual(expected);
    const lifetimeMs = first.notAfter.getTime() - first.notBefore.getTime();
    const halfLife = first.notBefore.getTime() + lifetimeMs / 2;
    expect(first.rotateAt.getTime()).toBeGreaterThan(halfLife);
    expect(first.rotateAt.getTime()).toBeLessThanOrEqual(halfLife + lifetimeMs * 0.05);

    const next = w.next();
    await h.clock.advance(first.rotateAt.getTime() - h.clock.now().getTime() - 1_000);
    expect(await settled(next)).toBe(false);
    expect(h.caClient.calls).toHaveLength(1);
    await h.clock.advance(1_000);
    const rotated = (await next).svids[0] as CachedSvid;
    expect(rotated.serialHex).not.toBe(first.serialHex);
    expect(rotated.notBefore.getTime()).toBeGreaterThan(first.notBefore.getTime());
    await expectValid(h, rotated);

    await until(() => h.published.length === 2, "two svid.rotated events");
    const last = h.published[1] as Published;
    expect(last.type).toBe("svid.rotated");
    expect(last.payload).toEqual({
      spiffeId: { trustDomain: "example.org", path: "/workload/e1" },
      serial: rotated.serialHex,
      expiresAt: rotated.notAfter,
      entryId: "e1",
      agentId: AGENT_ID,
    });
    const keyB64 = Buffer.from(rotated.privateKeyPkcs8Der).toString("base64");
    const keyHex = Buffer.from(rotated.privateKeyPkcs8Der).toString("hex");
    const logged = h.log.text();
    for (const text of [JSON.stringify(h.published), logged]) {
      expect(text).not.toContain(keyB64.slice(0, 40));
      expect(text).not.toContain(keyHex.slice(0, 40));
      expect(text).not.toMatch(/PRIVATE KEY/);
    }
  });

  it("svid cache – an entry change re-mints; a SPIFFE ID change withdraws the old SVID at once", async () => {
    const h = await setup();
    h.entries.set("e1", entry("e1", [uid(1000)]));
    h.sync();
    h.start();
    const w = watch(h.cache, [uid(1000)]);
    const first = (await w.next()).svids[0] as CachedSvid;

    h.entries.set("e1", entry("e1", [uid(1000)], { revision: 2, dnsNames: ["a.local"] }));
    h.sync();
    const remint = await nextMatching(w, (id) => id.svids[0]?.entryRevision === 2);
    expect(serials(remint)).not.toEqual([first.serialHex]);

    // Same revision, same fields: nothing to do.
    h.sync();
    expect(h.cache.stats().pending).toBe(0);

    h.entries.set(
      "e1",
      entry("e1", [uid(1000)], { revision: 3, spiffeId: "spiffe://example.org/renamed" }),
    );
    h.sync();
    expect(h.cache.snapshot()).toEqual([]);
    const renamed = await nextMatching(w, (id) => id.svids.length === 1);
    expect(renamed.svids[0]?.spiffeId).toBe("spiffe://example.org/renamed");
    await expectAllValid(h);
  });

  it("svid cache – an entry whose selectors change moves from one watcher to the other", async () => {
    const h = await setup();
    h.entries.set("e1", entry("e1", [uid(1000)]));
    h.sync();
    h.start();
    const w1000 = watch(h.cache, [uid(1000)]);
    const w1001 = watch(h.cache, [uid(1001)]);
    expect((await w1000.next()).svids.map((s) => s.entryId)).toEqual(["e1"]);
    expect((await w1001.next()).svids).toEqual([]);
    h.entries.set("e1", entry("e1", [uid(1001)], { revision: 2 }));
    h.sync();
    expect((await w1000.next()).svids).toEqual([]);
    const moved = await nextMatching(w1001, (id) => id.svids[0]?.entryRevision === 2);
    expect(moved.svids.map((s) => s.entryId)).toEqual(["e1"]);
    await expectAllValid(h);
  });

  it("svid cache – a failing event sink is logged and never holds up the cache", async () => {
    const h = await setup({
      events: { publish: () => Promise.reject(new Error("nats down")) },
    });
    h.entries.set("e1", entry("e1", [uid(1000)]));
    h.sync();
    h.start();
    const w = watch(h.cache, [uid(1000)]);
    expect((await w.next()).svids.map((s) => s.entryId)).toEqual(["e1"]);
    await until(() => h.log.text().includes("svid.rotated not published"), "the warning");
  });

  it("svid cache – a removed entry is withdrawn at once and the watcher gets an identity without it", async () => {
    const h = await setup();
    h.entries.set("a", entry("a", [uid(1000)]));
    h.entries.set("b", entry("b", [uid(1000)]));
    h.sync();
    h.start();
    const w = watch(h.cache, [uid(1000)]);
    expect((await w.next()).svids.map((s) => s.entryId)).toEqual(["a", "b"]);
    h.entries.delete("a");
    h.sync();
    expect(h.cache.snapshot().map((s) => s.entryId)).toEqual(["b"]);
    expect(h.cache.stats().cached).toBe(1);
    expect((await w.next()).svids.map((s) => s.entryId)).toEqual(["b"]);
    expect(h.clock.now()).toEqual(START);
  });

  it("svid cache – taint re-mints exactly the SVIDs of the tainted authority", async () => {
    const h = await setup();
    const authorityA: TestIntermediateCa = await h.ca.issueIntermediate({ now: START });
    const authorityB: TestIntermediateCa = await h.ca.issueIntermediate({ now: START });
    h.caClient.useAuthority(authorityA);
    h.entries.set("a1", entry("a1", [uid(1000)]));
    h.entries.set("a2", entry("a2", [uid(1001)]));
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 2, "SVIDs from authority A");
    h.caClient.useAuthority(authorityB);
    h.entries.set("b1", entry("b1", [uid(1000)]));
    h.sync();
    await until(() => h.cache.stats().cached === 3, "SVID from authority B");
    const before = new Map(h.cache.snapshot().map((s) => [s.entryId, s]));
    expect(before.get("a1")?.authorityId).toBe(ski(authorityA.certDer));
    expect(before.get("b1")?.authorityId).toBe(ski(authorityB.certDer));
    const callsBefore = h.caClient.calls.length;

    h.cache.applyBundle({
      ...h.bundle,
      taintedAuthorityIds: [ski(authorityA.certDer).toUpperCase()],
      sequenceNumber: 2,
    });
    await until(
      () => h.cache.snapshot().every((s) => s.authorityId === ski(authorityB.certDer)),
      "re-mint of the tainted SVIDs",
    );
    const after = new Map(h.cache.snapshot().map((s) => [s.entryId, s]));
    expect(after.get("a1")?.serialHex).not.toBe(before.get("a1")?.serialHex);
    expect(after.get("a2")?.serialHex).not.toBe(before.get("a2")?.serialHex);
    expect(after.get("b1")).toBe(before.get("b1"));
    // Chains of one authority share the intermediate's bytes instead of holding a copy each.
    const [x, y] = [after.get("a1"), after.get("b1")];
    expect(x?.certChainDer).toHaveLength(2);
    expect(x?.certChainDer[1]).toBe(y?.certChainDer[1]);
    const reminted = h.caClient.calls.slice(callsBefore).flatMap((c) => c.entryIds);
    expect(reminted.sort()).toEqual(["a1", "a2"]);
    await expectAllValid(h);
  });

  it("svid cache – a per-item CA failure is retried with backoff without holding up other items", async () => {
    const h = await setup();
    h.caClient.failItem("bad", 2);
    h.entries.set("bad", entry("bad", [uid(1000)]));
    h.entries.set("good", entry("good", [uid(1000)]));
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 1 && h.clock.pendingSleeps() > 0, "first batch");
    expect(h.cache.snapshot().map((s) => s.entryId)).toEqual(["good"]);
    expect(h.caClient.calls.map((c) => c.entryIds)).toEqual([["bad", "good"]]);
    // random 0.5 → first delay 0.75 × min, second 0.75 × 2 × min.
    await h.clock.advance(749);
    expect(h.caClient.calls).toHaveLength(1);
    await h.clock.advance(1);
    await until(() => h.caClient.calls.length === 2, "first retry");
    await until(() => h.clock.pendingSleeps() > 0, "loop asleep");
    await h.clock.advance(1_499);
    expect(h.caClient.calls).toHaveLength(2);
    await h.clock.advance(1);
    await until(() => h.cache.stats().cached === 2, "the retried SVID");
    expect(h.caClient.calls.map((c) => c.entryIds)).toEqual([["bad", "good"], ["bad"], ["bad"]]);
    expect(h.log.text()).toContain("ca.test.item_failed");
    await expectAllValid(h);
  });

  it("svid cache – a failed CA call is retried as a whole with backoff", async () => {
    const h = await setup();
    h.caClient.failNextCalls(2);
    for (const id of ["a", "b", "c"]) h.entries.set(id, entry(id, [uid(1000)]));
    h.sync();
    h.start();
    await until(() => h.caClient.calls.length === 1 && h.clock.pendingSleeps() > 0, "failure");
    expect(h.cache.stats()).toMatchObject({ cached: 0, pending: 3 });
    await h.clock.advance(750);
    await until(() => h.caClient.calls.length === 2, "first retry");
    await until(() => h.clock.pendingSleeps() > 0, "loop asleep");
    await h.clock.advance(1_500);
    await until(() => h.cache.stats().cached === 3, "all SVIDs");
    expect(h.caClient.calls.map((c) => [c.failed, c.entryIds.length])).toEqual([
      [true, 3],
      [true, 3],
      [false, 3],
    ]);
    await expectAllValid(h);
  });

  it("svid cache – 1,200 entries are minted in 3 CA calls of at most 500", async () => {
    const h = await setup();
    for (let i = 0; i < 1_200; i++) {
      const id = `e${String(i).padStart(4, "0")}`;
      h.entries.set(id, entry(id, [uid(i % 50)]));
    }
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 1_200, "1,200 SVIDs");
    expect(h.caClient.calls.map((c) => c.entryIds.length)).toEqual([500, 500, 200]);
    expect(h.cache.stats().pending).toBe(0);
    expect(h.published).toHaveLength(1_200);
    const sample = h.cache.snapshot().filter((_, i) => i % 97 === 0);
    for (const svid of sample) await expectValid(h, svid);
  });

  it("svid cache – maxBatchSize is honoured", async () => {
    const h = await setup({ maxBatchSize: 2 });
    for (const id of ["a", "b", "c", "d", "e"]) h.entries.set(id, entry(id, [uid(1000)]));
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 5, "five SVIDs");
    expect(h.caClient.calls.map((c) => c.entryIds.length)).toEqual([2, 2, 1]);
  });

  it("svid cache – onMinted hears how many SVIDs each CA call added, failed items not counted", async () => {
    const minted: number[] = [];
    const h = await setup({ maxBatchSize: 3, onMinted: (n) => minted.push(n) });
    h.caClient.failItem("bad", 1);
    for (const id of ["a", "b", "bad", "c"]) h.entries.set(id, entry(id, [uid(1000)]));
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 3 && h.caClient.calls.length === 2, "batches");
    expect(h.caClient.calls.map((c) => c.entryIds)).toEqual([["a", "b", "bad"], ["c"]]);
    expect(minted).toEqual([2, 1]);
  });

  it("svid cache – a slow consumer gets the newest state, not a queue of stale ones", async () => {
    const h = await setup();
    h.start();
    const w = watch(h.cache, [uid(1000)]);
    expect((await w.next()).svids).toEqual([]);
    // The consumer reads nothing while three entries are added and minted one after another.
    for (const id of ["a", "b", "c"]) {
      h.entries.set(id, entry(id, [uid(1000)]));
      h.sync();
      await until(() => h.cache.stats().cached === h.entries.size, `SVID ${id}`);
    }
    const latest = await w.next();
    expect(latest.svids.map((s) => s.entryId)).toEqual(["a", "b", "c"]);
    // Nothing stale is queued behind it.
    const more = w.next();
    expect(await settled(more)).toBe(false);
    h.entries.delete("b");
    h.sync();
    expect((await more).svids.map((s) => s.entryId)).toEqual(["a", "c"]);
  });

  it("svid cache – watchers are isolated: unix:uid:1000 never sees unix:uid:1001's SVIDs", async () => {
    const h = await setup();
    h.start();
    const w1000 = watch(h.cache, [uid(1000), parseSelector("unix:gid:1")]);
    const w1001 = watch(h.cache, [uid(1001), parseSelector("unix:gid:1")]);
    const seen1000: WorkloadIdentity[] = [await w1000.next()];
    const seen1001: WorkloadIdentity[] = [await w1001.next()];
    h.entries.set("mine", entry("mine", [uid(1000)]));
    h.entries.set("theirs", entry("theirs", [uid(1001)]));
    h.entries.set("both", entry("both", [uid(1000), uid(1001)]));
    h.entries.set("shared", entry("shared", [parseSelector("unix:gid:1")]));
    h.sync();
    seen1000.push(await nextMatching(w1000, (id) => id.svids.length === 2));
    seen1001.push(await nextMatching(w1001, (id) => id.svids.length === 2));
    h.entries.delete("shared");
    h.sync();
    seen1000.push(await w1000.next());
    seen1001.push(await w1001.next());
    expect(seen1000.map((id) => id.svids.map((s) => s.entryId))).toEqual([
      [],
      ["mine", "shared"],
      ["mine"],
    ]);
    expect(seen1001.map((id) => id.svids.map((s) => s.entryId))).toEqual([
      [],
      ["shared", "theirs"],
      ["theirs"],
    ]);
    // An entry with no selectors never matches anybody.
    h.entries.set("none", entry("none", []));
    h.sync();
    await until(() => h.cache.stats().cached === 4, "selector-less entry minted");
    expect(h.cache.stats().pending).toBe(0);
  });

  it("svid cache – 1,000 entries × 200 watchers: only the indexed candidates are checked", async () => {
    const h = await setup();
    const watchers = Array.from({ length: 200 }, (_, i) => watch(h.cache, [uid(i)]));
    for (const w of watchers) expect((await w.next()).svids).toEqual([]);
    const checksBefore = h.cache.stats().matchChecks;
    for (let i = 0; i < 1_000; i++) {
      const id = `e${String(i).padStart(4, "0")}`;
      h.entries.set(id, entry(id, [uid(i % 200)]));
    }
    h.sync();
    h.start();
    await until(() => h.cache.stats().cached === 1_000, "1,000 SVIDs");
    const stats = h.cache.stats();
    expect(stats.openWatchers).toBe(200);
    // One check per entry added and one per SVID minted: 2,000, not 1,000 × 200.
    expect(stats.matchChecks - checksBefore).toBe(2_000);
    for (const [i, w] of watchers.entries()) {
      const identity = await nextMatching(w, (id) => id.svids.length === 5);
      const expectedIds = [0, 1, 2, 3, 4].map((k) => `e${String(i + 200 * k).padStart(4, "0")}`);
      expect(identity.svids.map((s) => s.entryId)).toEqual(expectedIds);
    }
    for (const w of watchers) w.abort.abort();
    await until(() => h.cache.stats().openWatchers === 0, "watchers closed");
  });

  it("svid cache – a watcher ends when its signal aborts and is unregistered", async () => {
    const h = await setup();
    const w = watch(h.cache, [uid(1000)]);
    await w.next();
    expect(h.cache.stats().openWatchers).toBe(1);
    const pending = w.next();
    w.abort.abort();
    await expect(pending).rejects.toThrow("stream ended");
    expect(h.cache.stats().openWatchers).toBe(0);
  });

  it("svid cache – run resolves when its signal aborts, even while asleep", async () => {
    const h = await setup();
    const abort = new AbortController();
    const running = h.cache.run(abort.signal);
    await until(() => h.clock.pendingSleeps() > 0, "loop asleep");
    await expect(h.cache.run(new AbortController().signal)).rejects.toMatchObject({
      code: "agent.svid_cache.running",
    });
    abort.abort();
    await running;
    expect(h.clock.pendingSleeps()).toBe(0);
    // Once stopped it can run again.
    const again = new AbortController();
    const rerun = h.cache.run(again.signal);
    again.abort();
    await rerun;
  });
});

describe("svid cache metrics", () => {
  /** Observable-gauge callbacks by instrument name, from a global meter provider. */
  const callbacks = new Map<string, ((result: ObservableResult) => void)[]>();

  beforeAll(() => {
    const gauge = (name: string) => ({
      addCallback: (cb: (result: ObservableResult) => void) => {
        callbacks.set(name, [...(callbacks.get(name) ?? []), cb]);
      },
      removeCallback: () => undefined,
    });
    const meter = { createObservableGauge: gauge } as unknown as Meter;
    metrics.setGlobalMeterProvider({ getMeter: () => meter });
  });
  afterAll(() => {
    metrics.disable();
  });

  function observe(name: string): { value: number; attributes?: Attributes }[] {
    const seen: { value: number; attributes?: Attributes }[] = [];
    const result = {
      observe: (value: number, attributes?: Attributes) => seen.push({ value, attributes }),
    } as ObservableResult;
    for (const cb of callbacks.get(name) ?? []) cb(result);
    return seen;
  }

  it("svid cache – per-workload expiry has a series for each SVID on an open stream only", async () => {
    const h = await setup();
    h.start();
    h.entries.set("served", entry("served", [uid(1000)]));
    h.entries.set("idle", entry("idle", [uid(2000)]));
    h.sync();
    await until(() => h.cache.stats().cached === 2, "both SVIDs minted");
    expect(observe(METRIC_WORKLOAD_SVID_EXPIRY_SECONDS)).toEqual([]);
    expect(observe(METRIC_SVID_EXPIRY_SECONDS)).toHaveLength(1);

    const w = watch(h.cache, [uid(1000)]);
    const identity = await w.next();
    const svid = identity.svids[0] as CachedSvid;
    const expected = (svid.notAfter.getTime() - h.clock.now().getTime()) / 1000;
    expect(observe(METRIC_WORKLOAD_SVID_EXPIRY_SECONDS)).toEqual([
      { value: expected, attributes: { spiffe_id: "spiffe://example.org/workload/served" } },
    ]);

    w.abort.abort();
    await until(() => h.cache.stats().openWatchers === 0, "the stream closed");
    expect(observe(METRIC_WORKLOAD_SVID_EXPIRY_SECONDS)).toEqual([]);
  });
});
