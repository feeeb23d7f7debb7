import { isMeshidError, MeshidError } from "@meshid/errors";
import { parseSpiffeId, type SpiffeId } from "@meshid/spiffe";
import { createMemoryLogger } from "@meshid/telemetry";
import { metrics, type Meter, type MeterProvider } from "@opentelemetry/api";
import {
  certificateNames,
  createFakeClock,
  createRecordingEventSink,
  createTestAuthority,
  makeCsr,
  validateIssuedSvid,
  type TestAuthority,
} from "../testing/signing-fixtures";
import {
  METRIC_SIGN_BATCH_DURATION,
  METRIC_SVIDS_SIGNED,
  createSvidSigner,
  type SvidSignerLimits,
} from "./svid-signer";
import type { RegistrationEntry } from "./types";

const TD = "example.org";
const START = new Date("2026-11-22T12:00:00Z");
const AGENT_A = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/a");
const AGENT_B = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/b");

function entry(id: string, parent: SpiffeId, over: Partial<RegistrationEntry> = {}) {
  const e: RegistrationEntry = {
    id,
    spiffeId: parseSpiffeId(`spiffe://example.org/ns/shop/sa/${id}`),
    parentId: parent,
    selectors: [{ type: "k8s", value: `pod-uid:00000000-0000-4000-8000-00000000000${id.length}` }],
    x509SvidTtlSeconds: 0,
    dnsNames: [`${id}.shop.svc`],
    admin: false,
    hint: `hint-${id}`,
    owner: "",
    revision: 1,
    createdAt: START,
    updatedAt: START,
    ...over,
  };
  return e;
}

async function setup(opts: { limits?: SvidSignerLimits; entries?: RegistrationEntry[] } = {}) {
  const clock = createFakeClock(START);
  const authority: TestAuthority = await createTestAuthority({ now: START, intermediate: true });
  const events = createRecordingEventSink();
  const log = createMemoryLogger();
  const entries = new Map(
    (opts.entries ?? [entry("web", AGENT_A), entry("api", AGENT_A), entry("db", AGENT_B)]).map(
      (e) => [e.id, e],
    ),
  );
  const signer = createSvidSigner({
    trustDomain: TD,
    store: { getEntry: (id) => Promise.resolve(entries.get(id)) },
    // Direct parenting only: the real, transitive rule is exercised in test/svid-signer.test.ts.
    entries: { isAuthorized: (agent, e) => Promise.resolve(e.parentId.equals(agent)) },
    authority,
    events,
    clock,
    logger: log.logger,
    ...(opts.limits === undefined ? {} : { limits: opts.limits }),
  });
  return { clock, authority, events, log, entries, signer };
}

