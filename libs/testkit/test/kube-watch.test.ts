import * as k8s from "@kubernetes/client-node";
import { startKubeApiServer, type KubeApiServer } from "../src/kube";

function pod(name: string, labels: Record<string, string> = {}, nodeName?: string): k8s.V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels },
    spec: { containers: [{ name: "app", image: "nginx" }], ...(nodeName ? { nodeName } : {}) },
  };
}

/** Polls `condition` until it holds (the jest timeout bounds the wait; no timing is asserted). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 10));
}

interface Seen {
  type: string;
  name: string | undefined;
  resourceVersion: string | undefined;
}

/** Starts a raw client-node Watch and records what it sees. */
async function rawWatch(
  kc: k8s.KubeConfig,
  path: string,
  query: Record<string, string | number | boolean>,
): Promise<{ seen: Seen[]; done: { called: boolean; err: unknown }; abort(): void }> {
  const seen: Seen[] = [];
  const done = { called: false, err: undefined as unknown };
  const controller = await new k8s.Watch(kc).watch(
    path,
    query,
    (type: string, obj: k8s.KubernetesObject) =>
      seen.push({ type, name: obj.metadata?.name, resourceVersion: obj.metadata?.resourceVersion }),
    (err: unknown) => {
      done.called = true;
      done.err = err;
    },
  );
  return { seen, done, abort: () => controller.abort() };
}

