/// <reference types="jest" />
// The Datastore contract: one jest suite every adapter (SQLite now, PostgreSQL later) passes.
import { randomBytes } from "node:crypto";
import { type ErrorKind, MeshidError } from "@meshid/errors";
import {
  type Selector,
  type SpiffeId,
  formatSelector,
  parseSelector,
  parseSpiffeId,
  selectorsMatch,
} from "@meshid/spiffe";
import { describeContract } from "@meshid/testkit";
import type {
  AttestedAgent,
  AuthorityRecord,
  BatchItemResult,
  BundleRecord,
  NewRegistrationEntry,
  RegistrationEntry,
} from "../domain/types";
import type { Datastore, ListAgentsParams, ListEntriesParams } from "../ports";

/** What the factory of {@link describeDatastoreContract} returns for one test. */
export interface DatastoreUnderTest {
  /** A fresh, empty, open store. */
  readonly store: Datastore;
  /** Closes the store (it may already be closed) and removes what create() set up. */
  cleanup(): Promise<void>;
}

const TD = "example.org";
const AGENT_A = parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/node-a`);
const AGENT_B = parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/node-b`);

const sels = (...texts: string[]): Selector[] => texts.map(parseSelector);
const keys = (selectors: readonly Selector[]): string[] => selectors.map(formatSelector);

/** A valid new entry for `name`, parented to agent A, with `overrides` applied. */
function newEntry(
  name: string,
  overrides: Partial<NewRegistrationEntry> = {},
): NewRegistrationEntry {
  return {
    spiffeId: parseSpiffeId(`spiffe://${TD}/ns/default/sa/${name}`),
    parentId: AGENT_A,
    selectors: sels("k8s:ns:default", `k8s:sa:${name}`),
    x509SvidTtlSeconds: 0,
    dnsNames: [],
    admin: false,
    hint: "",
    owner: "",
    ...overrides,
  };
}

function okValue<T>(result: BatchItemResult<T> | undefined): T {
  if (result === undefined) throw new Error("missing batch result");
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result.value;
}

function okValues<T>(results: readonly BatchItemResult<T>[]): T[] {
  return results.map(okValue);
}

function expectItemError(
  result: BatchItemResult<unknown> | undefined,
  code: string,
  kind: ErrorKind,
): void {
  expect(result?.ok).toBe(false);
  if (result !== undefined && !result.ok) {
    expect(result.error).toBeInstanceOf(MeshidError);
    expect(result.error.code).toBe(code);
    expect(result.error.kind).toBe(kind);
  }
}

async function expectRejection(
  promise: Promise<unknown>,
  code: string,
  kind: ErrorKind,
): Promise<MeshidError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(MeshidError);
  const err = caught as MeshidError;
  expect({ code: err.code, kind: err.kind }).toEqual({ code, kind });
  return err;
}

/** Comparable form of an entry (SPIFFE IDs as strings). */
function plain(entry: RegistrationEntry): Record<string, unknown> {
  return {
    ...entry,
    spiffeId: entry.spiffeId.toString(),
    parentId: entry.parentId.toString(),
    selectors: keys(entry.selectors),
    dnsNames: [...entry.dnsNames],
  };
}

function plainAgent(agent: AttestedAgent): Record<string, unknown> {
  return { ...agent, spiffeId: agent.spiffeId.toString(), selectors: keys(agent.selectors) };
}

/** Pages through listEntries and returns every id seen, in order (duplicates kept). */
async function collectEntryIds(
  store: Datastore,
  params: Omit<ListEntriesParams, "pageToken">,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await store.listEntries({ ...params, pageToken });
    pages += 1;
    ids.push(...page.items.map((e) => e.id));
    pageToken = page.nextPageToken;
    if (pages > 100_000) throw new Error("listEntries never ends");
  } while (pageToken !== "");
  return { ids, pages };
}

async function collectAgents(
  store: Datastore,
  params: Omit<ListAgentsParams, "pageToken">,
): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await store.listAgents({ ...params, pageToken });
    pages += 1;
    ids.push(...page.items.map((a) => a.spiffeId.toString()));
    pageToken = page.nextPageToken;
    if (pages > 100_000) throw new Error("listAgents never ends");
  } while (pageToken !== "");
  return { ids, pages };
}

const sorted = (values: readonly string[]): string[] => [...values].sort();

