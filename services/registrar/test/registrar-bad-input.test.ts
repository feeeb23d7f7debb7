// Bad input and outages: malformed pod objects are skipped (the rest keeps working); an
// unreachable CA makes the registrar retry with backoff and report not-ready, and it recovers
// (registering what happened meanwhile) once the CA is back.
import { startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

jest.setTimeout(180_000);

let world: RegistrarWorld;

beforeAll(async () => {
  world = await startRegistrarWorld();
}, 120_000);
afterAll(async () => {
  await world?.stop();
});

describe("registrar – bad input and CA outages", () => {
  it("registrar – malformed pod objects are skipped; well-formed pods still register", async () => {
    world.addNode("node-m");
    const { registrar } = await world.startRegistrar();
    await waitFor("ready", () => registrar.ready());
    // Written as a broken controller might leave them (the stand-in's apply skips validation).
    world.kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "weird", namespace: "bad", labels: { "meshid.io/inject": "true", n: 5 } },
      spec: "not an object",
      status: 42,
    });
    world.kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "odd-node",
        namespace: "bad",
        labels: { "meshid.io/inject": "true" },
        annotations: null,
      },
      spec: { nodeName: 7, serviceAccountName: ["x"] },
    });
    const good = await world.createPod({ namespace: "bad", name: "good", node: "node-m" });
    const entries = await waitFor("the good pod's entry", async () => {
      const e = (await world.entries()).filter((x) => x.spiffeId.includes("/ns/bad/"));
      return e.length > 0 ? e : undefined;
    });
    expect(entries.map((e) => e.selectors)).toEqual([[`k8s:pod-uid:${good.metadata?.uid}`]]);
    expect(registrar.ready()).toBe(true);
    await registrar.stop();
  });

  it("registrar – without the ClusterSPIFFEID CRD it registers with the default template", async () => {
    world.addNode("node-c");
    // The CRD's endpoints answer 404 for a while, as when it is not installed.
    world.kube.failNext({ verb: "list", resource: "clusterspiffeids", status: 404, times: 3 });
    world.kube.failNext({ verb: "watch", resource: "clusterspiffeids", status: 404, times: 3 });
    const { registrar, log } = await world.startRegistrar();
    await waitFor("ready", () => registrar.ready());
    const pod = await world.createPod({ namespace: "nocrd", name: "p", node: "node-c" });
    const entries = await waitFor("the default entry", async () => {
      const e = (await world.entries()).filter((x) => x.spiffeId.includes("/ns/nocrd/"));
      return e.length === 1 ? e : undefined;
    });
    expect(entries[0]?.selectors).toEqual([`k8s:pod-uid:${pod.metadata?.uid}`]);
    expect(log.text()).toContain("ClusterSPIFFEID CRD not installed");
    await registrar.stop();
  });

  it("registrar – an unreachable CA: retries with backoff, not ready, recovers", async () => {
    world.addNode("node-o");
    const { registrar, log } = await world.startRegistrar({ resyncInterval: "2s" });
    await waitFor("ready", () => registrar.ready());
    await world.createPod({ namespace: "outage", name: "p1", node: "node-o" });
    await waitFor("p1's entry", async () =>
      (await world.entries()).some((e) => e.dnsNames.includes("p1")),
    );

    await world.ca.kill9();
    await world.createPod({ namespace: "outage", name: "p2", node: "node-o" });
    await world.deletePod("outage", "p1");
    await waitFor("not ready", () => !registrar.ready());
    await waitFor("two failed rounds", () => registrar.status().reconciler.failures >= 2);
    expect(registrar.status().reconciler.caReachable).toBe(false);
    const retries = log
      .entries()
      .filter((l) => l.msg === "reconcile failed: retrying")
      .map((l) => l.retryInMs as number);
    expect(retries.slice(0, 2)).toEqual([500, 1000]);

    await world.ca.restart();
    const admin = world.ca.admin();
    await waitFor("ready again", () => registrar.ready());
    const outage = await waitFor("p2 registered, p1 gone", async () => {
      const page = await admin.entries.listEntries({ byOwner: "registrar", pageSize: 1000 });
      const dns = page.entries.filter((e) => e.spiffeId?.path.startsWith("/ns/outage/"));
      return dns.length === 1 && dns[0]?.dnsNames.includes("p2") === true ? dns : undefined;
    });
    expect(outage).toHaveLength(1);
    admin.close();
  });
});