describe("kube api server watch", () => {
  let server: KubeApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  const stops: Array<() => unknown> = [];

  beforeEach(async () => {
    server = await startKubeApiServer({ bookmarkIntervalMs: 0 });
    kc = server.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
  });

  afterEach(async () => {
    for (const stop of stops.splice(0)) await stop();
    await server.stop();
  });

  function podInformer(labelSelector?: string) {
    const informer = k8s.makeInformer(
      kc,
      "/api/v1/namespaces/default/pods",
      () =>
        core.listNamespacedPod({
          namespace: "default",
          ...(labelSelector ? { labelSelector } : {}),
        }),
      labelSelector,
    );
    const events: string[] = [];
    informer.on("add", (p) => events.push(`add ${p.metadata?.name}`));
    informer.on("update", (p) => events.push(`update ${p.metadata?.name}`));
    informer.on("delete", (p) => events.push(`delete ${p.metadata?.name}`));
    informer.on("error", () => events.push("error"));
    stops.push(() => informer.stop());
    return { informer, events };
  }

  it("informer – sees ADDED, MODIFIED and DELETED through makeInformer", async () => {
    server.apply(pod("existing"));
    const { informer, events } = podInformer();
    await informer.start();
    await until(() => server.openWatchCount() === 1);
    expect(events).toEqual(["add existing"]);

    await core.createNamespacedPod({ namespace: "default", body: pod("web") });
    await until(() => events.length === 2);
    await core.patchNamespacedPod(
      { namespace: "default", name: "web", body: { metadata: { labels: { v: "2" } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    await until(() => events.length === 3);
    await core.deleteNamespacedPod({ namespace: "default", name: "web" });
    await until(() => events.length === 4);
    expect(events).toEqual(["add existing", "add web", "update web", "delete web"]);
    expect(informer.get("existing", "default")?.metadata?.name).toBe("existing");
    expect(informer.list("default").map((p) => p.metadata?.name)).toEqual(["existing"]);
  });

  it("informer – re-lists after 410 Expired when history was compacted and the watch restarts", async () => {
    server.apply(pod("a"));
    server.apply(pod("b"));
    const { informer, events } = podInformer();
    await informer.start();
    await until(() => server.openWatchCount() === 1);
    const listsBefore = server.requests.filter((r) => r.verb === "list").length;

    await informer.stop();
    await until(() => server.openWatchCount() === 0);
    server.delete({ kind: "Pod", name: "a", namespace: "default" });
    server.apply(pod("c"));
    server.compactHistory();
    await informer.start();

    await until(() => events.includes("add c") && events.includes("delete a"));
    expect(server.requests.filter((r) => r.verb === "list").length).toBe(listsBefore + 1);
    expect(
      informer
        .list("default")
        .map((p) => p.metadata?.name)
        .sort(),
    ).toEqual(["b", "c"]);
  });

  it("informer – a running informer re-lists when its watch is closed after compaction", async () => {
    server.apply(pod("a"));
    const { informer, events } = podInformer();
    await informer.start();
    await until(() => server.openWatchCount() === 1);
    server.compactHistory();
    server.closeWatches();
    await until(() => server.requests.filter((r) => r.verb === "list").length === 2);
    await until(() => server.openWatchCount() === 1);
    await core.createNamespacedPod({ namespace: "default", body: pod("after") });
    await until(() => events.includes("add after"));
    expect(events).toEqual(["add a", "add after"]);
  });

  it("informer – label-selected pods and cluster-scoped custom resources", async () => {
    server.apply(pod("in", { app: "web" }));
    server.apply(pod("out", { app: "db" }));
    const { informer, events } = podInformer("app=web");
    await informer.start();
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const ids = k8s.makeInformer<k8s.KubernetesObject>(
      kc,
      "/apis/meshid.io/v1alpha1/clusterspiffeids",
      async () =>
        (await custom.listClusterCustomObject({
          group: "meshid.io",
          version: "v1alpha1",
          plural: "clusterspiffeids",
        })) as k8s.KubernetesListObject<k8s.KubernetesObject>,
    );
    const idEvents: string[] = [];
    ids.on("add", (o) => idEvents.push(`add ${o.metadata?.name}`));
    ids.on("update", (o) => idEvents.push(`update ${o.metadata?.name}`));
    stops.push(() => ids.stop());
    await ids.start();
    await until(() => server.openWatchCount() === 2);
    server.apply(pod("late", { app: "web" }));
    server.apply(pod("other", { app: "db" }));
    server.apply({
      apiVersion: "meshid.io/v1alpha1",
      kind: "ClusterSPIFFEID",
      metadata: { name: "x" },
      spec: {},
    });
    server.apply({
      apiVersion: "meshid.io/v1alpha1",
      kind: "ClusterSPIFFEID",
      metadata: { name: "x" },
      spec: { a: "b" },
    });
    await until(() => events.length === 2 && idEvents.length === 2);
    expect(events).toEqual(["add in", "add late"]);
    expect(idEvents).toEqual(["add x", "update x"]);
  });

  it("watch – a too-old resourceVersion gets one ERROR event with a 410 Expired Status", async () => {
    const list = await core.listNamespacedPod({ namespace: "default" });
    server.compactHistory();
    const received: Array<{ type: string; object: k8s.V1Status }> = [];
    let finished = false;
    await new k8s.Watch(kc).watch(
      "/api/v1/namespaces/default/pods",
      { resourceVersion: list.metadata!.resourceVersion! },
      (type: string, object: k8s.V1Status) => received.push({ type, object }),
      () => {
        finished = true;
      },
    );
    await until(() => finished);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      type: "ERROR",
      object: { kind: "Status", status: "Failure", reason: "Expired", code: 410 },
    });
  });

  it("watch – http expiry mode answers 410 Gone, which client-node informers also handle", async () => {
    const gone = await startKubeApiServer({ expiredWatchMode: "http" });
    try {
      gone.compactHistory();
      const res = await fetch(
        `${gone.url}/api/v1/namespaces/default/pods?watch=true&resourceVersion=1`,
        {
          headers: { Authorization: `Bearer ${gone.adminToken}` },
        },
      );
      expect(res.status).toBe(410);
      expect(await res.json()).toMatchObject({ kind: "Status", code: 410, reason: "Expired" });

      const goneKc = gone.kubeConfig();
      const goneCore = goneKc.makeApiClient(k8s.CoreV1Api);
      const informer = k8s.makeInformer(goneKc, "/api/v1/namespaces/default/pods", () =>
        goneCore.listNamespacedPod({ namespace: "default" }),
      );
      const added: string[] = [];
      informer.on("add", (p) => added.push(p.metadata!.name!));
      await informer.start();
      await until(() => gone.openWatchCount() === 1);
      await informer.stop();
      await until(() => gone.openWatchCount() === 0);
      gone.apply(pod("late"));
      gone.compactHistory();
      await informer.start();
      await until(() => added.includes("late") && gone.openWatchCount() === 1);
      expect(gone.requests.filter((r) => r.verb === "watch").map((r) => r.status)).toEqual([
        410, 200, 410, 200,
      ]);
      await informer.stop();
    } finally {
      await gone.stop();
    }
  });

  it("watch – replays retained history after a resourceVersion, in order", async () => {
    const first = await core.createNamespacedPod({ namespace: "default", body: pod("one") });
    await core.createNamespacedPod({ namespace: "default", body: pod("two") });
    await core.deleteNamespacedPod({ namespace: "default", name: "one" });
    const w = await rawWatch(kc, "/api/v1/namespaces/default/pods", {
      resourceVersion: first.metadata!.resourceVersion!,
    });
    stops.push(w.abort);
    await until(() => w.seen.length === 2);
    expect(w.seen.map((s) => `${s.type} ${s.name}`)).toEqual(["ADDED two", "DELETED one"]);
    expect(Number(w.seen[1]!.resourceVersion)).toBeGreaterThan(Number(w.seen[0]!.resourceVersion));
  });

  it("watch – label and field selectors apply, with objects moving in and out of the selection", async () => {
    server.apply(pod("a", { app: "web" }, "n1"));
    const byLabel = await rawWatch(kc, "/api/v1/namespaces/default/pods", {
      labelSelector: "app=web",
    });
    const byNode = await rawWatch(kc, "/api/v1/pods", { fieldSelector: "spec.nodeName=n2" });
    stops.push(byLabel.abort, byNode.abort);
    await until(() => byLabel.seen.length === 1 && server.openWatchCount() === 2);

    server.apply(pod("b", { app: "db" }, "n2"));
    server.apply(pod("a", { app: "other" }, "n1"));
    server.apply(pod("a", { app: "web" }, "n1"));
    await until(() => byLabel.seen.length === 3 && byNode.seen.length === 1);
    expect(byLabel.seen.map((s) => `${s.type} ${s.name}`)).toEqual([
      "ADDED a",
      "DELETED a",
      "ADDED a",
    ]);
    expect(byNode.seen.map((s) => `${s.type} ${s.name}`)).toEqual(["ADDED b"]);
  });

  it("watch – BOOKMARK events on request and on the configured interval", async () => {
    const w = await rawWatch(kc, "/api/v1/namespaces/default/pods", {
      allowWatchBookmarks: true,
      resourceVersion: String(server.resourceVersion()),
    });
    stops.push(w.abort);
    await until(() => server.openWatchCount() === 1);
    server.apply(pod("x"));
    server.emitBookmarks();
    await until(() => w.seen.length === 2);
    expect(w.seen[1]).toEqual({
      type: "BOOKMARK",
      name: undefined,
      resourceVersion: String(server.resourceVersion()),
    });

    const ticking = await startKubeApiServer({ bookmarkIntervalMs: 20 });
    try {
      const t = await rawWatch(ticking.kubeConfig(), "/api/v1/namespaces/default/pods", {
        allowWatchBookmarks: true,
        resourceVersion: "1",
      });
      await until(() => t.seen.some((s) => s.type === "BOOKMARK"));
      t.abort();
      const plain = await rawWatch(
        ticking.kubeConfig(),
        "/api/v1/namespaces/default/configmaps",
        {},
      );
      ticking.emitBookmarks();
      ticking.apply({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "z", namespace: "default" },
      });
      await until(() => plain.seen.length === 1);
      expect(plain.seen[0]!.type).toBe("ADDED");
      plain.abort();
    } finally {
      await ticking.stop();
    }
  });

  it("watch – graceful pod deletion shows MODIFIED with deletionTimestamp, then DELETED", async () => {
    const graceful = await startKubeApiServer({ gracefulPodDeletion: true });
    try {
      const gkc = graceful.kubeConfig();
      const gcore = gkc.makeApiClient(k8s.CoreV1Api);
      graceful.apply(pod("bound", {}, "node-1"));
      graceful.apply(pod("unbound"));
      const w = await rawWatch(gkc, "/api/v1/namespaces/default/pods", {
        resourceVersion: String(graceful.resourceVersion()),
      });
      await until(() => graceful.openWatchCount() === 1);
      await gcore.deleteNamespacedPod({ namespace: "default", name: "bound" });
      await gcore.deleteNamespacedPod({ namespace: "default", name: "unbound" });
      const terminating = graceful.get<k8s.V1Pod>({ kind: "Pod", name: "bound" });
      expect(terminating?.metadata?.deletionTimestamp).toBeDefined();
      expect(terminating?.metadata?.deletionGracePeriodSeconds).toBe(30);
      graceful.delete({ kind: "Pod", name: "bound", gracePeriodSeconds: 0 });
      await until(() => w.seen.length === 3);
      expect(w.seen.map((s) => `${s.type} ${s.name}`)).toEqual([
        "MODIFIED bound",
        "DELETED unbound",
        "DELETED bound",
      ]);
      w.abort();
    } finally {
      await graceful.stop();
    }
  });

  it("watch – timeoutSeconds ends the stream, and stop() closes every open watch", async () => {
    const timed = await rawWatch(kc, "/api/v1/namespaces/default/pods", { timeoutSeconds: 1 });
    await until(() => timed.done.called);
    expect(timed.done.err).toBeNull();

    const open = await rawWatch(kc, "/api/v1/namespaces/default/configmaps", {});
    await until(() => server.openWatchCount() === 1);
    server.closeWatches();
    await until(() => open.done.called);
    expect(server.openWatchCount()).toBe(0);
  });
});
