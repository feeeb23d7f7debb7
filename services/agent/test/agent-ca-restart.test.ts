// Whole agent: the CA restarting (same port, data dir and keys) only delays the agent.
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

describe("agent – CA restart", () => {
  let suite: AgentSuite;
  let workload: TestWorkload | undefined;

  beforeAll(async () => {
    suite = await startAgentSuite({ caKeyManager: "disk" });
  });

  afterAll(async () => {
    await workload?.stop();
    await suite?.stop();
  });

  it("agent – after the CA restarts, a new entry still reaches the open stream", async () => {
    const td = suite.ca.trustDomain;
    await suite.createEntry({ path: "/w/before-restart", selectors: [`unix:uid:${WORKLOAD_UID}`] });
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

    await suite.ca.restart();
    await suite.createEntry({ path: "/w/after-restart", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    let svids: ReceivedSvid[];
    do {
      svids = await (workload as TestWorkload).nextMessage();
    } while (svids.length < 2);
    expect(svids.map((s) => s.spiffeId).sort()).toEqual([
      `spiffe://${td}/w/after-restart`,
      `spiffe://${td}/w/before-restart`,
    ]);
    expect(suite.agent().ready()).toBe(true);
    for (const svid of svids) {
      expect(await verifyDeliveredSvid(svid, td, suite.dir.path)).toBe(svid.spiffeId);
    }
  });
});
