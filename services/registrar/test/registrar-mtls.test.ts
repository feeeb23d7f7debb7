// The registrar reaching the CA over mTLS with its own SVID, fetched from a real node agent
// (the built agent process) over the SPIFFE Workload API, authorised by an admin entry.
import { startMeshidAgent, type MeshidAgentProcess } from "@meshid/testkit";
import { startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

jest.setTimeout(180_000);

const REGISTRAR_ID_PATH = "/meshid/registrar";

let world: RegistrarWorld;
let agent: MeshidAgentProcess | undefined;

beforeAll(async () => {
  world = await startRegistrarWorld();
});
afterAll(async () => {
  await agent?.stop();
  await world?.stop();
});

describe("registrar – CA over mTLS", () => {
  it("registrar – writes entries with its own admin SVID from the node agent", async () => {
    // The agent's ID follows from its join token, so the registrar's entry can exist before
    // the agent attests (its first sync then mints the SVID at once).
    const token = await world.ca.createJoinToken();
    const agentId = `spiffe://${world.ca.trustDomain}/meshid/agent/join_token/${token}`;
    const created = await world.admin.entries.batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: world.ca.trustDomain, path: REGISTRAR_ID_PATH },
          parentId: {
            trustDomain: world.ca.trustDomain,
            path: agentId.slice(`spiffe://${world.ca.trustDomain}`.length),
          },
          selectors: [{ type: "unix", value: `uid:${process.getuid?.() ?? 0}` }],
          admin: true,
        },
      ],
    });
    expect(created.results[0]?.status?.code ?? 0).toBe(0);
    agent = await startMeshidAgent({ ca: world.ca, joinToken: token });
    expect(agent.agentId).toBe(agentId);

    world.addNode("node-t");
    const { registrar, log } = await world.startRegistrar({
      ca: {
        address: world.ca.address,
        serverId: world.ca.serverId,
        workloadSocketPath: agent.workloadSocketPath,
      },
    });
    await waitFor("ready", () => registrar.ready());
    expect(log.text()).toContain(`spiffe://${world.ca.trustDomain}${REGISTRAR_ID_PATH}`);
    const pod = await world.createPod({ namespace: "tls", name: "web", node: "node-t" });
    const entries = await waitFor("the pod's entry", async () => {
      const e = (await world.entries()).filter((x) => x.spiffeId.includes("/ns/tls/"));
      return e.length === 1 ? e : undefined;
    });
    expect(entries[0]?.selectors).toEqual([`k8s:pod-uid:${pod.metadata?.uid}`]);
  });
});
