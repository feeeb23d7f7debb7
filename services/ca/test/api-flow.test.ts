// The CA's API end to end in process: real nats-server, SQLite, gRPC over TCP mTLS and the
// admin Unix socket. One flow, step by step (each test builds on the previous ones).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { agentWakeupSubject, subscribeEvents, type ReceivedEvent } from "@meshid/events";
import { certificatesToPem } from "@meshid/pki";
import type { meshidCaV1, meshidTypesV1 } from "@meshid/proto";
import { createBundle, type Bundle, validateX509Svid } from "@meshid/spiffe";
import { runCommand, startNatsServer, type NatsServer } from "@meshid/testkit";
import type { NatsConnection } from "nats";
import { ClientError, Status } from "nice-grpc-common";
import { startCaHarness, type CaHarness, type TestAgent } from "../src/testing/ca-api-harness";

jest.setTimeout(60_000);

function selectorsFor(name: string): meshidTypesV1.Selector[] {
  return [
    { type: "k8s", value: "ns:default" },
    { type: "k8s", value: `sa:${name}` },
  ];
}

async function statusOf(p: Promise<unknown>): Promise<Status | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof ClientError) return err.code;
    throw err;
  }
}

function bundleOf(res: meshidCaV1.GetBundleResponse): Bundle {
  return createBundle({
    trustDomain: "example.org",
    x509Authorities: res.bundle?.x509Authorities.map((a) => a.asn1) ?? [],
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe("ca api – end-to-end flow", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let h: CaHarness;
  let agentA: TestAgent;
  let agentB: TestAgent;
  const events: ReceivedEvent[] = [];
  const eventsAbort = new AbortController();
  let eventsLoop: Promise<void>;
  let aEntries: meshidTypesV1.RegistrationEntry[] = [];
  let bEntry: meshidTypesV1.RegistrationEntry;

  async function waitForEvent(
    pred: (e: ReceivedEvent) => boolean,
    what: string,
  ): Promise<ReceivedEvent> {
    for (let i = 0; i < 400; i += 1) {
      const hit = events.find(pred);
      if (hit !== undefined) return hit;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no ${what} event`);
  }

  beforeAll(async () => {
    nats = await startNatsServer({ jetstream: true });
    nc = await nats.connect();
    const sub = subscribeEvents({ nc, types: "all", signal: eventsAbort.signal });
    eventsLoop = (async () => {
      for await (const e of sub) events.push(e);
    })();
    await nc.flush();
    h = await startCaHarness({ natsUrl: nats.url });
  });

  afterAll(async () => {
    eventsAbort.abort();
    await eventsLoop?.catch(() => undefined);
    await h?.close();
    await nats?.stop();
  });

  it("flow – agents attest over server-TLS with a join token and a CSR", async () => {
    agentA = await h.attestAgent();
    agentB = await h.attestAgent();
    expect(agentA.spiffeId.path).toMatch(/^\/meshid\/agent\/join_token\//);
    expect(agentA.spiffeId.equals(agentB.spiffeId)).toBe(false);
    const bundle = bundleOf(await h.admin.bundle.getBundle({}));
    const v = await validateX509Svid({ chain: agentA.svid.certChain, bundle, at: new Date() });
    expect(v.spiffeId.toString()).toBe(agentA.spiffeId.toString());
    await waitForEvent((e) => e.type === "agent.attested", "agent.attested");
  });

  it("flow – a fresh agent syncs nothing", async () => {
    const pages = await collect(agentA.clients.entry.syncAuthorizedEntries({ sinceRevision: 0 }));
    expect(pages.flatMap((p) => p.entries)).toHaveLength(0);
    expect(pages.at(-1)?.done).toBe(true);
    expect(pages.at(-1)?.authorizedEntryIds).toEqual([]);
  });

  it("flow – entries for A wake A only; A's sync returns exactly its 3", async () => {
    const parentA = { trustDomain: "example.org", path: agentA.spiffeId.path };
    const created = await h.admin.entry.batchCreateEntry({
      entries: ["web", "api", "db"].map((name) => ({
        spiffeId: { trustDomain: "example.org", path: `/ns/default/sa/${name}` },
        parentId: parentA,
        selectors: selectorsFor(name),
      })),
    });
    expect(created.results.map((r) => r.status?.code)).toEqual([0, 0, 0]);
    aEntries = created.results.map((r) => r.entry as meshidTypesV1.RegistrationEntry);
    const wakeA = await waitForEvent(
      (e) => e.natsSubject === agentWakeupSubject(agentA.spiffeId.toString()),
      "wake-up for A",
    );
    expect(wakeA.type).toBe("agent.wakeup");

    const createdB = await h.admin.entry.batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: "example.org", path: "/ns/other/sa/b" },
          parentId: { trustDomain: "example.org", path: agentB.spiffeId.path },
          selectors: selectorsFor("b"),
        },
      ],
    });
    bEntry = createdB.results[0]?.entry as meshidTypesV1.RegistrationEntry;
    const bSubject = agentWakeupSubject(agentB.spiffeId.toString());
    await waitForEvent((e) => e.natsSubject === bSubject, "wake-up for B");
    // B heard exactly one wake-up: the one for its own entry, none for A's batch.
    const bWakeups = events.filter((e) => e.natsSubject === bSubject);
    expect(bWakeups).toHaveLength(1);
    expect((bWakeups[0]?.data as { revision: number }).revision).toBe(bEntry.revision);

    const pages = await collect(agentA.clients.entry.syncAuthorizedEntries({ sinceRevision: 0 }));
    const ids = pages.flatMap((p) => p.entries.map((e) => e.id)).sort();
    expect(ids).toEqual(aEntries.map((e) => e.id).sort());
    expect([...(pages.at(-1)?.authorizedEntryIds ?? [])].sort()).toEqual(ids);
    await waitForEvent((e) => e.type === "entry.created", "entry.created");
  });

  it("flow – A gets SVIDs for its entries that pass validateX509Svid and openssl verify", async () => {
    const csrs = await Promise.all(aEntries.map(() => h.newCsr()));
    const res = await agentA.clients.svid.batchNewX509SVID({
      params: aEntries.map((e, i) => ({ entryId: e.id, csr: Buffer.from(csrs[i]?.csr ?? []) })),
    });
    expect(res.results.map((r) => r.status?.code)).toEqual([0, 0, 0]);
    const bundleRes = await agentA.clients.bundle.getBundle({});
    const bundle = bundleOf(bundleRes);
    const bundleFile = join(h.dir.path, "bundle.pem");
    await writeFile(bundleFile, bundleRes.pem);
    for (const [i, r] of res.results.entries()) {
      const svid = r.svid as meshidTypesV1.X509Svid;
      expect(r.entryId).toBe(aEntries[i]?.id);
      const v = await validateX509Svid({ chain: svid.certChain, bundle, at: new Date() });
      expect(v.spiffeId.path).toBe(aEntries[i]?.spiffeId?.path);
      const leafFile = join(h.dir.path, `leaf-${i}.pem`);
      await writeFile(leafFile, certificatesToPem(svid.certChain));
      const out = await runCommand("openssl", [
        "verify",
        "-CAfile",
        bundleFile,
        "-untrusted",
        leafFile,
        leafFile,
      ]);
      expect(out.stdout).toContain("OK");
      expect(out.code).toBe(0);
    }
  });

  it("flow – A cannot sign B's entry (per item) nor call admin methods; no cert is UNAUTHENTICATED", async () => {
    const { csr } = await h.newCsr();
    const res = await agentA.clients.svid.batchNewX509SVID({
      params: [
        { entryId: bEntry.id, csr: Buffer.from(csr) },
        { entryId: aEntries[0]?.id ?? "", csr: Buffer.from(csr) },
      ],
    });
    expect([Status.NOT_FOUND, Status.PERMISSION_DENIED]).toContain(res.results[0]?.status?.code);
    expect(res.results[1]?.status?.code).toBe(0);

    expect(
      await statusOf(
        agentA.clients.entry.batchCreateEntry({
          entries: [
            {
              spiffeId: { trustDomain: "example.org", path: "/evil" },
              parentId: { trustDomain: "example.org", path: agentA.spiffeId.path },
              selectors: selectorsFor("evil"),
            },
          ],
        }),
      ),
    ).toBe(Status.PERMISSION_DENIED);

    const anonymous = h.anonymousClients();
    expect(
      await statusOf(collect(anonymous.entry.syncAuthorizedEntries({ sinceRevision: 0 }))),
    ).toBe(Status.UNAUTHENTICATED);
    expect(await statusOf(anonymous.bundle.getBundle({}))).toBe(Status.UNAUTHENTICATED);
  });

  it("flow – rotation over the API: WatchBundle sees every change, events on NATS", async () => {
    const watchAbort = new AbortController();
    const seen: meshidCaV1.GetBundleResponse[] = [];
    const watching = (async () => {
      try {
        for await (const msg of agentA.clients.bundle.watchBundle(
          {},
          { signal: watchAbort.signal },
        )) {
          seen.push(msg);
        }
      } catch {
        // aborted
      }
    })();
    const waitSeen = async (n: number): Promise<meshidCaV1.GetBundleResponse> => {
      for (let i = 0; i < 400 && seen.length < n; i += 1) {
        await new Promise((r) => setTimeout(r, 25));
      }
      const msg = seen[n - 1];
      if (msg === undefined) throw new Error(`WatchBundle sent ${seen.length} < ${n} messages`);
      return msg;
    };
    const first = await waitSeen(1);
    expect(first.bundle?.x509Authorities).toHaveLength(1);

    const before = await h.admin.authority.getX509AuthorityState({});
    const oldId = before.active?.authorityId ?? "";
    const prepared = await h.admin.authority.prepareX509Authority({});
    const second = await waitSeen(2);
    expect(second.bundle?.x509Authorities).toHaveLength(2);
    expect(second.bundle?.sequenceNumber).toBeGreaterThan(first.bundle?.sequenceNumber ?? 0);
    // A real agent takes the new bundle from the watch.
    agentA.source.set({ ...agentA.source.current(), bundlePem: second.pem });

    await h.admin.authority.activateX509Authority({ authorityId: prepared.authorityId });
    await h.admin.authority.taintX509Authority({ authorityId: oldId });
    const tainted = await waitSeen(3);
    expect(tainted.bundle?.x509Authorities.some((a) => a.tainted)).toBe(true);

    // The agent re-mints after the taint: a new agent SVID from the new authority.
    const { csr, keyPem } = await h.newCsr();
    const renewed = await agentA.clients.agent.renewAgent({ csr: Buffer.from(csr) });
    agentA.source.set({
      certChainPem: certificatesToPem(renewed.svid?.certChain ?? []),
      keyPem,
      bundlePem: tainted.pem,
    });

    // B too (it never watched: it takes the bundle now).
    agentB.source.set({ ...agentB.source.current(), bundlePem: tainted.pem });
    const b = await h.newCsr();
    const renewedB = await agentB.clients.agent.renewAgent({ csr: Buffer.from(b.csr) });
    agentB.source.set({
      certChainPem: certificatesToPem(renewedB.svid?.certChain ?? []),
      keyPem: b.keyPem,
      bundlePem: tainted.pem,
    });
    // New connections present the renewed SVIDs.
    agentA = { ...agentA, clients: h.mtlsClients(agentA.source) };
    agentB = { ...agentB, clients: h.mtlsClients(agentB.source) };

    await h.admin.authority.revokeX509Authority({ authorityId: oldId });
    const revoked = await waitSeen(4);
    // Renewed agents keep working after the revocation.
    expect(await statusOf(agentB.clients.bundle.getBundle({}))).toBe("ok");
    expect(revoked.bundle?.x509Authorities).toHaveLength(1);
    const state = await h.admin.authority.getX509AuthorityState({});
    expect(state.active?.authorityId).toBe(prepared.authorityId);

    for (const type of [
      "authority.prepared",
      "authority.activated",
      "authority.tainted",
      "authority.revoked",
      "bundle.updated",
    ]) {
      await waitForEvent((e) => e.type === type, type);
    }
    watchAbort.abort();
    await watching;
  });

  it("flow – a delta asking to omit unchanged ids gets the changed entry and no ids; an old-style delta gets the ids", async () => {
    const full = await collect(agentA.clients.entry.syncAuthorizedEntries({ sinceRevision: 0 }));
    const since = full.at(-1)?.revision ?? 0;
    const target = aEntries[1]!;
    const updated = await h.admin.entry.batchUpdateEntry({
      entries: [{ ...target, hint: "omission" }],
    });
    expect(updated.results.map((r) => r.status?.code)).toEqual([0]);

    const omitted = await collect(
      agentA.clients.entry.syncAuthorizedEntries({ sinceRevision: since, omitUnchangedIds: true }),
    );
    expect(omitted.flatMap((p) => p.entries.map((e) => [e.id, e.hint]))).toEqual([
      [target.id, "omission"],
    ]);
    expect(omitted.flatMap((p) => p.authorizedEntryIds)).toEqual([]);
    expect(omitted.at(-1)?.authorizedIdsOmitted).toBe(true);

    const old = await collect(agentA.clients.entry.syncAuthorizedEntries({ sinceRevision: since }));
    expect(old.flatMap((p) => p.entries.map((e) => e.id))).toEqual([target.id]);
    expect([...(old.at(-1)?.authorizedEntryIds ?? [])].sort()).toEqual(
      aEntries.map((e) => e.id).sort(),
    );
    expect(old.at(-1)?.authorizedIdsOmitted).toBe(false);
  });

  it("flow – a banned agent can no longer sign or renew", async () => {
    await h.admin.agent.banAgent({
      id: { trustDomain: "example.org", path: agentA.spiffeId.path },
    });
    await waitForEvent((e) => e.type === "agent.banned", "agent.banned");
    const { csr } = await h.newCsr();
    expect(
      await statusOf(
        agentA.clients.svid.batchNewX509SVID({
          params: [{ entryId: aEntries[0]?.id ?? "", csr: Buffer.from(csr) }],
        }),
      ),
    ).toBe(Status.PERMISSION_DENIED);
    expect(await statusOf(agentA.clients.agent.renewAgent({ csr: Buffer.from(csr) }))).toBe(
      Status.PERMISSION_DENIED,
    );
    // B is unaffected.
    const pages = await collect(agentB.clients.entry.syncAuthorizedEntries({ sinceRevision: 0 }));
    expect(pages.flatMap((p) => p.entries.map((e) => e.id))).toEqual([bEntry.id]);
  });
});
