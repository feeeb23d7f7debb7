import { existsSync, statSync } from "node:fs";
import { isProcessAlive } from "../src/process";
import { startMeshidCa, type MeshidCaProcess } from "../src/meshid-ca-process";
import { startMeshidAgent, type MeshidAgentProcess } from "../src/meshid-agent-process";

jest.setTimeout(120_000);

describe("startMeshidAgent", () => {
  let ca: MeshidCaProcess | undefined;
  let agent: MeshidAgentProcess | undefined;

  afterEach(async () => {
    if (agent !== undefined && isProcessAlive(agent.pid())) await agent.stop();
    if (ca !== undefined && isProcessAlive(ca.pid())) await ca.stop();
    agent = undefined;
    ca = undefined;
  });

  it("startMeshidAgent – attests, serves its socket and probes, restarts with its identity, and leaves no process", async () => {
    ca = await startMeshidCa();
    agent = await startMeshidAgent({ ca });
    expect(agent.agentId).toMatch(/^spiffe:\/\/example\.org\/meshid\/agent\/join_token\//);
    expect(statSync(agent.workloadSocketPath).isSocket()).toBe(true);
    expect((await fetch(`${agent.opsUrl}/healthz`)).status).toBe(200);

    const firstPid = agent.pid();
    const agentId = agent.agentId;
    await agent.restart();
    expect(agent.pid()).not.toBe(firstPid);
    expect(isProcessAlive(firstPid)).toBe(false);
    expect(agent.agentId).toBe(agentId);
    expect((await fetch(`${agent.opsUrl}/healthz`)).status).toBe(200);

    await agent.kill9();
    await agent.restart();
    expect(agent.agentId).toBe(agentId);

    const pid = agent.pid();
    const workDir = agent.workDir;
    await agent.stop();
    expect(isProcessAlive(pid)).toBe(false);
    expect(existsSync(workDir)).toBe(false);
  });
});
