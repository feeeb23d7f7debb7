// Whole agent: a banned agent stops serving instead of handing out SVIDs.
import { existsSync } from "node:fs";
import { WORKLOAD_UID, fetchOnce, startAgentSuite, type AgentSuite } from "./agent-harness";

jest.setTimeout(180_000);

describe("agent – banned", () => {
  let suite: AgentSuite;

  beforeAll(async () => {
    suite = await startAgentSuite({ reconcileInterval: "1s" });
  });

  afterAll(async () => {
    await suite?.stop();
  });

  it("agent – banned at the CA, it stops by itself, says so, and its socket is gone", async () => {
    const agent = suite.agent();
    await suite.createEntry({ path: "/w/banned", selectors: [`unix:uid:${WORKLOAD_UID}`] });
    const path = new URL(agent.agentId).pathname;
    await suite.ca.admin().agents.banAgent({ id: { trustDomain: suite.ca.trustDomain, path } });

    // The next sync (reconcile every second) is refused with ca.agent.banned.
    await expect(agent.done()).resolves.toBe("banned");
    expect(agent.ready()).toBe(false);
    expect(existsSync(suite.socketPath)).toBe(false);
    const event = await fetchOnce(suite.socketPath, WORKLOAD_UID);
    expect(event).toMatchObject({ event: "end" });
    expect(event.event === "end" && event.code).not.toBe(0);
  });
});
