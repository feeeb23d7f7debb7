import { agentWakeupSubject, ALL_AGENT_WAKEUPS_SUBJECT, isAgentWakeupSubject } from "./subjects";

describe("agentWakeupSubject", () => {
  const a = "spiffe://example.org/spire/agent/k8s_psat/cluster/node-a.example";
  const b = "spiffe://example.org/spire/agent/k8s_psat/cluster/node-b.example";

  it("subjects – is meshid.v1.agent.wakeup.<32 lowercase hex> with no dots or slashes from the ID", () => {
    const subject = agentWakeupSubject(a);
    expect(subject).toMatch(/^meshid\.v1\.agent\.wakeup\.[0-9a-f]{32}$/);
    expect(isAgentWakeupSubject(subject)).toBe(true);
  });

  it("subjects – is stable per agent and distinct between agents", () => {
    expect(agentWakeupSubject(a)).toBe(agentWakeupSubject(a));
    expect(agentWakeupSubject(a)).not.toBe(agentWakeupSubject(b));
  });

  it("subjects – rejects wildcards and foreign subjects as wake-up subjects", () => {
    expect(isAgentWakeupSubject(ALL_AGENT_WAKEUPS_SUBJECT)).toBe(false);
    expect(isAgentWakeupSubject("meshid.v1.agent.wakeup.>")).toBe(false);
    expect(isAgentWakeupSubject("meshid.v1.entry.created")).toBe(false);
    expect(isAgentWakeupSubject(`${agentWakeupSubject(a)}.x`)).toBe(false);
  });
});
