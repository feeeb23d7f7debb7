// The gRPC CaClient against the real CA process: entry sync, batch signing with per-item
// results, and the bundle watch through an authority rotation and taint.
import { randomUUID } from "node:crypto";
import type { MutableSvidSource } from "@meshid/grpc-kit";
import { createCsr, generateKeyPair, pemToCertificates } from "@meshid/pki";
import { createBundle, validateX509Svid } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import { createTempDir, type TempDir, startMeshidCa, type MeshidCaProcess } from "@meshid/testkit";
import type { GrpcCaClient } from "../src/adapters/grpc-ca-client";
import type { AgentIdentity } from "../src/domain/agent-identity";
import type { AgentBundle, AgentEntry } from "../src/domain/types";
import type { SyncAuthorizedEntriesOptions } from "../src/ports";
import { attestAgentAtCa } from "./attested-ca-client";

jest.setTimeout(60_000);

const TD = "example.org";
const logger = createNoopLogger();

let ca: MeshidCaProcess;
let dir: TempDir;
let identity: AgentIdentity<MutableSvidSource>;
let client: GrpcCaClient;
let agentId: string;
const entryIds: string[] = [];

beforeAll(async () => {
  dir = await createTempDir("agent-ca-client-");
  ca = await startMeshidCa({ trustDomain: TD });
  ({ identity, agentId, client } = await attestAgentAtCa(ca, dir.path, logger));

  const admin = ca.admin();
  try {
    const agentPath = agentId.slice(`spiffe://${TD}`.length);
    const created = await admin.entries.batchCreateEntry({
      entries: [
        ...[1, 2, 3].map((i) => ({
          spiffeId: { trustDomain: TD, path: `/ns/default/sa/w${i}` },
          parentId: { trustDomain: TD, path: agentPath },
          selectors: [{ type: "unix", value: `uid:${1000 + i}` }],
          dnsNames: [`w${i}.default.svc`],
          x509SvidTtlSeconds: i === 1 ? 600 : 0,
          hint: `hint-${i}`,
        })),
        {
          spiffeId: { trustDomain: TD, path: "/ns/other/sa/x" },
          parentId: { trustDomain: TD, path: "/meshid/agent/join_token/someone-else" },
          selectors: [{ type: "unix", value: "uid:7" }],
        },
      ],
    });
    for (const r of created.results) {
      expect(r.status?.code).toBe(0);
      entryIds.push(r.entry?.id ?? "");
    }
  } finally {
    admin.close();
  }
});

afterAll(async () => {
  client?.close();
  await ca?.stop();
  await dir?.cleanup();
});

async function collectSync(
  since: number,
  options?: SyncAuthorizedEntriesOptions,
): Promise<{
  entries: AgentEntry[];
  ids: Set<string>;
  revision: number;
  pages: number;
  idsOmitted: boolean;
}> {
  const entries: AgentEntry[] = [];
  const ids = new Set<string>();
  let revision = -1;
  let pages = 0;
  let idsOmitted = false;
  for await (const page of client.syncAuthorizedEntries(since, undefined, options)) {
    pages++;
    entries.push(...page.entries);
    for (const id of page.authorizedEntryIds) ids.add(id);
    if (page.done) {
      revision = page.revision;
      idsOmitted = page.authorizedIdsOmitted;
    }
  }
  return { entries, ids, revision, pages, idsOmitted };
}

