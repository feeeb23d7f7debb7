// The agent's entry sync against the built CA over gRPC mTLS, woken through a real nats-server:
// entries created one by one reach the agent through delta syncs that leave out the ID list,
// and a deleted entry is withdrawn through a delta that carries it.
import { createNoopLogger } from "@meshid/telemetry";
import {
  createTempDir,
  startMeshidCa,
  startNatsServer,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import { systemClock } from "../src/agent";
import type { GrpcCaClient } from "../src/adapters/grpc-ca-client";
import { startNatsWakeups, type NatsWakeups } from "../src/adapters/nats-wakeups";
import { createEntrySync, type EntrySync } from "../src/domain/entry-sync";
import type { AgentEntry } from "../src/domain/types";
import type { CaClient } from "../src/ports";
import { attestAgentAtCa } from "./attested-ca-client";

jest.setTimeout(60_000);

const TD = "example.org";
const logger = createNoopLogger();

/** One finished sync as the agent saw it. */
interface SyncRecord {
  readonly since: number;
  readonly omitAsked: boolean;
  readonly idsOmitted: boolean;
  readonly ids: number;
  readonly entries: number;
}

let nats: NatsServer;
let ca: MeshidCaProcess;
let dir: TempDir;
let client: GrpcCaClient;
let wakeups: NatsWakeups;
let sync: EntrySync;
let stop: AbortController;
let running: Promise<void>;
let agentPath: string;
const records: SyncRecord[] = [];
const maps: ReadonlyMap<string, AgentEntry>[] = [];

/** Waits (generously) until `predicate` holds. */
async function until(what: string, predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${what}: not within 30 s`);
}

beforeAll(async () => {
  dir = await createTempDir("agent-entry-sync-");
  nats = await startNatsServer({ jetstream: true });
  ca = await startMeshidCa({ trustDomain: TD, natsUrl: nats.url });
  const attested = await attestAgentAtCa(ca, dir.path, logger);
  client = attested.client;
  agentPath = attested.agentId.slice(`spiffe://${TD}`.length);
  // The real client, recording what each sync asked for and got.
  const recording: Pick<CaClient, "syncAuthorizedEntries"> = {
    async *syncAuthorizedEntries(since, signal, options) {
      let ids = 0;
      let entries = 0;
      for await (const page of client.syncAuthorizedEntries(since, signal, options)) {
        ids += page.authorizedEntryIds.length;
        entries += page.entries.length;
        if (page.done) {
          records.push({
            since,
            omitAsked: options?.omitUnchangedIds === true,
            idsOmitted: page.authorizedIdsOmitted,
            ids,
            entries,
          });
        }
        yield page;
      }
    },
  };
  wakeups = startNatsWakeups({ natsUrl: nats.url, agentId: attested.agentId, logger });
  sync = createEntrySync({
    caClient: recording,
    wakeups,
    onEntries: (entries) => maps.push(entries),
    clock: systemClock,
    logger,
    // Only wake-ups may deliver the changes of this test.
    reconcileIntervalMs: 600_000,
  });
  stop = new AbortController();
  running = sync.run(stop.signal);
  await until("first full sync", () => sync.stats().fullSyncs >= 1);
});

afterAll(async () => {
  stop?.abort();
  await running?.catch(() => undefined);
  await wakeups?.close();
  client?.close();
  await ca?.stop();
  await nats?.stop();
  await dir?.cleanup();
});

describe("agent entry sync against the built CA (NATS wake-ups)", () => {
  it("agent entry sync – entries created one by one arrive through deltas without the ID list; a deleted one is withdrawn", async () => {
    const admin = ca.admin();
    try {
      // Let the NATS connect's full sync (wake-up 0) pass before counting.
      await until("NATS connected", () => wakeups.connected());
      await sync.requestFullSync();
      const fullSyncs = sync.stats().fullSyncs;
      const from = records.length;

      const ids: string[] = [];
      for (const i of [1, 2, 3, 4, 5]) {
        const created = await admin.entries.batchCreateEntry({
          entries: [
            {
              spiffeId: { trustDomain: TD, path: `/ns/default/sa/one-by-one-${i}` },
              parentId: { trustDomain: TD, path: agentPath },
              selectors: [{ type: "unix", value: `uid:${2000 + i}` }],
            },
          ],
        });
        expect(created.results[0]?.status?.code).toBe(0);
        const id = created.results[0]?.entry?.id ?? "";
        ids.push(id);
        await until(`entry ${i} at the agent`, () => sync.entries().has(id));
      }
      expect([...sync.entries().keys()].sort()).toEqual([...ids].sort());

      const deleted = await admin.entries.batchDeleteEntry({ ids: [ids[2]!] });
      expect(deleted.results[0]?.status?.code).toBe(0);
      await until("deleted entry withdrawn", () => !sync.entries().has(ids[2]!));
      expect([...sync.entries().keys()].sort()).toEqual(ids.filter((_, k) => k !== 2).sort());

      // Every change came through a wake-up's delta: no full sync ran meanwhile.
      expect(sync.stats().fullSyncs).toBe(fullSyncs);
      const deltas = records.slice(from);
      expect(deltas.length).toBeGreaterThanOrEqual(6);
      expect(deltas.every((r) => r.omitAsked)).toBe(true);
      // The creates needed no ID list (but the first: since 0, the store was empty, and the
      // CA answers since 0 in full); the delete's delta carried it (the four left).
      const creates = deltas.slice(0, -1).filter((r) => r.since > 0);
      expect(creates.length).toBeGreaterThanOrEqual(4);
      expect(creates.every((r) => r.idsOmitted && r.ids === 0 && r.entries === 1)).toBe(true);
      expect(deltas.at(-1)).toMatchObject({ idsOmitted: false, ids: 4, entries: 0 });
    } finally {
      admin.close();
    }
  });
});
