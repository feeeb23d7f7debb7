// Whole agent: with NATS gone, a new entry still reaches the workload through the reconcile.
import {
  WORKLOAD_UID,
  nextMessageWithAtLeast,
  startAgentSuite,
  startServedWorkload,
  verifyDeliveredSvid,
  type AgentSuite,
  type TestWorkload,
} from "./agent-harness";

jest.setTimeout(180_000);

describe("agent – NATS outage", () => {
  let suite: AgentSuite;
  let workload: TestWorkload | undefined;

  beforeAll(async () => {
    suite = await startAgentSuite({ reconcileInterval: "1s" });
  });

  afterAll(async () => {
    await workload?.stop();
    await suite?.stop();
  });

  it("agent – a new entry reaches the open stream within a reconcile interval while NATS is down", async () => {
    const td = suite.ca.trustDomain;
    await suite.createEntry({ path: "/w/before-outage", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    // Open a stream once the first entry is served.
    const served = await startServedWorkload(suite.socketPath, WORKLOAD_UID);
    workload = served.workload;
    const first = served.svids;
    expect(first.map((s) => s.spiffeId)).toEqual([`spiffe://${td}/w/before-outage`]);

    await suite.stopNats();
    await suite.createEntry({ path: "/w/during-outage", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    const svids = await nextMessageWithAtLeast(workload, 2);
    expect(svids.map((s) => s.spiffeId).sort()).toEqual([
      `spiffe://${td}/w/before-outage`,
      `spiffe://${td}/w/during-outage`,
    ]);
    expect(suite.agent().status().natsConnected).toBe(false);
    for (const svid of svids) {
      expect(await verifyDeliveredSvid(svid, td, suite.dir.path)).toBe(svid.spiffeId);
    }
  });
});
