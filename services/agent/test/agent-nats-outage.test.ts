// Whole agent: with NATS gone, a new entry still reaches the workload through the reconcile.
import {
  EVENT_TIMEOUT_MS,
  WORKLOAD_UID,
  startAgentSuite,
  startWorkload,
  verifyDeliveredSvid,
  type AgentSuite,
  type ReceivedSvid,
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
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    let first: ReceivedSvid[] | undefined;
    while (first === undefined) {
      workload = await startWorkload(suite.socketPath, WORKLOAD_UID);
      const event = await workload.next();
      if (event.event === "message") first = event.svids;
      else {
        await workload.stop();
        if (Date.now() > deadline) throw new Error(`not served: ${event.details}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(first.map((s) => s.spiffeId)).toEqual([`spiffe://${td}/w/before-outage`]);

    await suite.stopNats();
    await suite.createEntry({ path: "/w/during-outage", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    let svids: ReceivedSvid[];
    do {
      svids = await (workload as TestWorkload).nextMessage();
    } while (svids.length < 2);
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
