// Whole agent: the CA restarting (same port, data dir and keys) only delays the agent.
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
    // Open a stream once the first entry is served.
    ({ workload } = await startServedWorkload(suite.socketPath, WORKLOAD_UID));

    await suite.ca.restart();
    await suite.createEntry({ path: "/w/after-restart", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    const svids = await nextMessageWithAtLeast(workload, 2);
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
