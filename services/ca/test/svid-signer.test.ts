// SvidSigner on the real SQLite datastore and the real EntryManager (transitive
// authorisation), with real certificates: every SVID passes validateX509Svid and
// `openssl verify`; bad input gets a precise status and changes nothing.
import type { MeshidError } from "@meshid/errors";
import { parseSpiffeId } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import { createSqliteDatastore } from "../src/adapters/sqlite-datastore";
import type { EntryManager, SvidSigner } from "../src/api/deps";
import { createEntryManager } from "../src/domain/entry-manager";
import { createSvidSigner } from "../src/domain/svid-signer";
import type { NewRegistrationEntry, RegistrationEntry } from "../src/domain/types";
import type { Datastore } from "../src/ports";
import {
  createFakeClock,
  createRecordingEventSink,
  createTestAuthority,
  makeCsr,
  mismatchedCsrDer,
  opensslVerify,
  rsa1024CsrDer,
  validateIssuedSvid,
  type FakeClock,
  type RecordingEventSink,
  type TestAuthority,
} from "../src/testing/signing-fixtures";

const TD = "example.org";
// Whole seconds: certificates have second precision. Real time, so openssl can check validity.
const START = new Date(Math.floor(Date.now() / 1000) * 1000);
const AGENT_A = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/agent-a");
const AGENT_B = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/agent-b");

function newEntry(
  path: string,
  parent: string,
  over: Partial<NewRegistrationEntry> = {},
): NewRegistrationEntry {
  return {
    spiffeId: parseSpiffeId(`spiffe://example.org${path}`),
    parentId: parseSpiffeId(parent),
    selectors: [{ type: "k8s", value: `pod-name:${path.split("/").pop() ?? "x"}` }],
    x509SvidTtlSeconds: 0,
    dnsNames: [],
    admin: false,
    hint: "",
    owner: "",
    ...over,
  };
}