describe("createSvidSigner", () => {
  it("batch – builds the SVID from the entry, never from the CSR's SANs", async () => {
    const { signer, authority } = await setup();
    const csr = await makeCsr("ec-p256", {
      spiffeId: "spiffe://example.org/ns/kube-system/sa/admin",
      dnsNames: ["evil.example.com"],
    });
    const [r] = await signer.batchNewX509Svid(AGENT_A, [{ entryId: "web", csrDer: csr.csrDer }]);
    if (r?.ok !== true) throw new Error("expected an SVID");
    expect(r.value.entryId).toBe("web");
    expect(r.value.hint).toBe("hint-web");
    expect(r.value.spiffeId.toString()).toBe("spiffe://example.org/ns/shop/sa/web");
    expect(r.value.certChainDer).toHaveLength(2);
    expect(r.value.certChainDer[1]).toEqual(authority.signingCertDer);
    const info = certificateNames(r.value.certChainDer[0] as Uint8Array);
    expect(info.uris).toEqual(["spiffe://example.org/ns/shop/sa/web"]);
    expect(info.dnsNames).toEqual(["web.shop.svc"]);
    expect(info.serialHex).toBe(r.value.serialHex.replace(/^0+/, ""));
    const validated = await validateIssuedSvid(r.value.certChainDer, authority, START);
    expect(validated.spiffeId.toString()).toBe("spiffe://example.org/ns/shop/sa/web");
  });

  it("batch – TTL is the entry's, else the mesh svidTTL (applied at once), capped by the CA", async () => {
    const { signer, authority } = await setup({
      entries: [
        entry("short", AGENT_A, { x509SvidTtlSeconds: 600 }),
        entry("dflt", AGENT_A),
        entry("long", AGENT_A, { x509SvidTtlSeconds: 10 * 24 * 3600 }),
      ],
    });
    const csr = await makeCsr();
    const sign = async (entryId: string) => {
      const [r] = await signer.batchNewX509Svid(AGENT_A, [{ entryId, csrDer: csr.csrDer }]);
      if (r?.ok !== true) throw new Error("expected an SVID");
      return r.value.expiresAt.getTime() - START.getTime();
    };
    expect(await sign("short")).toBe(600_000);
    expect(await sign("dflt")).toBe(3_600_000);
    authority.setSvidTtlSeconds(120);
    expect(await sign("dflt")).toBe(120_000);
    const capped = await sign("long");
    expect(START.getTime() + capped).toBe(authority.activeSigner().issuer.issuerNotAfter.getTime());
  });

  it("batch – one bad CSR in a batch of 10 gives 9 SVIDs and 1 error, in order", async () => {
    const many = Array.from({ length: 10 }, (_, i) => entry(`w${i}`, AGENT_A));
    const { signer, events } = await setup({ entries: many });
    const csr = await makeCsr();
    const items = many.map((e, i) => ({
      entryId: e.id,
      csrDer: i === 4 ? csr.csrDer.subarray(0, 20) : csr.csrDer,
    }));
    const results = await signer.batchNewX509Svid(AGENT_A, items);
    expect(results.map((r) => r.ok)).toEqual([
      true,
      true,
      true,
      true,
      false,
      true,
      true,
      true,
      true,
      true,
    ]);
    const bad = results[4];
    expect(bad?.ok === false && bad.error.code).toBe("pki.csr.malformed");
    expect(bad?.ok === false && bad.error.kind).toBe("invalid_argument");
    expect(events.ofType("svid.issued")).toHaveLength(9);
  });

  it("batch – another agent's entry and an unknown entry get the same not_found error", async () => {
    const { signer, events } = await setup();
    const csr = await makeCsr();
    const [other, unknown] = await signer.batchNewX509Svid(AGENT_A, [
      { entryId: "db", csrDer: csr.csrDer },
      { entryId: "nope", csrDer: csr.csrDer },
    ]);
    if (other?.ok !== false || unknown?.ok !== false) throw new Error("expected errors");
    expect(other.error.code).toBe("ca.entry.not_found");
    expect(other.error.kind).toBe("not_found");
    expect(unknown.error.code).toBe(other.error.code);
    expect(other.error.message.replace('"db"', "")).toBe(
      unknown.error.message.replace('"nope"', ""),
    );
    expect(events.events).toHaveLength(0);
  });

  it("batch – larger than maxBatchSize is refused whole with resource_exhausted", async () => {
    const { signer, events } = await setup({ limits: { maxBatchSize: 2 } });
    const csr = await makeCsr();
    const item = { entryId: "web", csrDer: csr.csrDer };
    await expect(signer.batchNewX509Svid(AGENT_A, [item, item, item])).rejects.toMatchObject({
      kind: "resource_exhausted",
      code: "ca.batch.too_large",
    });
    expect(events.events).toHaveLength(0);
    expect(await signer.batchNewX509Svid(AGENT_A, [item, item])).toHaveLength(2);
  });

  it("batch – over the per-agent rate the whole call is refused until the bucket refills", async () => {
    const { signer, clock } = await setup({
      limits: { signRatePerAgent: { perSecond: 2, burst: 4 } },
    });
    const csr = await makeCsr();
    const item = { entryId: "web", csrDer: csr.csrDer };
    expect(await signer.batchNewX509Svid(AGENT_A, [item, item, item])).toHaveLength(3);
    await expect(signer.batchNewX509Svid(AGENT_A, [item, item])).rejects.toMatchObject({
      kind: "resource_exhausted",
      code: "ca.rate_limited",
    });
    // Other agents have their own bucket.
    const [b] = await signer.batchNewX509Svid(AGENT_B, [{ entryId: "db", csrDer: csr.csrDer }]);
    expect(b?.ok).toBe(true);
    clock.advance(500);
    expect(await signer.batchNewX509Svid(AGENT_A, [item, item])).toHaveLength(2);
  });

  it("batch – svid.issued carries identifiers only, one per SVID", async () => {
    const { signer, events } = await setup();
    const csr = await makeCsr();
    const results = await signer.batchNewX509Svid(AGENT_A, [
      { entryId: "web", csrDer: csr.csrDer },
      { entryId: "api", csrDer: csr.csrDer },
    ]);
    const issued = events.ofType("svid.issued");
    expect(issued).toHaveLength(2);
    const first = results[0];
    if (first?.ok !== true) throw new Error("expected an SVID");
    expect(issued[0]).toEqual({
      entryId: "web",
      spiffeId: { trustDomain: "example.org", path: "/ns/shop/sa/web" },
      serial: first.value.serialHex,
      expiresAt: first.value.expiresAt,
      agentId: AGENT_A.toString(),
    });
    expect(JSON.stringify(events.events)).not.toMatch(/PRIVATE KEY|BEGIN/);
  });

  it("batch – a failed publish is logged and the SVIDs are still returned", async () => {
    const { signer, events, log } = await setup();
    events.failing = true;
    const csr = await makeCsr();
    const [r] = await signer.batchNewX509Svid(AGENT_A, [{ entryId: "web", csrDer: csr.csrDer }]);
    expect(r?.ok).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log.entries().some((l) => l.msg === "publishing svid.issued failed")).toBe(true);
  });

  it("batch – a store failure fails the call", async () => {
    const { authority, events, clock, log } = await setup();
    const signer = createSvidSigner({
      trustDomain: TD,
      store: {
        getEntry: () => Promise.reject(new MeshidError("unavailable", "ca.store.busy", "busy")),
      },
      entries: { isAuthorized: () => Promise.resolve(true) },
      authority,
      events,
      clock,
      logger: log.logger,
    });
    const csr = await makeCsr();
    await expect(
      signer.batchNewX509Svid(AGENT_A, [{ entryId: "web", csrDer: csr.csrDer }]),
    ).rejects.toMatchObject({ code: "ca.store.busy" });
  });

  it("mint – signs an explicit SPIFFE ID with DNS names and TTL", async () => {
    const { signer, authority, events } = await setup();
    const csr = await makeCsr("ec-p384");
    const svid = await signer.mintX509Svid({
      csrDer: csr.csrDer,
      spiffeId: parseSpiffeId("spiffe://example.org/admin/meshctl"),
      dnsNames: ["meshctl.local"],
      ttlSeconds: 300,
    });
    expect(svid.expiresAt.getTime() - START.getTime()).toBe(300_000);
    expect(svid.hint).toBe("");
    const info = certificateNames(svid.certChainDer[0] as Uint8Array);
    expect(info.uris).toEqual(["spiffe://example.org/admin/meshctl"]);
    expect(info.dnsNames).toEqual(["meshctl.local"]);
    await validateIssuedSvid(svid.certChainDer, authority, START);
    expect(events.events).toHaveLength(0);
    const dflt = await signer.mintX509Svid({
      csrDer: csr.csrDer,
      spiffeId: parseSpiffeId("spiffe://example.org/admin/meshctl"),
      dnsNames: [],
      ttlSeconds: 0,
    });
    expect(dflt.expiresAt.getTime() - START.getTime()).toBe(3_600_000);
  });

  it.each([
    ["the trust-domain ID", "spiffe://example.org", 60, "ca.svid.spiffe_id_invalid"],
    ["another trust domain", "spiffe://other.org/x", 60, "ca.svid.spiffe_id_invalid"],
    ["a negative TTL", "spiffe://example.org/x", -1, "ca.svid.ttl_invalid"],
  ])("mint – refuses %s with invalid_argument", async (_what, id, ttlSeconds, code) => {
    const { signer } = await setup();
    const csr = await makeCsr();
    const err: unknown = await signer
      .mintX509Svid({ csrDer: csr.csrDer, spiffeId: parseSpiffeId(id), dnsNames: [], ttlSeconds })
      .catch((e: unknown) => e);
    expect(isMeshidError(err, code)).toBe(true);
    expect(err).toMatchObject({ kind: "invalid_argument" });
  });

  it("mint – a CSR whose signature does not verify is pki.csr.signature", async () => {
    const { signer } = await setup();
    const csr = await makeCsr();
    const tampered = new Uint8Array(csr.csrDer);
    tampered[tampered.length - 5] = (tampered[tampered.length - 5] ?? 0) ^ 0xff;
    await expect(
      signer.mintX509Svid({
        csrDer: tampered,
        spiffeId: parseSpiffeId("spiffe://example.org/x"),
        dnsNames: [],
        ttlSeconds: 0,
      }),
    ).rejects.toMatchObject({ kind: "invalid_argument", code: "pki.csr.signature" });
  });

  describe("metrics", () => {
    const recorded: { name: string; value: number; attributes?: unknown }[] = [];
    beforeAll(() => {
      // A minimal MeterProvider that records what the signer reports.
      const instrument = (name: string) => ({
        add: (value: number, attributes?: unknown) => recorded.push({ name, value, attributes }),
        record: (value: number, attributes?: unknown) => recorded.push({ name, value, attributes }),
      });
      const meter = {
        createCounter: instrument,
        createHistogram: instrument,
      } as unknown as Meter;
      const provider: MeterProvider = { getMeter: () => meter };
      metrics.setGlobalMeterProvider(provider);
    });
    afterAll(() => {
      metrics.disable();
    });

    it("metrics – counts signed SVIDs and records the batch duration under the constant names", async () => {
      const { signer } = await setup();
      const csr = await makeCsr();
      await signer.batchNewX509Svid(AGENT_A, [
        { entryId: "web", csrDer: csr.csrDer },
        { entryId: "api", csrDer: csr.csrDer },
        { entryId: "db", csrDer: csr.csrDer },
      ]);
      expect(METRIC_SVIDS_SIGNED).toBe("meshid_ca_svids_signed_total");
      expect(METRIC_SIGN_BATCH_DURATION).toBe("meshid_ca_sign_batch_duration_seconds");
      expect(recorded.filter((r) => r.name === METRIC_SVIDS_SIGNED)).toEqual([
        { name: METRIC_SVIDS_SIGNED, value: 2, attributes: { kind: "batch" } },
      ]);
      const durations = recorded.filter((r) => r.name === METRIC_SIGN_BATCH_DURATION);
      expect(durations).toHaveLength(1);
      expect(durations[0]?.value).toBeGreaterThanOrEqual(0);
    });
  });
});
