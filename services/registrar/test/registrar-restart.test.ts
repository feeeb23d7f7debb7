// Restarts and watch expiry: a registrar started after pods changed converges to exactly the
// desired entries (no duplicates, leftovers removed, foreign entries untouched); an expired
// watch (410 Gone) re-lists and loses no pod created or deleted in the gap.
import { randomUUID } from "node:crypto";
import { agentId, startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

jest.setTimeout(180_000);

let world: RegistrarWorld;

beforeAll(async () => {
  world = await startRegistrarWorld();
}, 120_000);
afterAll(async () => {
  await world?.stop();
});

function entry(spiffePath: string, parentId: string, podUid: string, owner: string) {
  return {
    spiffeId: { trustDomain: "example.org", path: spiffePath },
    parentId: { trustDomain: "example.org", path: parentId.replace("spiffe://example.org", "") },
    selectors: [{ type: "k8s", value: `pod-uid:${podUid}` }],
    owner,
  };
}

describe("registrar – restart and watch expiry", () => {
  it("registrar – a restart with pods changed meanwhile yields exactly the desired set", async () => {
    const nodeUid = world.addNode("node-r");
    const first = await world.startRegistrar();
    await waitFor("ready", () => first.registrar.ready());
    const uids = new Map<string, string>();
    for (const name of ["a", "b", "c", "d"]) {
      const pod = await world.createPod({ namespace: "restart", name, node: "node-r" });
      uids.set(name, pod.metadata?.uid ?? "");
    }
    await waitFor("4 entries", async () => (await world.entries()).length === 4);
    await first.registrar.stop();

    // Meanwhile: two pods go, two come, one is no longer injected.
    await world.deletePod("restart", "a");
    await world.deletePod("restart", "b");
    for (const name of ["e", "f"]) {
      const pod = await world.createPod({ namespace: "restart", name, node: "node-r" });
      uids.set(name, pod.metadata?.uid ?? "");
    }
    await world.core.patchNamespacedPod({
      namespace: "restart",
      name: "d",
      body: [{ op: "replace", path: "/metadata/labels", value: { app: "d" } }],
    });
    // A leftover the registrar owns for a pod that never existed, and a foreign entry.
    const parent = agentId(nodeUid);
    const created = await world.admin.entries.batchCreateEntry({
      entries: [
        entry("/ns/restart/sa/default", parent, randomUUID(), "registrar"),
        entry("/ns/restart/sa/default", parent, randomUUID(), "operator"),
        // A duplicate of c's entry: the CA itself refuses it, so none can exist.
        entry("/ns/restart/sa/default", parent, uids.get("c") ?? "", "registrar"),
      ],
    });
    expect(created.results.map((r) => r.status?.code ?? 0)).toEqual([0, 0, 6]);

    const second = await world.startRegistrar();
    const expected = ["c", "e", "f"].map((n) => `k8s:pod-uid:${uids.get(n)}`).sort();
    const entries = await waitFor("exactly c, e and f", async () => {
      const e = await world.entries();
      const pods = e.map((x) => x.selectors[0] ?? "").sort();
      return JSON.stringify(pods) === JSON.stringify(expected) ? e : undefined;
    });
    expect(entries).toHaveLength(3);
    expect(new Set(entries.map((e) => e.id)).size).toBe(3);
    // The foreign entry is untouched.
    const foreign = await world.admin.entries.listEntries({ byOwner: "operator" });
    expect(foreign.entries).toHaveLength(1);

    // A third start over an already converged state writes nothing.
    await second.registrar.stop();
    const third = await world.startRegistrar();
    await waitFor("a full reconcile", () => third.registrar.status().reconciler.fullReconciles > 0);
    expect(third.registrar.status().reconciler).toMatchObject({
      created: 0,
      updated: 0,
      deleted: 0,
    });
    expect((await world.entries()).map((e) => e.id).sort()).toEqual(
      entries.map((e) => e.id).sort(),
    );
    await third.registrar.stop();
  });

  it("registrar – an expired watch (410) re-lists without losing pods of the gap", async () => {
    world.addNode("node-g");
    const { registrar } = await world.startRegistrar();
    await waitFor("ready", () => registrar.ready());
    await world.createPod({ namespace: "gap", name: "before", node: "node-g" });
    await world.createPod({ namespace: "gap", name: "doomed", node: "node-g" });
    await waitFor(
      "2 gap entries",
      async () =>
        (await world.entries()).filter((e) => e.spiffeId.includes("/ns/gap/")).length === 2,
    );
    const listsBefore = registrar.status().listCounts.pods ?? 0;

    // Keep the pod watch down for a while, change pods in the gap, then expire the history.
    world.kube.failNext({ verb: "watch", resource: "pods", status: 500, times: 2 });
    world.kube.closeWatches();
    const created = await world.createPod({ namespace: "gap", name: "in-gap", node: "node-g" });
    await world.deletePod("gap", "doomed");
    world.kube.compactHistory();

    await waitFor(
      "a re-list of pods",
      () => (registrar.status().listCounts.pods ?? 0) > listsBefore,
    );
    const gap = await waitFor("before and in-gap only", async () => {
      const e = (await world.entries()).filter((x) => x.spiffeId.includes("/ns/gap/"));
      return e.length === 2 &&
        e.some((x) => x.selectors[0] === `k8s:pod-uid:${created.metadata?.uid}`)
        ? e
        : undefined;
    });
    expect(gap).toHaveLength(2);
  });
});