function agent(name: string, overrides: Partial<AttestedAgent> = {}): AttestedAgent {
  return {
    spiffeId: parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/${name}`),
    attestationType: "join_token",
    selectors: sels("join_token:token:x"),
    x509SvidSerial: randomBytes(16).toString("hex"),
    x509SvidExpiresAt: new Date("2026-11-23T10:00:00.123Z"),
    banned: false,
    createdAt: new Date("2026-11-22T10:00:00.001Z"),
    updatedAt: new Date("2026-11-22T10:00:00.002Z"),
    ...overrides,
  };
}

function authority(id: string, overrides: Partial<AuthorityRecord> = {}): AuthorityRecord {
  return {
    authorityId: id,
    state: "active",
    certDer: new Uint8Array(randomBytes(300)),
    upstreamChainDer: [],
    keyId: `x509-ca-${id}`,
    keyType: "ec-p256",
    notBefore: new Date("2026-11-01T00:00:00.000Z"),
    notAfter: new Date("2026-12-01T00:00:00.000Z"),
    tainted: false,
    upstreamAuthorityId: "",
    ...overrides,
  };
}

/**
 * Runs the Datastore contract against one adapter: `create` makes a fresh, empty store for
 * each test. Covers entry CRUD and batches, the duplicate rule, revisions and the graph
 * revision, changes since a revision, paging (10,000 entries), filters, agents, join tokens,
 * the authorities journal, the bundle and close. Call at module level of a test file.
 */
export function describeDatastoreContract(
  name: string,
  create: () => Promise<DatastoreUnderTest>,
): void {
  describeContract<Datastore>(
    "Datastore",
    [
      {
        name,
        create: async () => {
          const created = await create();
          return { subject: created.store, cleanup: () => created.cleanup() };
        },
      },
    ],
    (get) => {
      describe("entries", () => {
        it("createEntries – assigns a UUID, normalises selectors, stamps revision and times", async () => {
          const store = get();
          const [result] = await store.createEntries([
            newEntry("web", {
              selectors: sels("k8s:sa:web", "k8s:ns:default", "k8s:sa:web"),
              x509SvidTtlSeconds: 600,
              dnsNames: ["web.default.svc", "web"],
              admin: true,
              hint: "frontend ✓",
              owner: "registrar",
            }),
          ]);
          const created = okValue(result);
          expect(created.id).toMatch(
            /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
          );
          expect(keys(created.selectors)).toEqual(["k8s:ns:default", "k8s:sa:web"]);
          expect(created.spiffeId.toString()).toBe(`spiffe://${TD}/ns/default/sa/web`);
          expect(created.parentId.equals(AGENT_A)).toBe(true);
          expect(created.revision).toBe(1);
          expect(created.createdAt).toBeInstanceOf(Date);
          expect(created.updatedAt.getTime()).toBe(created.createdAt.getTime());

          const stored = await store.getEntry(created.id);
          expect(stored).toBeDefined();
          expect(plain(stored!)).toEqual(plain(created));
          expect(plain(stored!)).toMatchObject({
            x509SvidTtlSeconds: 600,
            dnsNames: ["web.default.svc", "web"],
            admin: true,
            hint: "frontend ✓",
            owner: "registrar",
          });
        });

        it("createEntries – keeps a caller-chosen id and refuses a taken one with ca.entry.id_taken", async () => {
          const store = get();
          const id = "0f3c5e1a-1b2c-4d5e-8f90-123456789abc";
          const [first] = await store.createEntries([newEntry("a", { id })]);
          expect(okValue(first).id).toBe(id);
          const [second] = await store.createEntries([newEntry("b", { id })]);
          expectItemError(second, "ca.entry.id_taken", "already_exists");
          expect((await store.getEntry(id))?.spiffeId.toString()).toContain("/sa/a");
        });

        it("createEntries – same SPIFFE ID, parent and selector set is ca.entry.duplicate", async () => {
          const store = get();
          okValue((await store.createEntries([newEntry("web")]))[0]);
          const results = await store.createEntries([
            // Same set in another order and with a repeat: still the same entry.
            newEntry("web", { selectors: sels("k8s:sa:web", "k8s:ns:default", "k8s:sa:web") }),
            newEntry("web", { parentId: AGENT_B }),
            newEntry("web", { selectors: sels("k8s:ns:default") }),
            newEntry("web", { spiffeId: parseSpiffeId(`spiffe://${TD}/other`) }),
            // Other fields do not make an entry different.
            newEntry("web", { dnsNames: ["x"], owner: "registrar", x509SvidTtlSeconds: 60 }),
          ]);
          expectItemError(results[0], "ca.entry.duplicate", "already_exists");
          expect(results[1]?.ok).toBe(true);
          expect(results[2]?.ok).toBe(true);
          expect(results[3]?.ok).toBe(true);
          expectItemError(results[4], "ca.entry.duplicate", "already_exists");
          expect((await store.listEntries({})).items).toHaveLength(4);
        });

        it("createEntries – results follow input order and a refused item does not undo the others", async () => {
          const store = get();
          const results = await store.createEntries([
            newEntry("a"),
            newEntry("b"),
            newEntry("a"), // duplicate of the first item of the same batch
            newEntry("c"),
          ]);
          expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
          expectItemError(results[2], "ca.entry.duplicate", "already_exists");
          const names = results
            .filter((r) => r.ok)
            .map((r) => okValue(r).spiffeId.path.split("/").pop());
          expect(names).toEqual(["a", "b", "c"]);
          for (const r of results.filter((x) => x.ok)) {
            expect(await store.getEntry(okValue(r).id)).toBeDefined();
          }
          expect((await store.listEntries({})).items).toHaveLength(3);
        });

        it("createEntries – an empty batch returns no results and leaves the revision", async () => {
          const store = get();
          expect(await store.createEntries([])).toEqual([]);
          expect(await store.updateEntries([])).toEqual([]);
          expect(await store.deleteEntries([])).toEqual([]);
          expect(await store.getRevision()).toBe(0);
        });

        it("getEntry – undefined for an unknown id", async () => {
          const store = get();
          expect(await store.getEntry("00000000-0000-4000-8000-000000000000")).toBeUndefined();
          expect(await store.getEntry("")).toBeUndefined();
        });

        it("updateEntries – keeps id and createdAt, bumps the revision and returns before and after", async () => {
          const store = get();
          const created = okValue((await store.createEntries([newEntry("web")]))[0]);
          const [result] = await store.updateEntries([
            {
              ...newEntry("web", {
                selectors: sels("k8s:sa:web", "k8s:ns:prod"),
                dnsNames: ["web.prod"],
                admin: true,
                hint: "h",
                owner: "registrar",
                x509SvidTtlSeconds: 120,
                parentId: AGENT_B,
              }),
              id: created.id,
            },
          ]);
          const { before, after } = okValue(result);
          expect(plain(before)).toEqual(plain(created));
          expect(after.id).toBe(created.id);
          expect(after.createdAt.getTime()).toBe(created.createdAt.getTime());
          expect(after.updatedAt.getTime()).toBeGreaterThanOrEqual(created.updatedAt.getTime());
          expect(after.revision).toBe(created.revision + 1);
          expect(keys(after.selectors)).toEqual(["k8s:ns:prod", "k8s:sa:web"]);
          expect(plain(after)).toMatchObject({
            parentId: AGENT_B.toString(),
            dnsNames: ["web.prod"],
            admin: true,
            hint: "h",
            owner: "registrar",
            x509SvidTtlSeconds: 120,
          });
          expect(plain((await store.getEntry(created.id))!)).toEqual(plain(after));
          expect(await store.getRevision()).toBe(after.revision);
        });

        it("updateEntries – an unchanged update still counts as a change", async () => {
          const store = get();
          const created = okValue((await store.createEntries([newEntry("web")]))[0]);
          const { after } = okValue(
            (await store.updateEntries([{ ...newEntry("web"), id: created.id }]))[0],
          );
          expect(after.revision).toBe(created.revision + 1);
          expect(plain({ ...after, revision: 0, updatedAt: new Date(0) })).toEqual(
            plain({ ...created, revision: 0, updatedAt: new Date(0) }),
          );
        });

        it("updateEntries – refuses unknown ids and duplicates per item, in input order", async () => {
          const store = get();
          const [a, b] = okValues(await store.createEntries([newEntry("a"), newEntry("b")]));
          const results = await store.updateEntries([
            { ...newEntry("x"), id: "00000000-0000-4000-8000-000000000000" },
            // b would become identical to a
            { ...newEntry("a"), id: b!.id },
            { ...newEntry("a", { hint: "changed" }), id: a!.id },
          ]);
          expectItemError(results[0], "ca.entry.not_found", "not_found");
          expectItemError(results[1], "ca.entry.duplicate", "already_exists");
          expect(okValue(results[2]).after.hint).toBe("changed");
          expect(plain((await store.getEntry(b!.id))!)).toEqual(plain(b!));
          expect(await store.getRevision()).toBe(3);
        });

        it("updateEntries – new selectors replace the old ones in selector lookups", async () => {
          const store = get();
          const created = okValue((await store.createEntries([newEntry("web")]))[0]);
          okValue(
            (
              await store.updateEntries([
                { ...newEntry("web", { selectors: sels("k8s:ns:prod") }), id: created.id },
              ])
            )[0],
          );
          const oldMatch = await store.listEntries({
            bySelectors: { selectors: sels("k8s:ns:default", "k8s:sa:web"), match: "subset" },
          });
          expect(oldMatch.items).toEqual([]);
          const newMatch = await store.listEntries({
            bySelectors: { selectors: sels("k8s:ns:prod", "k8s:sa:web"), match: "subset" },
          });
          expect(newMatch.items.map((e) => e.id)).toEqual([created.id]);
        });

        it("deleteEntries – returns the deleted entry at the deletion's revision; a second delete is not_found", async () => {
          const store = get();
          const [a, b] = okValues(await store.createEntries([newEntry("a"), newEntry("b")]));
          const results = await store.deleteEntries([b!.id, "no-such-id", a!.id, b!.id]);
          const deletedB = okValue(results[0]);
          expect(plain({ ...deletedB, revision: 0 })).toEqual(plain({ ...b!, revision: 0 }));
          expect(deletedB.revision).toBe(3);
          expectItemError(results[1], "ca.entry.not_found", "not_found");
          expect(okValue(results[2]).id).toBe(a!.id);
          expect(okValue(results[2]).revision).toBe(4);
          expectItemError(results[3], "ca.entry.not_found", "not_found");
          expect(await store.getEntry(a!.id)).toBeUndefined();
          expect(await store.getEntry(b!.id)).toBeUndefined();
          expect(await store.getRevision()).toBe(4);
          const bySelector = await store.listEntries({
            bySelectors: { selectors: sels("k8s:ns:default", "k8s:sa:a"), match: "subset" },
          });
          expect(bySelector.items).toEqual([]);
          // The identity is free again.
          expect((await store.createEntries([newEntry("a")]))[0]?.ok).toBe(true);
        });

        it("revision – starts at 0; every create, update and delete takes the next one", async () => {
          const store = get();
          expect(await store.getRevision()).toBe(0);
          const created = okValues(
            await store.createEntries([newEntry("a"), newEntry("b"), newEntry("c")]),
          );
          expect(created.map((e) => e.revision)).toEqual([1, 2, 3]);
          expect(await store.getRevision()).toBe(3);

          // Refused items take no revision.
          const refused = await store.createEntries([newEntry("a"), newEntry("d")]);
          expect(refused[0]?.ok).toBe(false);
          expect(okValue(refused[1]).revision).toBe(4);

          const [updated] = await store.updateEntries([
            { ...newEntry("b", { hint: "x" }), id: created[1]!.id },
          ]);
          expect(okValue(updated).after.revision).toBe(5);
          expect((await store.getEntry(created[1]!.id))?.revision).toBe(5);
          // Untouched entries keep the revision of their last change.
          expect((await store.getEntry(created[0]!.id))?.revision).toBe(1);

          const [deleted] = await store.deleteEntries([created[2]!.id]);
          expect(okValue(deleted).revision).toBe(6);
          expect(await store.getRevision()).toBe(6);

          const all = (await store.listEntries({})).items;
          expect(Math.max(...all.map((e) => e.revision))).toBeLessThanOrEqual(6);
        });

        it("revision – concurrent batches never share a revision", async () => {
          const store = get();
          const batches = await Promise.all(
            [0, 1, 2, 3].map((b) =>
              store.createEntries(Array.from({ length: 25 }, (_, i) => newEntry(`w-${b}-${i}`))),
            ),
          );
          const revisions = batches.flat().map((r) => okValue(r).revision);
          expect(new Set(revisions).size).toBe(100);
          expect(sorted(revisions.map(String))).toEqual(
            sorted(Array.from({ length: 100 }, (_, i) => String(i + 1))),
          );
          expect(await store.getRevision()).toBe(100);
        });
      });

      describe("graph revision", () => {
        /** Entries parented to agent A: an alias, one entry under it, and a plain one. */
        async function graph(store: Datastore) {
          const alias = okValue(
            (
              await store.createEntries([
                newEntry("alias", { spiffeId: parseSpiffeId(`spiffe://${TD}/node/alias`) }),
              ])
            )[0],
          );
          const [nested, plainEntry] = okValues(
            await store.createEntries([
              newEntry("nested", { parentId: alias.spiffeId }),
              newEntry("plain"),
            ]),
          );
          return { alias, nested: nested!, plainEntry: plainEntry! };
        }

        it("getRevisions – an empty store is at 0 and 0; the revision matches getRevision", async () => {
          const store = get();
          expect(await store.getRevisions()).toEqual({ revision: 0, graphRevision: 0 });
          okValue((await store.createEntries([newEntry("a")]))[0]);
          expect((await store.getRevisions()).revision).toBe(await store.getRevision());
        });

        it("graph revision – creates that adopt no existing entry leave it (under the agent or under an alias)", async () => {
          const store = get();
          const { alias } = await graph(store);
          okValue((await store.createEntries([newEntry("more", { parentId: alias.spiffeId })]))[0]);
          expect(await store.getRevisions()).toEqual({ revision: 4, graphRevision: 0 });
        });

        it("graph revision – updates of selectors, TTL, DNS names, admin, hint or owner leave it", async () => {
          const store = get();
          const { nested, plainEntry } = await graph(store);
          const results = await store.updateEntries([
            {
              ...newEntry("plain", {
                selectors: sels("k8s:ns:prod"),
                x509SvidTtlSeconds: 60,
                dnsNames: ["plain.prod"],
                admin: true,
                hint: "h",
                owner: "registrar",
              }),
              id: plainEntry.id,
            },
            // Unchanged: still a change of the entry, not of the graph.
            {
              ...newEntry("nested", { parentId: nested.parentId }),
              id: nested.id,
            },
          ]);
          okValues(results);
          expect(await store.getRevisions()).toEqual({ revision: 5, graphRevision: 0 });
        });

        it("graph revision – a delete takes the deletion's revision", async () => {
          const store = get();
          const { plainEntry } = await graph(store);
          const deleted = okValue((await store.deleteEntries([plainEntry.id]))[0]);
          expect(await store.getRevisions()).toEqual({
            revision: deleted.revision,
            graphRevision: deleted.revision,
          });
        });

        it("graph revision – an update that changes the parent ID takes its revision", async () => {
          const store = get();
          const { plainEntry } = await graph(store);
          const { after } = okValue(
            (
              await store.updateEntries([
                { ...newEntry("plain", { parentId: AGENT_B }), id: plainEntry.id },
              ])
            )[0],
          );
          expect(await store.getRevisions()).toEqual({
            revision: after.revision,
            graphRevision: after.revision,
          });
        });

        it("graph revision – an update that changes the SPIFFE ID takes its revision", async () => {
          const store = get();
          const { alias } = await graph(store);
          const { after } = okValue(
            (
              await store.updateEntries([
                {
                  ...newEntry("alias", { spiffeId: parseSpiffeId(`spiffe://${TD}/node/other`) }),
                  id: alias.id,
                },
              ])
            )[0],
          );
          expect(await store.getRevisions()).toEqual({
            revision: after.revision,
            graphRevision: after.revision,
          });
        });

        it("graph revision – a create whose SPIFFE ID is an existing entry's parent ID takes its revision", async () => {
          const store = get();
          // An orphan first: parented to an ID no entry has yet.
          const orphan = okValue(
            (
              await store.createEntries([
                newEntry("orphan", { parentId: parseSpiffeId(`spiffe://${TD}/node/later`) }),
              ])
            )[0],
          );
          expect((await store.getRevisions()).graphRevision).toBe(0);
          const [plainEntry, adopter, after] = okValues(
            await store.createEntries([
              newEntry("p"),
              newEntry("adopter", { spiffeId: orphan.parentId }),
              newEntry("q"),
            ]),
          );
          expect(adopter!.revision).toBe(plainEntry!.revision + 1);
          // The graph change inside the batch, not the batch's last revision.
          expect(await store.getRevisions()).toEqual({
            revision: after!.revision,
            graphRevision: adopter!.revision,
          });
        });

        it("graph revision – refused items leave it; a later plain change keeps the last graph change", async () => {
          const store = get();
          const { alias, plainEntry } = await graph(store);
          const refusedDelete = await store.deleteEntries(["00000000-0000-4000-8000-000000000000"]);
          expectItemError(refusedDelete[0], "ca.entry.not_found", "not_found");
          // Moving `plain` under the alias would duplicate nothing, but the id is unknown.
          const refusedUpdate = await store.updateEntries([
            {
              ...newEntry("plain", { parentId: alias.spiffeId }),
              id: "00000000-0000-4000-8000-000000000000",
            },
          ]);
          expectItemError(refusedUpdate[0], "ca.entry.not_found", "not_found");
          // A create of an existing identity is refused even though its SPIFFE ID has children.
          const refusedCreate = await store.createEntries([
            newEntry("alias", { spiffeId: alias.spiffeId }),
          ]);
          expectItemError(refusedCreate[0], "ca.entry.duplicate", "already_exists");
          expect(await store.getRevisions()).toEqual({ revision: 3, graphRevision: 0 });

          const deleted = okValue((await store.deleteEntries([plainEntry.id]))[0]);
          okValue((await store.createEntries([newEntry("later")]))[0]);
          expect(await store.getRevisions()).toEqual({
            revision: deleted.revision + 1,
            graphRevision: deleted.revision,
          });
        });

        it("listEntriesChangedSince – full entries above the revision, by revision, at most limit", async () => {
          const store = get();
          const [a, b, c, d] = okValues(
            await store.createEntries([newEntry("a"), newEntry("b"), newEntry("c"), newEntry("d")]),
          );
          // b changes (it moves to the end), c is deleted (it is gone), B's entries count too.
          const { after: b2 } = okValue(
            (await store.updateEntries([{ ...newEntry("b", { hint: "v2" }), id: b!.id }]))[0],
          );
          okValue((await store.deleteEntries([c!.id]))[0]);
          const e = okValue((await store.createEntries([newEntry("e", { parentId: AGENT_B })]))[0]);

          const all = await store.listEntriesChangedSince(0, 100);
          expect(all.map(plain)).toEqual([a!, d!, b2, e].map(plain));
          expect((await store.listEntriesChangedSince(a!.revision, 100)).map((x) => x.id)).toEqual([
            d!.id,
            b2.id,
            e.id,
          ]);
          expect((await store.listEntriesChangedSince(a!.revision, 2)).map((x) => x.id)).toEqual([
            d!.id,
            b2.id,
          ]);
          expect(await store.listEntriesChangedSince(e.revision, 100)).toEqual([]);
          expect(await store.listEntriesChangedSince(await store.getRevision(), 1)).toEqual([]);
          await expectRejection(
            store.listEntriesChangedSince(0, 0),
            "ca.store.page_size",
            "invalid_argument",
          );
        });
      });

      describe("listing", () => {
        it("listEntries – an empty store has one empty last page", async () => {
          const page = await get().listEntries({});
          expect(page).toEqual({ items: [], nextPageToken: "" });
        });

        it("listEntries – page size defaults to 500, accepts up to 1000 and refuses more", async () => {
          const store = get();
          okValues(
            await store.createEntries(Array.from({ length: 520 }, (_, i) => newEntry(`w${i}`))),
          );
          const first = await store.listEntries({});
          expect(first.items).toHaveLength(500);
          expect(first.nextPageToken).not.toBe("");
          const rest = await store.listEntries({ pageToken: first.nextPageToken });
          expect(rest.items).toHaveLength(20);
          expect(rest.nextPageToken).toBe("");
          expect((await store.listEntries({ pageSize: 1000 })).items).toHaveLength(520);
          // An exactly full last page has no further token.
          const exact = await store.listEntries({ pageSize: 520 });
          expect(exact.items).toHaveLength(520);
          expect(exact.nextPageToken).toBe("");
          await expectRejection(
            store.listEntries({ pageSize: 1001 }),
            "ca.store.page_size",
            "invalid_argument",
          );
          await expectRejection(
            store.listEntries({ pageSize: -1 }),
            "ca.store.page_size",
            "invalid_argument",
          );
          await expectRejection(
            store.listAgents({ pageSize: 1001 }),
            "ca.store.page_size",
            "invalid_argument",
          );
        });

        it("listEntries – refuses a malformed page token", async () => {
          const store = get();
          await expectRejection(
            store.listEntries({ pageToken: "not a token" }),
            "ca.store.page_token",
            "invalid_argument",
          );
          await expectRejection(
            store.listAgents({ pageToken: "bm9wZQ" }),
            "ca.store.page_token",
            "invalid_argument",
          );
        });

        it("listEntries – pages over 10,000 entries see every entry exactly once, with and without filters", async () => {
          const store = get();
          const total = 10_000;
          const expected = new Map<string, NewRegistrationEntry>();
          for (let start = 0; start < total; start += 1000) {
            const batch = Array.from({ length: 1000 }, (_, k) => {
              const i = start + k;
              return newEntry(`w${i}`, {
                spiffeId: parseSpiffeId(`spiffe://${TD}/w/${i}`),
                parentId: i % 2 === 0 ? AGENT_A : AGENT_B,
                selectors: sels(`k8s:ns:ns-${i % 4}`, ...(i % 8 < 4 ? ["k8s:sa:web"] : [])),
                owner: i % 3 === 0 ? "registrar" : "",
              });
            });
            const results = okValues(await store.createEntries(batch));
            results.forEach((e, k) => expected.set(e.id, batch[k]!));
          }
          expect(expected.size).toBe(total);
          expect(await store.getRevision()).toBe(total);

          const check = async (
            params: Omit<ListEntriesParams, "pageToken">,
            keep: (e: NewRegistrationEntry) => boolean,
          ): Promise<number> => {
            const { ids, pages } = await collectEntryIds(store, params);
            expect(new Set(ids).size).toBe(ids.length); // no entry twice
            const want = [...expected].filter(([, e]) => keep(e)).map(([id]) => id);
            expect(sorted(ids)).toEqual(sorted(want));
            return pages;
          };

          expect(await check({ pageSize: 1000 }, () => true)).toBe(10);
          expect(await check({}, () => true)).toBe(20);
          expect(
            await check({ pageSize: 1000, byParentId: AGENT_B.toString() }, (e) =>
              e.parentId.equals(AGENT_B),
            ),
          ).toBe(5);
          const wanted = sels("k8s:ns:ns-0", "k8s:sa:web", "unix:uid:0");
          await check({ pageSize: 333, bySelectors: { selectors: wanted, match: "subset" } }, (e) =>
            selectorsMatch(e.selectors, wanted),
          );
          await check(
            {
              pageSize: 700,
              byParentId: AGENT_A.toString(),
              byOwner: "registrar",
              bySelectors: { selectors: sels("k8s:ns:ns-2", "k8s:sa:web"), match: "exact" },
            },
            (e) =>
              e.parentId.equals(AGENT_A) &&
              e.owner === "registrar" &&
              sorted(keys(e.selectors)).join() === "k8s:ns:ns-2,k8s:sa:web",
          );
        });

        it("listEntries – paging is stable while entries are added between pages", async () => {
          const store = get();
          const initial = okValues(
            await store.createEntries(Array.from({ length: 60 }, (_, i) => newEntry(`a${i}`))),
          );
          const seen: string[] = [];
          let pageToken = "";
          let round = 0;
          do {
            const page = await store.listEntries({ pageSize: 7, pageToken });
            seen.push(...page.items.map((e) => e.id));
            pageToken = page.nextPageToken;
            round += 1;
            okValues(
              await store.createEntries([newEntry(`late${round}`), newEntry(`later${round}`)]),
            );
          } while (pageToken !== "");
          expect(new Set(seen).size).toBe(seen.length);
          for (const e of initial) expect(seen).toContain(e.id);
        });

        it("listEntries – filters by parent, SPIFFE ID and owner, combined with AND", async () => {
          const store = get();
          const [a, b, c, d] = okValues(
            await store.createEntries([
              newEntry("a", { owner: "registrar" }),
              newEntry("b", { parentId: AGENT_B, owner: "registrar" }),
              newEntry("a", { parentId: AGENT_B }),
              newEntry("d"),
            ]),
          );
          const ids = async (params: ListEntriesParams): Promise<string[]> =>
            sorted((await store.listEntries(params)).items.map((e) => e.id));
          expect(await ids({ byParentId: AGENT_A.toString() })).toEqual(sorted([a!.id, d!.id]));
          expect(await ids({ byParentId: AGENT_B.toString() })).toEqual(sorted([b!.id, c!.id]));
          expect(await ids({ bySpiffeId: a!.spiffeId.toString() })).toEqual(sorted([a!.id, c!.id]));
          expect(await ids({ byOwner: "registrar" })).toEqual(sorted([a!.id, b!.id]));
          expect(await ids({ byOwner: "" })).toEqual(sorted([c!.id, d!.id]));
          expect(
            await ids({ byParentId: AGENT_B.toString(), bySpiffeId: a!.spiffeId.toString() }),
          ).toEqual([c!.id]);
          expect(await ids({ byParentId: AGENT_A.toString(), byOwner: "registrar" })).toEqual([
            a!.id,
          ]);
          expect(await ids({ byParentId: `spiffe://${TD}/nobody` })).toEqual([]);
        });

        it("listEntries – selectors exact matches the same set, subset what a workload with those selectors gets", async () => {
          const store = get();
          const [nsOnly, web, api, other] = okValues(
            await store.createEntries([
              newEntry("ns", { selectors: sels("k8s:ns:default") }),
              newEntry("web", { selectors: sels("k8s:ns:default", "k8s:sa:web") }),
              newEntry("api", { selectors: sels("k8s:ns:default", "k8s:sa:api") }),
              newEntry("other", { selectors: sels("k8s:ns:other", "unix:uid:1000") }),
            ]),
          );
          const ids = async (selectors: Selector[], match: "exact" | "subset"): Promise<string[]> =>
            sorted(
              (await store.listEntries({ bySelectors: { selectors, match } })).items.map(
                (e) => e.id,
              ),
            );
          expect(await ids(sels("k8s:ns:default", "k8s:sa:web"), "exact")).toEqual([web!.id]);
          expect(await ids(sels("k8s:sa:web", "k8s:ns:default", "k8s:sa:web"), "exact")).toEqual([
            web!.id,
          ]);
          expect(await ids(sels("k8s:ns:default"), "exact")).toEqual([nsOnly!.id]);
          expect(await ids(sels("k8s:sa:web"), "exact")).toEqual([]);
          expect(await ids([], "exact")).toEqual([]);

          expect(
            await ids(sels("k8s:ns:default", "k8s:sa:web", "unix:uid:1000"), "subset"),
          ).toEqual(sorted([nsOnly!.id, web!.id]));
          expect(await ids(sels("k8s:ns:default"), "subset")).toEqual([nsOnly!.id]);
          expect(await ids(sels("k8s:sa:web"), "subset")).toEqual([]);
          expect(
            await ids(sels("unix:uid:1000", "k8s:ns:other", "k8s:ns:default"), "subset"),
          ).toEqual(sorted([nsOnly!.id, other!.id]));
          expect(await ids([], "subset")).toEqual([]);
          expect(await ids(sels("k8s:ns:default", "k8s:sa:api", "k8s:sa:web"), "subset")).toEqual(
            sorted([nsOnly!.id, web!.id, api!.id]),
          );
          // Values compare exactly.
          expect(await ids(sels("k8s:ns:Default"), "subset")).toEqual([]);
        });

        it("listEntries – subset selectors page correctly", async () => {
          const store = get();
          const created = okValues(
            await store.createEntries(
              Array.from({ length: 30 }, (_, i) =>
                newEntry(`w${i}`, {
                  selectors: sels("k8s:ns:default", ...(i % 3 === 0 ? [] : [`k8s:sa:w${i}`])),
                }),
              ),
            ),
          );
          const wanted = sels("k8s:ns:default", "k8s:sa:w1", "k8s:sa:w2", "k8s:sa:w3");
          const { ids } = await collectEntryIds(store, {
            pageSize: 2,
            bySelectors: { selectors: wanted, match: "subset" },
          });
          const want = created.filter((e) => selectorsMatch(e.selectors, wanted)).map((e) => e.id);
          expect(want).toHaveLength(12);
          expect(sorted(ids)).toEqual(sorted(want));
        });

        it("listEntriesByParents – returns the entries of any of the given parents", async () => {
          const store = get();
          const agentC = parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/node-c`);
          const [a, b, , nested] = okValues(
            await store.createEntries([
              newEntry("a"),
              newEntry("b", { parentId: AGENT_B }),
              newEntry("c", { parentId: agentC }),
              newEntry("nested", { parentId: parseSpiffeId(`spiffe://${TD}/ns/default/sa/a`) }),
            ]),
          );
          const ids = async (parents: SpiffeId[]): Promise<string[]> =>
            sorted(
              (await store.listEntriesByParents(parents.map((p) => p.toString()))).map((e) => e.id),
            );
          expect(await ids([AGENT_A, AGENT_B])).toEqual(sorted([a!.id, b!.id]));
          expect(await ids([a!.spiffeId])).toEqual([nested!.id]);
          expect(await ids([])).toEqual([]);
          expect(await ids([parseSpiffeId(`spiffe://${TD}/nobody`)])).toEqual([]);
          const full = await store.listEntriesByParents([AGENT_A.toString()]);
          expect(plain(full[0]!)).toEqual(plain(a!));
        });

        it("listEntryRefsByParents – id, SPIFFE ID string and revision of the entries of any of the given parents", async () => {
          const store = get();
          const agentC = parseSpiffeId(`spiffe://${TD}/meshid/agent/join_token/node-c`);
          const [a, b, c, nested] = okValues(
            await store.createEntries([
              newEntry("a"),
              newEntry("b", { parentId: AGENT_B }),
              newEntry("c", { parentId: agentC }),
              newEntry("nested", { parentId: parseSpiffeId(`spiffe://${TD}/ns/default/sa/a`) }),
            ]),
          );
          const [b2] = okValues(await store.updateEntries([{ ...b!, hint: "v2" }]));
          const refs = async (parents: string[]) =>
            (await store.listEntryRefsByParents(parents)).sort((x, y) =>
              x.id < y.id ? -1 : x.id > y.id ? 1 : 0,
            );
          const refOf = (e: RegistrationEntry) => ({
            id: e.id,
            spiffeId: e.spiffeId.toString(),
            revision: e.revision,
          });
          const byId = (x: { id: string }, y: { id: string }) =>
            x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
          // Exactly the three fields, SPIFFE ID as a string, the revision of the last change.
          expect(await refs([AGENT_A.toString(), AGENT_B.toString()])).toEqual(
            [refOf(a!), refOf(b2!.after)].sort(byId),
          );
          expect(b2!.after.revision).toBeGreaterThan(b!.revision);
          expect(await refs([a!.spiffeId.toString()])).toEqual([refOf(nested!)]);
          expect(await refs([agentC.toString(), agentC.toString()])).toEqual([refOf(c!)]);
          expect(await store.listEntryRefsByParents([])).toEqual([]);
          expect(await refs([`spiffe://${TD}/nobody`, "not a spiffe id", ""])).toEqual([]);
        });

        it("listEntryRefsByParents – many parents in one call (more than the walk's chunk of 500)", async () => {
          const store = get();
          const count = 520;
          const created: RegistrationEntry[] = [];
          for (let i = 0; i < count; i += 260) {
            created.push(
              ...okValues(
                await store.createEntries(
                  Array.from({ length: 260 }, (_, k) =>
                    newEntry(`w${i + k}`, {
                      parentId: parseSpiffeId(
                        `spiffe://${TD}/meshid/agent/join_token/node-${i + k}`,
                      ),
                    }),
                  ),
                ),
              ),
            );
          }
          const parents = created.map((e) => e.parentId.toString());
          const unknown = Array.from({ length: 30 }, (_, i) => `spiffe://${TD}/unknown/${i}`);
          const refs = await store.listEntryRefsByParents([...unknown, ...parents]);
          expect(refs).toHaveLength(count);
          expect(sorted(refs.map((r) => r.id))).toEqual(sorted(created.map((e) => e.id)));
          // The last parents of a long list count as much as the first.
          expect((await store.listEntryRefsByParents(parents.slice(-3))).length).toBe(3);
        });

        it("getEntriesByIds – the stored entries of the given ids, unknown ids skipped", async () => {
          const store = get();
          const created = okValues(
            await store.createEntries(
              Array.from({ length: 5 }, (_, i) =>
                newEntry(`g${i}`, {
                  dnsNames: [`g${i}.example.org`],
                  hint: `h${i}`,
                  admin: i === 0,
                }),
              ),
            ),
          );
          const [first, second, , fourth] = created;
          const [updated] = okValues(await store.updateEntries([{ ...second!, owner: "ops" }]));
          const [deleted] = okValues(await store.deleteEntries([fourth!.id]));
          const got = await store.getEntriesByIds([
            second!.id,
            "00000000-0000-4000-8000-000000000000",
            first!.id,
            deleted!.id,
            "",
            "not-a-uuid",
            first!.id,
          ]);
          expect(sorted(got.map((e) => e.id))).toEqual(sorted([first!.id, second!.id]));
          // Full entries, equal to what getEntry returns (the update included).
          for (const e of got) expect(plain(e)).toEqual(plain((await store.getEntry(e.id))!));
          expect(plain(got.find((e) => e.id === second!.id)!)).toEqual(plain(updated!.after));
          expect(await store.getEntriesByIds([])).toEqual([]);
          expect(await store.getEntriesByIds(["00000000-0000-4000-8000-000000000000"])).toEqual([]);
        });

        it("getEntriesByIds – many ids in one call (more than the sync's chunk of 500)", async () => {
          const store = get();
          const created: RegistrationEntry[] = [];
          for (let i = 0; i < 520; i += 260) {
            created.push(
              ...okValues(
                await store.createEntries(
                  Array.from({ length: 260 }, (_, k) => newEntry(`m${i + k}`)),
                ),
              ),
            );
          }
          const ids = created.map((e) => e.id);
          const got = await store.getEntriesByIds(ids);
          expect(sorted(got.map((e) => e.id))).toEqual(sorted(ids));
          const last = await store.getEntriesByIds(ids.slice(-2));
          expect(sorted(last.map((e) => e.id))).toEqual(sorted(ids.slice(-2)));
        });
      });

      describe("agents", () => {
        it("putAgent – stores the agent and replaces one with the same SPIFFE ID", async () => {
          const store = get();
          const a = agent("node-a", {
            attestationType: "k8s_psat",
            selectors: sels("k8s_psat:cluster:c1", "k8s_psat:agent_node_name:node-a"),
          });
          await store.putAgent(a);
          expect(plainAgent((await store.getAgent(a.spiffeId.toString()))!)).toEqual(plainAgent(a));
          const renewed = {
            ...a,
            x509SvidSerial: "ab01",
            previousX509SvidSerial: a.x509SvidSerial,
            banned: true,
            updatedAt: new Date(5000),
          };
          await store.putAgent(renewed);
          expect(plainAgent((await store.getAgent(a.spiffeId.toString()))!)).toEqual(
            plainAgent(renewed),
          );
          expect((await store.listAgents({})).items).toHaveLength(1);
          expect(
            await store.getAgent(`spiffe://${TD}/meshid/agent/join_token/none`),
          ).toBeUndefined();
        });

        it("listAgents – pages through every agent once and filters by type and ban", async () => {
          const store = get();
          for (let i = 0; i < 25; i++) {
            await store.putAgent(
              agent(`n${String(i).padStart(2, "0")}`, {
                attestationType: i % 2 === 0 ? "join_token" : "k8s_psat",
                banned: i % 5 === 0,
              }),
            );
          }
          const all = await collectAgents(store, { pageSize: 10 });
          expect(all.pages).toBe(3);
          expect(new Set(all.ids).size).toBe(25);
          expect((await collectAgents(store, {})).ids).toHaveLength(25);
          expect(
            (await collectAgents(store, { pageSize: 4, byAttestationType: "k8s_psat" })).ids,
          ).toHaveLength(12);
          const banned = await collectAgents(store, { pageSize: 2, onlyBanned: true });
          expect(sorted(banned.ids)).toEqual(
            ["n00", "n05", "n10", "n15", "n20"].map(
              (n) => `spiffe://${TD}/meshid/agent/join_token/${n}`,
            ),
          );
          const bannedPsat = await collectAgents(store, {
            byAttestationType: "k8s_psat",
            onlyBanned: true,
          });
          expect(bannedPsat.ids).toHaveLength(2);
          expect((await collectAgents(store, { onlyBanned: false })).ids).toHaveLength(25);
        });

        it("deleteAgent – says whether the agent was there", async () => {
          const store = get();
          const a = agent("node-a");
          await store.putAgent(a);
          expect(await store.deleteAgent(a.spiffeId.toString())).toBe(true);
          expect(await store.getAgent(a.spiffeId.toString())).toBeUndefined();
          expect(await store.deleteAgent(a.spiffeId.toString())).toBe(false);
        });
      });

      describe("join tokens", () => {
        const t0 = new Date("2026-11-22T12:00:00.000Z");
        const at = (seconds: number): Date => new Date(t0.getTime() + seconds * 1000);

        it("consumeJoinToken – a token is consumed once", async () => {
          const store = get();
          await store.createJoinToken({ token: "tok-1", expiresAt: at(600) });
          expect(await store.consumeJoinToken("tok-1", at(10))).toBe("consumed");
          expect(await store.consumeJoinToken("tok-1", at(11))).toBe("not_found");
          expect(await store.consumeJoinToken("never-made", at(11))).toBe("not_found");
        });

        it("consumeJoinToken – concurrent consumers: exactly one succeeds", async () => {
          const store = get();
          await store.createJoinToken({ token: "tok-race", expiresAt: at(600) });
          const results = await Promise.all(
            Array.from({ length: 8 }, () => store.consumeJoinToken("tok-race", at(1))),
          );
          expect(results.filter((r) => r === "consumed")).toHaveLength(1);
          expect(results.filter((r) => r === "not_found")).toHaveLength(7);
        });

        it("consumeJoinToken – an expired token is refused and removed", async () => {
          const store = get();
          await store.createJoinToken({ token: "tok-old", expiresAt: at(60) });
          await store.createJoinToken({ token: "tok-edge", expiresAt: at(60) });
          expect(await store.consumeJoinToken("tok-old", at(61))).toBe("expired");
          expect(await store.consumeJoinToken("tok-old", at(0))).toBe("not_found");
          // Expired at exactly expiresAt.
          expect(await store.consumeJoinToken("tok-edge", at(60))).toBe("expired");
        });

        it("createJoinToken – refuses an existing token with ca.join_token.duplicate", async () => {
          const store = get();
          await store.createJoinToken({ token: "tok-dup", expiresAt: at(60) });
          await expectRejection(
            store.createJoinToken({ token: "tok-dup", expiresAt: at(120) }),
            "ca.join_token.duplicate",
            "already_exists",
          );
          // The first token (and its expiry) is untouched.
          expect(await store.consumeJoinToken("tok-dup", at(90))).toBe("expired");
        });

        it("pruneJoinTokens – deletes only tokens expired at the given time", async () => {
          const store = get();
          await store.createJoinToken({ token: "a", expiresAt: at(10) });
          await store.createJoinToken({ token: "b", expiresAt: at(20) });
          await store.createJoinToken({ token: "c", expiresAt: at(30) });
          expect(await store.pruneJoinTokens(at(20))).toBe(2);
          expect(await store.pruneJoinTokens(at(20))).toBe(0);
          expect(await store.consumeJoinToken("a", at(0))).toBe("not_found");
          expect(await store.consumeJoinToken("c", at(25))).toBe("consumed");
        });
      });

      describe("authorities and bundle", () => {
        it("saveAuthorities – round-trips the journal with certificates and upstream chains", async () => {
          const store = get();
          expect(await store.listAuthorities()).toEqual([]);
          const records = [
            authority("aa01", { state: "old", tainted: true }),
            authority("bb02", {
              state: "active",
              keyType: "rsa-2048",
              upstreamAuthorityId: "ff99",
              upstreamChainDer: [
                new Uint8Array(randomBytes(200)),
                new Uint8Array(randomBytes(250)),
              ],
            }),
            authority("cc03", {
              state: "prepared",
              upstreamChainDer: [new Uint8Array(randomBytes(10)).subarray(2, 8)],
            }),
          ];
          await store.saveAuthorities(records);
          const byId = (list: readonly AuthorityRecord[]): AuthorityRecord[] =>
            [...list].sort((x, y) => (x.authorityId < y.authorityId ? -1 : 1));
          const listed = byId(await store.listAuthorities());
          expect(listed).toHaveLength(3);
          listed.forEach((got, i) => {
            const want = records[i]!;
            expect({
              ...got,
              certDer: [...got.certDer],
              upstreamChainDer: got.upstreamChainDer.map((d) => [...d]),
            }).toEqual({
              ...want,
              certDer: [...want.certDer],
              upstreamChainDer: want.upstreamChainDer.map((d) => [...d]),
            });
            expect(got.certDer).toBeInstanceOf(Uint8Array);
          });
        });

        it("saveAuthorities – replaces the whole journal", async () => {
          const store = get();
          await store.saveAuthorities([authority("aa01"), authority("bb02")]);
          await store.saveAuthorities([authority("bb02", { state: "old" }), authority("cc03")]);
          const listed = await store.listAuthorities();
          expect(sorted(listed.map((a) => `${a.authorityId}:${a.state}`))).toEqual([
            "bb02:old",
            "cc03:active",
          ]);
          await store.saveAuthorities([]);
          expect(await store.listAuthorities()).toEqual([]);
        });

        it("saveAuthorities – a refused journal leaves the previous one in place", async () => {
          const store = get();
          await store.saveAuthorities([authority("aa01")]);
          await expect(
            store.saveAuthorities([authority("bb02"), authority("bb02")]),
          ).rejects.toBeInstanceOf(MeshidError);
          expect((await store.listAuthorities()).map((a) => a.authorityId)).toEqual(["aa01"]);
        });

        it("saveBundle – stores the bundle and replaces it", async () => {
          const store = get();
          expect(await store.getBundle()).toBeUndefined();
          const first: BundleRecord = {
            trustDomain: TD,
            sequenceNumber: 1,
            refreshHintSeconds: 300,
            x509Authorities: [
              { certDer: new Uint8Array(randomBytes(400)), tainted: false },
              { certDer: new Uint8Array(randomBytes(380)), tainted: true },
            ],
          };
          await store.saveBundle(first);
          const comparable = (b: BundleRecord | undefined): unknown =>
            b === undefined
              ? undefined
              : {
                  ...b,
                  x509Authorities: b.x509Authorities.map((a) => ({
                    ...a,
                    certDer: [...a.certDer],
                  })),
                };
          expect(comparable(await store.getBundle())).toEqual(comparable(first));
          const second: BundleRecord = {
            ...first,
            sequenceNumber: 2,
            refreshHintSeconds: 60,
            x509Authorities: [first.x509Authorities[1]!],
          };
          await store.saveBundle(second);
          expect(comparable(await store.getBundle())).toEqual(comparable(second));
        });
      });

      describe("close", () => {
        it("close – is idempotent and later calls reject with ca.store.closed", async () => {
          const store = get();
          okValue((await store.createEntries([newEntry("a")]))[0]);
          await store.close();
          await store.close();
          await expectRejection(store.getRevision(), "ca.store.closed", "unavailable");
          await expectRejection(store.getRevisions(), "ca.store.closed", "unavailable");
          await expectRejection(
            store.listEntriesChangedSince(0, 10),
            "ca.store.closed",
            "unavailable",
          );
          await expectRejection(
            store.createEntries([newEntry("b")]),
            "ca.store.closed",
            "unavailable",
          );
          await expectRejection(store.listEntries({}), "ca.store.closed", "unavailable");
          await expectRejection(
            store.listEntryRefsByParents([AGENT_A.toString()]),
            "ca.store.closed",
            "unavailable",
          );
          await expectRejection(store.getEntriesByIds(["x"]), "ca.store.closed", "unavailable");
          await expectRejection(store.getBundle(), "ca.store.closed", "unavailable");
        });
      });
    },
  );
}
