import { randomUUID } from "node:crypto";
import { isMeshidError } from "@meshid/errors";
import { meshidCaV1, type meshidTypesV1 } from "@meshid/proto";
import { parseSpiffeId } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import type { SyncPage } from "../api/deps";
import type { Datastore, EventSink } from "../ports";
import {
  DEFAULT_MAX_IDS_PER_SYNC_PAGE,
  DEFAULT_MAX_SYNC_PAGE_BYTES,
  buildSyncPages,
  createEntryManager,
  estimateEntryBytes,
} from "./entry-manager";
import type { RegistrationEntry } from "./types";

const GRPC_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

function entry(over: Partial<RegistrationEntry> = {}): RegistrationEntry {
  const now = new Date(1_700_000_000_000);
  return {
    id: randomUUID(),
    spiffeId: parseSpiffeId("spiffe://example.org/ns/default/sa/web"),
    parentId: parseSpiffeId("spiffe://example.org/meshid/agent/k8s_psat/c1/0f8fad5b-d9cb"),
    selectors: [{ type: "k8s", value: "pod-uid:0f8fad5b-d9cb-469f-a165-70867728950e" }],
    x509SvidTtlSeconds: 3600,
    dnsNames: ["web-7d9f-abcde", "web.default.svc"],
    admin: false,
    hint: "",
    owner: "registrar",
    revision: 123_456,
    createdAt: now,
    updatedAt: now,
    ...over,
  };
}

/** The entry as the gRPC layer sends it (ts-proto message). */
function entryToProto(e: RegistrationEntry): meshidTypesV1.RegistrationEntry {
  return {
    id: e.id,
    spiffeId: { trustDomain: e.spiffeId.trustDomain.name, path: e.spiffeId.path },
    parentId: { trustDomain: e.parentId.trustDomain.name, path: e.parentId.path },
    selectors: e.selectors.map((s) => ({ type: s.type, value: s.value })),
    x509SvidTtlSeconds: e.x509SvidTtlSeconds,
    dnsNames: [...e.dnsNames],
    admin: e.admin,
    hint: e.hint,
    revision: e.revision,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
    owner: e.owner,
  };
}

function encodedBytes(page: SyncPage): number {
  return meshidCaV1.SyncAuthorizedEntriesResponse.encode({
    entries: page.entries.map(entryToProto),
    done: page.done,
    revision: page.revision,
    authorizedEntryIds: [...page.authorizedEntryIds],
    authorizedIdsOmitted: page.authorizedIdsOmitted,
  }).finish().length;
}

/** The largest entry validation lets through. */
function hugeEntry(): RegistrationEntry {
  const longPath = `/${"p".repeat(2000)}`;
  return entry({
    spiffeId: parseSpiffeId(`spiffe://example.org${longPath}`),
    parentId: parseSpiffeId(`spiffe://example.org${longPath}x`),
    selectors: Array.from({ length: 64 }, (_, i) => ({
      type: "k8s",
      value: `pod-image:${String(i).padStart(3, "0")}${"i".repeat(1000)}`,
    })),
    dnsNames: Array.from({ length: 100 }, (_, i) => `${i}.${"d".repeat(60)}.${"e".repeat(60)}.x`),
    hint: "h".repeat(1024),
    owner: "o".repeat(128),
  });
}

