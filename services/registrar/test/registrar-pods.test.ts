// Pods → entries with the built-in default template, against the real CA process and the
// Kubernetes API server stand-in.
import { agentId, startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

jest.setTimeout(180_000);

let world: RegistrarWorld;

beforeAll(async () => {
  world = await startRegistrarWorld();
}, 120_000);
afterAll(async () => {
  await world?.stop();
});

describe("registrar – default template", () => {
  it("registrar – 100 injected pods get 100 correct entries; others none; deletion removes them", async () => {
    const nodeA = world.addNode("node-a");
    const nodeB = world.addNode("node-b");
    world.kube.apply({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "web", namespace: "apps" },
      spec: { selector: { app: "web" }, ports: [{ port: 80 }] },
    });
    const { registrar } = await world.startRegistrar();
    await waitFor("the registrar to be ready", () => registrar.ready());

    const pods = [];
    for (let i = 0; i < 100; i += 1) {
      pods.push(
        await world.createPod({
          namespace: "apps",
          name: `web-${i}`,
          node: i % 2 === 0 ? "node-a" : "node-b",
          serviceAccount: "web-sa",
          labels: { app: "web", "meshid.io/inject": "true" },
        }),
      );
    }
    // Not registered: not injected, ignored namespaces, unscheduled.
    await world.createPod({
      namespace: "apps",
      name: "plain",
      node: "node-a",
      labels: { app: "x" },
    });
    await world.createPod({ namespace: "kube-system", name: "dns", node: "node-a" });
    await world.createPod({ namespace: "meshid", name: "ca-0", node: "node-a" });
    const pending = await world.createPod({ namespace: "apps", name: "pending" });
    // NSM's label also marks a pod as meshed.
    const nsm = await world.createPod({
      namespace: "legacy",
      name: "old",
      node: "node-b",
      labels: { "spiffe.io/spiffeid": "true" },
    });

    const entries = await waitFor("101 entries", async () => {
      const e = await world.entries();
      return e.length === 101 ? e : undefined;
    });
    for (const [i, pod] of pods.entries()) {
      const uid = pod.metadata?.uid ?? "";
      const entry = entries.find((e) => e.selectors.includes(`k8s:pod-uid:${uid}`));
      expect(entry?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect({ ...entry, id: "" }).toEqual({
        id: "",
        spiffeId: "spiffe://example.org/ns/apps/sa/web-sa",
        parentId: agentId(i % 2 === 0 ? nodeA : nodeB),
        selectors: [`k8s:pod-uid:${uid}`],
        dnsNames: [`web-${i}`, "web-sa.apps.svc", "web.apps.svc"].sort(),
        ttlSeconds: 0,
        hint: "",
      });
    }
    const nsmUid = nsm.metadata?.uid ?? "";
    expect(entries.find((e) => e.selectors.includes(`k8s:pod-uid:${nsmUid}`))).toMatchObject({
      spiffeId: "spiffe://example.org/ns/legacy/sa/default",
      parentId: agentId(nodeB),
      dnsNames: ["default.legacy.svc", "old"],
    });

    // The pending pod gets its entry once scheduled.
    await world.core.patchNamespacedPod({
      namespace: "apps",
      name: "pending",
      body: [{ op: "add", path: "/spec/nodeName", value: "node-a" }],
    });
    const pendingUid = pending.metadata?.uid ?? "";
    await waitFor("the scheduled pod's entry", async () =>
      (await world.entries()).some((e) => e.selectors.includes(`k8s:pod-uid:${pendingUid}`)),
    );

    // Deleting pods removes exactly their entries.
    await world.deletePod("apps", "web-0");
    await world.deletePod("legacy", "old");
    const after = await waitFor("entries of deleted pods gone", async () => {
      const e = await world.entries();
      return e.length === 100 ? e : undefined;
    });
    const gone = [pods[0]?.metadata?.uid, nsmUid];
    expect(after.some((e) => gone.some((uid) => e.selectors.includes(`k8s:pod-uid:${uid}`)))).toBe(
      false,
    );
    expect(new Set(after.map((e) => e.selectors[0])).size).toBe(100);
    expect(registrar.status().reconciler.failures).toBe(0);
  });
});
