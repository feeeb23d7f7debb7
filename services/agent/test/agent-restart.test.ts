// Whole agent: a restart on the same data dir keeps the identity without re-attesting.
import {
  EVENT_TIMEOUT_MS,
  WORKLOAD_UID,
  fetchOnce,
  startAgentSuite,
  verifyDeliveredSvid,
  type AgentSuite,
  type WorkloadEvent,
} from "./agent-harness";

jest.setTimeout(180_000);

/** Fetches until served (the entry may still be on its way to the agent). */
async function fetchServed(socketPath: string): Promise<WorkloadEvent & { event: "message" }> {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  for (;;) {
    const event = await fetchOnce(socketPath, WORKLOAD_UID);
    if (event.event === "message") return event;
    if (Date.now() > deadline) throw new Error(`not served: ${event.code} ${event.details}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("agent – restart", () => {
  let suite: AgentSuite;

  beforeAll(async () => {
    suite = await startAgentSuite();
  });

  afterAll(async () => {
    await suite?.stop();
  });

  it("agent – restarts on the same data dir with the same ID, without re-attesting, and serves again", async () => {
    const firstId = suite.agent().agentId;
    const firstSerial = suite.agent().status().identity.serialHex;
    expect(firstSerial).toBeDefined();
    await suite.createEntry({ path: "/w/restart", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    const before = await fetchServed(suite.socketPath);
    expect(before.svids.map((s) => s.spiffeId)).toEqual([
      `spiffe://${suite.ca.trustDomain}/w/restart`,
    ]);

    await suite.stopAgent();
    const refused = await fetchOnce(suite.socketPath, WORKLOAD_UID).catch((err: unknown) => err);
    // Nothing listens any more: the workload cannot get an SVID while the agent is down.
    expect(refused).not.toMatchObject({ event: "message" });

    // The join token was single-use: a second attestation would fail, so start-up succeeding
    // with the same ID proves the persisted SVID was reused.
    const again = await suite.startAgent();
    expect(again.agentId).toBe(firstId);
    // The very SVID it had: loaded from the data dir, not a new one.
    expect(again.status().identity.serialHex).toBe(firstSerial);
    expect(again.ready()).toBe(true);
    const after = await fetchServed(suite.socketPath);
    expect(after.svids.map((s) => s.spiffeId)).toEqual([
      `spiffe://${suite.ca.trustDomain}/w/restart`,
    ]);
    for (const svid of after.svids) {
      expect(await verifyDeliveredSvid(svid, suite.ca.trustDomain, suite.dir.path)).toBe(
        svid.spiffeId,
      );
    }
  });
});