describe("sync pages – paging", () => {
  const base = { revision: 42, maxPageBytes: DEFAULT_MAX_SYNC_PAGE_BYTES, maxIds: 1000 };

  it("sync pages – an empty sync is one last page with the revision", () => {
    expect(buildSyncPages({ ...base, entries: [], authorizedEntryIds: [], pageSize: 500 })).toEqual(
      [
        {
          entries: [],
          done: true,
          revision: 42,
          authorizedEntryIds: [],
          authorizedIdsOmitted: false,
        },
      ],
    );
  });

  it("sync pages – authorizedIdsOmitted is set on the last page only, with no ids", () => {
    const entries = Array.from({ length: 700 }, () => entry());
    const pages = buildSyncPages({
      ...base,
      entries,
      authorizedEntryIds: [],
      pageSize: 500,
      authorizedIdsOmitted: true,
    });
    expect(pages.map((p) => [p.entries.length, p.done, p.authorizedIdsOmitted])).toEqual([
      [500, false, false],
      [200, true, true],
    ]);
    expect(pages.every((p) => p.authorizedEntryIds.length === 0)).toBe(true);
    expect(pages.flatMap((p) => p.entries)).toEqual(entries);
  });

  it("sync pages – entries in pages of pageSize; done, revision and ids on the last only", () => {
    const entries = Array.from({ length: 1200 }, () => entry());
    const ids = entries.map((e) => e.id);
    const pages = buildSyncPages({
      ...base,
      entries,
      authorizedEntryIds: ids,
      pageSize: 500,
      maxIds: 2000,
    });
    expect(pages.map((p) => p.entries.length)).toEqual([500, 500, 200]);
    expect(pages.map((p) => p.done)).toEqual([false, false, true]);
    expect(pages.map((p) => p.revision)).toEqual([0, 0, 42]);
    expect(pages.map((p) => p.authorizedEntryIds.length)).toEqual([0, 0, 1200]);
    expect(pages.flatMap((p) => p.entries)).toEqual(entries);
  });

  it("sync pages – more ids than maxIds go on the final pages, all ids once", () => {
    const ids = Array.from({ length: 2500 }, () => randomUUID());
    const entries = Array.from({ length: 5 }, () => entry());
    const pages = buildSyncPages({ ...base, entries, authorizedEntryIds: ids, pageSize: 500 });
    expect(pages.map((p) => [p.entries.length, p.authorizedEntryIds.length, p.done])).toEqual([
      [5, 1000, false],
      [0, 1000, false],
      [0, 500, true],
    ]);
    expect(pages.flatMap((p) => p.authorizedEntryIds)).toEqual(ids);
  });

  it("sync pages – 100k authorised entries: every page well under 4 MiB", () => {
    const entries = Array.from({ length: 100_000 }, () => entry());
    const pages = buildSyncPages({
      entries,
      authorizedEntryIds: entries.map((e) => e.id),
      revision: 100_000,
      pageSize: 500,
      maxPageBytes: DEFAULT_MAX_SYNC_PAGE_BYTES,
      maxIds: DEFAULT_MAX_IDS_PER_SYNC_PAGE,
    });
    expect(pages.length).toBe(200);
    // Entry pages are alike: measure the first and every page that carries ids.
    const sizes = pages
      .filter((p, i) => i === 0 || p.authorizedEntryIds.length > 0)
      .map(encodedBytes);
    expect(Math.max(...sizes)).toBeLessThan(GRPC_MAX_MESSAGE_BYTES / 2);
    // All ids on one page would have been ~3.8 MB: they are spread over the last 5 pages.
    expect(pages.filter((p) => p.authorizedEntryIds.length > 0).length).toBe(5);
  });

  it("sync pages – the largest valid entries are cut by bytes, not count", () => {
    const big = hugeEntry();
    const entries = Array.from({ length: 60 }, () => ({ ...big, id: randomUUID() }));
    const pages = buildSyncPages({
      ...base,
      entries,
      authorizedEntryIds: [],
      pageSize: 500,
      maxPageBytes: DEFAULT_MAX_SYNC_PAGE_BYTES,
    });
    expect(pages.length).toBeGreaterThan(1);
    for (const page of pages) {
      expect(encodedBytes(page)).toBeLessThanOrEqual(DEFAULT_MAX_SYNC_PAGE_BYTES);
    }
    expect(pages.flatMap((p) => p.entries).length).toBe(60);
  });

  it("sync pages – estimateEntryBytes bounds the encoded size from above", () => {
    for (const e of [entry(), hugeEntry(), entry({ hint: "ünïcødé ✓".repeat(50), dnsNames: [] })]) {
      const actual = meshidTypesV1Bytes(e);
      expect(estimateEntryBytes(e)).toBeGreaterThanOrEqual(actual);
      expect(estimateEntryBytes(e)).toBeLessThan(actual * 1.5 + 100);
    }
  });
});

function meshidTypesV1Bytes(e: RegistrationEntry): number {
  // One entry inside a response: the entry plus its field tag and length prefix.
  return encodedBytes({
    entries: [e],
    done: false,
    revision: 0,
    authorizedEntryIds: [],
    authorizedIdsOmitted: false,
  });
}

/** A store whose every method fails the test: the call must be refused before any I/O. */
function untouchableStore(): { store: Datastore; touched: string[] } {
  const touched: string[] = [];
  const store = new Proxy({} as Datastore, {
    get(_target, prop) {
      return () => {
        touched.push(String(prop));
        return Promise.reject(new Error(`store.${String(prop)} must not be called`));
      };
    },
  });
  return { store, touched };
}

const silentEvents: EventSink = { publish: () => Promise.resolve(undefined) };

describe("entry manager – refusals before the store", () => {
  it("entry manager – a batch over maxBatchSize is refused whole, store untouched", async () => {
    const { store, touched } = untouchableStore();
    const m = createEntryManager({
      trustDomain: "example.org",
      store,
      events: silentEvents,
      logger: createNoopLogger(),
      limits: { maxBatchSize: 2 },
    });
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const call of [
      () => m.batchDelete(ids),
      () => m.batchCreate(ids.map(() => entry())),
      () => m.batchUpdate(ids.map(() => entry())),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: "ca.batch.too_large",
        kind: "resource_exhausted",
      });
    }
    expect(touched).toEqual([]);
  });

  it("entry manager – bad sync arguments and ids are invalid_argument", async () => {
    const { store, touched } = untouchableStore();
    const m = createEntryManager({
      trustDomain: "example.org",
      store,
      events: silentEvents,
      logger: createNoopLogger(),
    });
    const agent = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/a");
    const drain = async (it: AsyncIterable<SyncPage>) => {
      for await (const _ of it) {
        // drain
      }
    };
    await expect(drain(m.syncAuthorized(agent, -1))).rejects.toMatchObject({
      code: "ca.sync.revision",
    });
    await expect(drain(m.syncAuthorized(agent, 0, 0))).rejects.toMatchObject({
      code: "ca.sync.page_size",
    });
    await expect(m.get("not-a-uuid")).rejects.toMatchObject({ code: "ca.entry.id_invalid" });
    const results = await m.batchDelete(["nope"]);
    expect(results[0]?.ok === false && results[0].error.code).toBe("ca.entry.id_invalid");
    expect(touched).toEqual([]);
  });

  it("entry manager – bad limits or trust domain are refused at construction", () => {
    const deps = {
      store: untouchableStore().store,
      events: silentEvents,
      logger: createNoopLogger(),
    };
    expect(() => createEntryManager({ ...deps, trustDomain: "Bad TD" })).toThrow();
    let caught: unknown;
    try {
      createEntryManager({ ...deps, trustDomain: "example.org", limits: { maxBatchSize: 0 } });
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "ca.config.limit")).toBe(true);
    caught = undefined;
    try {
      createEntryManager({
        ...deps,
        trustDomain: "example.org",
        limits: { maxChangesWithoutIds: 0 },
      });
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "ca.config.limit")).toBe(true);
  });
});
