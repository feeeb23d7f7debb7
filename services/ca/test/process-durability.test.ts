// Durability of the built CA as a real process: kill -9 in the middle of a stream of
// BatchCreateEntry calls, restart on the same data dir, and check what survived.
import { randomUUID } from "node:crypto";
import { meshidTypesV1, type meshidCaV1 } from "@meshid/proto";
import { useCaProcessSuite, type CaAdminClients, type CaProcess } from "../src/testing/ca-process";

jest.setTimeout(120_000);

const TRUST_DOMAIN = "example.org";
const OWNER = "durability-test";
const PARENT: meshidTypesV1.SpiffeId = {
  trustDomain: TRUST_DOMAIN,
  path: "/meshid/agent/join_token/durability-node",
};
/** Entries per BatchCreateEntry call. */
const BATCH = 20;
/** Concurrent writers. */
const WRITERS = 2;
/** Acknowledged entries to wait for before the kill. */
const ACKED_BEFORE_KILL = 300;

function newEntry(): meshidTypesV1.RegistrationEntry {
  const podUid = randomUUID();
  return meshidTypesV1.RegistrationEntry.fromPartial({
    spiffeId: { trustDomain: TRUST_DOMAIN, path: `/ns/durable/sa/w-${podUid}` },
    parentId: PARENT,
    selectors: [{ type: "k8s", value: `pod-uid:${podUid}` }],
    x509SvidTtlSeconds: 3600,
    owner: OWNER,
  });
}

async function listAllEntries(admin: CaAdminClients): Promise<meshidTypesV1.RegistrationEntry[]> {
  const all: meshidTypesV1.RegistrationEntry[] = [];
  let pageToken = "";
  do {
    const page = await admin.entries.listEntries({ pageSize: 500, pageToken, byOwner: OWNER });
    all.push(...page.entries);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return all;
}

async function authorityState(
  admin: CaAdminClients,
): Promise<{ activeId: string; bundleDers: string[]; sequence: number }> {
  const [state, bundle] = await Promise.all([
    admin.authorities.getX509AuthorityState({}),
    admin.bundle.getBundle({}),
  ]);
  return {
    activeId: state.active?.authorityId ?? "",
    bundleDers: (bundle.bundle?.x509Authorities ?? [])
      .map((a) => Buffer.from(a.asn1).toString("base64"))
      .sort(),
    sequence: bundle.bundle?.sequenceNumber ?? 0,
  };
}

describe("ca process durability", () => {
  const suite = useCaProcessSuite("ca-durability");

  function start(keyManager: "disk" | "memory"): Promise<CaProcess> {
    return suite.start({ config: { keyManager, natsUrl: suite.nats.url } });
  }

  function admin(ca: CaProcess): CaAdminClients {
    return suite.adminClients(ca);
  }

  test("durability – kill -9 during BatchCreateEntry: every acknowledged entry and the authority survive (disk keys)", async () => {
    const first = await start("disk");
    const firstAdmin = admin(first);
    const before = await authorityState(firstAdmin);
    expect(before.activeId).not.toBe("");
    expect(before.bundleDers.length).toBeGreaterThan(0);

    const acked = new Map<string, string>(); // entry id → SPIFFE ID path
    let failures = 0;
    let killed = false;
    let reachedTarget!: () => void;
    let writerFailed!: (err: unknown) => void;
    const target = new Promise<void>((resolve, reject) => {
      reachedTarget = resolve;
      writerFailed = reject;
    });
    const writer = async (): Promise<void> => {
      while (!killed) {
        const entries = Array.from({ length: BATCH }, () => newEntry());
        let response: meshidCaV1.BatchCreateEntryResponse;
        try {
          response = await firstAdmin.entries.batchCreateEntry({ entries });
        } catch {
          failures += 1; // in flight when the process died: not acknowledged
          return;
        }
        for (const result of response.results) {
          if ((result.status?.code ?? 0) !== 0 || result.entry === undefined) {
            writerFailed(new Error(`entry refused: ${JSON.stringify(result.status)}`));
            return;
          }
          acked.set(result.entry.id, result.entry.spiffeId?.path ?? "");
        }
        if (acked.size >= ACKED_BEFORE_KILL) reachedTarget();
      }
    };
    const writers = Array.from({ length: WRITERS }, () => writer());
    await target;
    // Kill while the writers still have calls in flight.
    const exit = await first.kill9();
    killed = true;
    await Promise.all(writers);
    expect(exit.signal).toBe("SIGKILL");
    expect(acked.size).toBeGreaterThanOrEqual(ACKED_BEFORE_KILL);
    expect(acked.has("")).toBe(false);

    const second = await start("disk");
    const secondAdmin = admin(second);
    const stored = new Map((await listAllEntries(secondAdmin)).map((e) => [e.id, e]));
    const missing = [...acked.keys()].filter((id) => !stored.has(id));
    expect(missing).toEqual([]);
    for (const [id, path] of acked) expect(stored.get(id)?.spiffeId?.path).toBe(path);
    // Unacknowledged batches were all-or-nothing at most: never more than was sent.
    expect(stored.size).toBeLessThanOrEqual(acked.size + failures * BATCH);

    const after = await authorityState(secondAdmin);
    expect(after.activeId).toBe(before.activeId);
    expect(after.bundleDers).toEqual(before.bundleDers);
  });

  test("durability – with the memory key manager a restart makes a new authority and the bundle shows it", async () => {
    const first = await start("memory");
    const before = await authorityState(admin(first));
    expect(before.activeId).not.toBe("");
    await first.kill9();

    const second = await start("memory");
    const after = await authorityState(admin(second));
    expect(after.activeId).not.toBe("");
    expect(after.activeId).not.toBe(before.activeId);
    const added = after.bundleDers.filter((der) => !before.bundleDers.includes(der));
    expect(added.length).toBeGreaterThan(0);
    expect(after.sequence).toBeGreaterThan(before.sequence);
  });
});
