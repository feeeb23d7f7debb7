// A registrar batch size above the CA's limits.maxBatchSize: the CA answers RESOURCE_EXHAUSTED
// and the registrar halves its batches until they fit, registering every pod.
import { startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

jest.setTimeout(180_000);

let world: RegistrarWorld;

beforeAll(async () => {
  world = await startRegistrarWorld({}, { limits: { maxBatchSize: 2 } });
});
afterAll(async () => {
  await world?.stop();
});

describe("registrar – CA batch limit", () => {
  it("registrar – batches larger than the CA accepts are halved until they fit", async () => {
    world.addNode("node-b");
    for (let i = 0; i < 7; i += 1) {
      await world.createPod({ namespace: "batch", name: `p-${i}`, node: "node-b" });
    }
    const { registrar, log } = await world.startRegistrar({ batchSize: 8 });
    await waitFor("7 entries", async () => (await world.entries()).length === 7);
    expect(log.text()).toContain("the CA refused the batch size: halving it");
    expect(registrar.status().reconciler).toMatchObject({ created: 7, failures: 0 });
  });
});