describe("SvidSigner with SQLite and EntryManager", () => {
  let store: Datastore;
  let entries: EntryManager;
  let authority: TestAuthority;
  let events: RecordingEventSink;
  let clock: FakeClock;
  let signer: SvidSigner;
  let web: RegistrationEntry;
  let nested: RegistrationEntry;
  let rsaEntry: RegistrationEntry;
  let other: RegistrationEntry;

  beforeAll(async () => {
    store = await createSqliteDatastore({ path: ":memory:" });
    events = createRecordingEventSink();
    clock = createFakeClock(START);
    authority = await createTestAuthority({ now: START, intermediate: true });
    entries = createEntryManager({
      trustDomain: TD,
      store,
      events: createRecordingEventSink(),
      logger: createNoopLogger(),
    });
    const created = await entries.batchCreate([
      newEntry("/ns/shop/sa/web", AGENT_A.toString(), {
        dnsNames: ["web.shop.svc", "web"],
        hint: "web",
        x509SvidTtlSeconds: 900,
      }),
      // Parented to a node alias entry of agent A: authorised transitively.
      newEntry("/node/alias-a", AGENT_A.toString()),
      newEntry("/ns/shop/sa/nested", "spiffe://example.org/node/alias-a"),
      newEntry("/ns/shop/sa/rsa", AGENT_A.toString()),
      newEntry("/ns/bank/sa/vault", AGENT_B.toString()),
    ]);
    const values = created.map((r) => {
      if (!r.ok) throw r.error;
      return r.value;
    });
    [web, , nested, rsaEntry, other] = values as [
      RegistrationEntry,
      RegistrationEntry,
      RegistrationEntry,
      RegistrationEntry,
      RegistrationEntry,
    ];
    signer = createSvidSigner({
      trustDomain: TD,
      store,
      entries,
      authority,
      events,
      clock,
      logger: createNoopLogger(),
      limits: { maxBatchSize: 10, signRatePerAgent: { perSecond: 5, burst: 40 } },
    });
  });

  afterAll(async () => {
    await store.close();
  });

  it("signer – SVIDs of every key type pass validateX509Svid and openssl verify (client and server)", async () => {
    const csrs = await Promise.all(
      (["ec-p256", "ec-p384", "rsa-2048", "rsa-4096"] as const).map((t) => makeCsr(t)),
    );
    const items = [
      { entryId: web.id, csrDer: csrs[0]?.csrDer as Uint8Array },
      { entryId: nested.id, csrDer: csrs[1]?.csrDer as Uint8Array },
      { entryId: rsaEntry.id, csrDer: csrs[2]?.csrDer as Uint8Array },
      { entryId: rsaEntry.id, csrDer: csrs[3]?.csrDer as Uint8Array },
    ];
    const results = await signer.batchNewX509Svid(AGENT_A, items);
    expect(results.map((r) => r.ok)).toEqual([true, true, true, true]);
    for (const r of results) {
      if (!r.ok) throw r.error;
      const validated = await validateIssuedSvid(r.value.certChainDer, authority, START);
      expect(validated.spiffeId.toString()).toBe(r.value.spiffeId.toString());
      for (const purpose of ["sslclient", "sslserver"] as const) {
        expect(
          await opensslVerify(r.value.certChainDer, authority.rootCertDer, purpose, START),
        ).toMatch(/OK/);
      }
    }
    const [w] = results;
    if (w?.ok !== true) throw new Error("expected an SVID");
    expect(w.value.hint).toBe("web");
    expect(w.value.expiresAt.getTime() - START.getTime()).toBe(900_000);
    expect(events.ofType("svid.issued").map((e) => e.entryId)).toEqual(items.map((i) => i.entryId));
  });

  type Case = {
    name: string;
    kind: MeshidError["kind"];
    code: string;
    /** "item": the item's error; "call": the whole call is refused. */
    scope: "item" | "call";
    run: () => Promise<unknown>;
  };

  const one = (entryId: () => string, csr: () => Promise<Uint8Array> | Uint8Array) => async () => {
    const [r] = await signer.batchNewX509Svid(AGENT_A, [
      { entryId: entryId(), csrDer: await csr() },
    ]);
    return r;
  };

  const cases: Case[] = [
    {
      name: "malformed CSR",
      kind: "invalid_argument",
      code: "pki.csr.malformed",
      scope: "item",
      run: one(
        () => web.id,
        () => new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00]),
      ),
    },
    {
      name: "CSR signed by another key",
      kind: "invalid_argument",
      code: "pki.csr.signature",
      scope: "item",
      run: one(() => web.id, mismatchedCsrDer),
    },
    {
      name: "RSA-1024 key",
      kind: "invalid_argument",
      code: "pki.key.unsupported",
      scope: "item",
      run: one(() => web.id, rsa1024CsrDer),
    },
    {
      name: "entry of another agent",
      kind: "not_found",
      code: "ca.entry.not_found",
      scope: "item",
      run: one(
        () => other.id,
        async () => (await makeCsr()).csrDer,
      ),
    },
    {
      name: "unknown entry",
      kind: "not_found",
      code: "ca.entry.not_found",
      scope: "item",
      run: one(
        () => "00000000-0000-4000-8000-000000000000",
        async () => (await makeCsr()).csrDer,
      ),
    },
    {
      name: "oversized batch",
      kind: "resource_exhausted",
      code: "ca.batch.too_large",
      scope: "call",
      run: async () => {
        const { csrDer } = await makeCsr();
        return signer.batchNewX509Svid(
          AGENT_A,
          Array.from({ length: 11 }, () => ({ entryId: web.id, csrDer })),
        );
      },
    },
    {
      name: "rate limit exceeded",
      kind: "resource_exhausted",
      code: "ca.rate_limited",
      scope: "call",
      run: async () => {
        const { csrDer } = await makeCsr();
        const batch = Array.from({ length: 10 }, () => ({ entryId: web.id, csrDer }));
        // The bucket (burst 40) is spent by the earlier tests and these batches; no refill
        // happens because the fake clock does not move.
        for (let i = 0; i < 10; i++) await signer.batchNewX509Svid(AGENT_A, batch);
        return undefined;
      },
    },
  ];

  it.each(cases)("signer – bad input: $name → $kind ($code), store unchanged", async (c) => {
    const revision = await store.getRevision();
    const listed = await store.listEntries({});
    events.events.length = 0;
    let error: unknown;
    if (c.scope === "item") {
      const r = (await c.run()) as { ok: boolean; error?: MeshidError };
      expect(r.ok).toBe(false);
      error = r.error;
    } else {
      error = await c.run().then(
        () => undefined,
        (e: unknown) => e,
      );
    }
    expect(error).toMatchObject({ kind: c.kind, code: c.code });
    if (c.code !== "ca.rate_limited") expect(events.events).toHaveLength(0);
    expect(await store.getRevision()).toBe(revision);
    expect(await store.listEntries({})).toEqual(listed);
  });

  it("signer – the rate limit lifts as the clock moves on", async () => {
    const { csrDer } = await makeCsr();
    clock.advance(2_000);
    const results = await signer.batchNewX509Svid(AGENT_A, [{ entryId: web.id, csrDer }]);
    expect(results[0]?.ok).toBe(true);
  });
});