describe("grpc CA client against the real CA", () => {
  it("grpc ca client – syncAuthorizedEntries converts the agent's entries and ends with done", async () => {
    const sync = await collectSync(0);
    expect(sync.revision).toBeGreaterThan(0);
    expect(sync.entries.map((e) => e.spiffeId).sort()).toEqual([
      `spiffe://${TD}/ns/default/sa/w1`,
      `spiffe://${TD}/ns/default/sa/w2`,
      `spiffe://${TD}/ns/default/sa/w3`,
    ]);
    expect([...sync.ids].sort()).toEqual(entryIds.slice(0, 3).sort());
    const w1 = sync.entries.find((e) => e.spiffeId.endsWith("/w1"));
    expect(w1).toEqual({
      id: entryIds[0],
      spiffeId: `spiffe://${TD}/ns/default/sa/w1`,
      parentId: agentId,
      selectors: [{ type: "unix", value: "uid:1001" }],
      dnsNames: ["w1.default.svc"],
      x509SvidTtlSeconds: 600,
      hint: "hint-1",
      revision: expect.any(Number) as number,
    });
    expect(w1?.revision).toBeGreaterThan(0);

    const again = await collectSync(sync.revision);
    expect(again.entries).toEqual([]);
    expect(again.revision).toBe(sync.revision);
    expect([...again.ids].sort()).toEqual(entryIds.slice(0, 3).sort());
    expect(again.idsOmitted).toBe(false);
  });

  it("grpc ca client – syncAuthorizedEntries passes omitUnchangedIds through and reports the omission", async () => {
    const full = await collectSync(0, { omitUnchangedIds: true });
    // A full sync always carries the ids.
    expect(full.idsOmitted).toBe(false);
    expect([...full.ids].sort()).toEqual(entryIds.slice(0, 3).sort());
    const delta = await collectSync(full.revision, { omitUnchangedIds: true });
    expect(delta).toMatchObject({ entries: [], revision: full.revision, idsOmitted: true });
    expect(delta.ids.size).toBe(0);
    const old = await collectSync(full.revision, { omitUnchangedIds: false });
    expect(old.idsOmitted).toBe(false);
    expect([...old.ids].sort()).toEqual(entryIds.slice(0, 3).sort());
  });

  it("grpc ca client – batchNewX509Svid returns per-item results in request order", async () => {
    const pair = await generateKeyPair("ec-p256");
    const csrDer = await createCsr({ privateKey: pair.privateKey, publicKey: pair.publicKey });
    const foreign = entryIds[3] ?? "";
    const unknown = randomUUID();
    const results = await client.batchNewX509Svid([
      { entryId: entryIds[0] ?? "", csrDer },
      { entryId: foreign, csrDer },
      { entryId: unknown, csrDer },
    ]);
    expect(results.map((r) => r.entryId)).toEqual([entryIds[0], foreign, unknown]);
    const [ok, denied, missing] = results;
    if (ok?.ok !== true) throw new Error(`expected a signed SVID, got ${JSON.stringify(ok)}`);
    const bundle = createBundle({
      trustDomain: TD,
      x509Authorities: pemToCertificates(await ca.bundlePem()),
    });
    const v = await validateX509Svid({ chain: ok.certChainDer, bundle, at: new Date() });
    expect(v.spiffeId.toString()).toBe(`spiffe://${TD}/ns/default/sa/w1`);
    expect(ok.serialHex).toMatch(/^[0-9a-f]+$/);
    expect(ok.expiresAt.getTime()).toBe(v.notAfter.getTime());
    expect(denied?.ok).toBe(false);
    expect(missing?.ok).toBe(false);
    for (const r of [denied, missing]) {
      if (r?.ok !== false) throw new Error("expected a failed item");
      expect(r.code).not.toBe("");
      expect(r.message).not.toBe("");
    }
    expect(await client.batchNewX509Svid([])).toEqual([]);
  });

  it("grpc ca client – watchBundle streams the bundle, then rotations with tainted SKIs", async () => {
    const admin = ca.admin();
    const ac = new AbortController();
    const received: AgentBundle[] = [];
    let notify: (() => void) | undefined;
    const waitFor = async (pred: (b: AgentBundle) => boolean): Promise<AgentBundle> => {
      for (;;) {
        const hit = received.find(pred);
        if (hit !== undefined) return hit;
        await new Promise<void>((resolve) => (notify = resolve));
      }
    };
    const watching = (async () => {
      for await (const b of client.watchBundle(ac.signal)) {
        received.push(b);
        notify?.();
      }
    })();
    try {
      const first = await waitFor(() => true);
      expect(first.trustDomain).toBe(TD);
      expect(first.x509AuthoritiesDer).toEqual(pemToCertificates(await ca.bundlePem()));
      expect(first.taintedAuthorityIds).toEqual([]);

      const state = await admin.authorities.getX509AuthorityState({});
      const oldId = state.active?.authorityId ?? "";
      expect(oldId).toMatch(/^[0-9a-f]+$/);
      const prepared = await admin.authorities.prepareX509Authority({});
      const grown = await waitFor((b) => b.x509AuthoritiesDer.length === 2);
      expect(grown.sequenceNumber).toBeGreaterThan(first.sequenceNumber);

      await admin.authorities.activateX509Authority({ authorityId: prepared.authorityId });
      await admin.authorities.taintX509Authority({ authorityId: oldId });
      const tainted = await waitFor((b) => b.taintedAuthorityIds.length > 0);
      expect(tainted.taintedAuthorityIds).toEqual([oldId]);
      expect(tainted.sequenceNumber).toBeGreaterThan(grown.sequenceNumber);

      // The identity follows the bundle it is fed.
      await identity.applyBundle(tainted);
      expect(identity.bundle().sequenceNumber).toBe(tainted.sequenceNumber);
      expect(pemToCertificates(identity.svidSource().current().bundlePem)).toHaveLength(2);
    } finally {
      ac.abort();
      await watching;
      admin.close();
    }
  });
});
