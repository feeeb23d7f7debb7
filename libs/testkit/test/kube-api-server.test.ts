import * as k8s from "@kubernetes/client-node";
import { startKubeApiServer, type KubeApiServer } from "../src/kube";

function pod(name: string, extra: Partial<k8s.V1Pod> = {}): k8s.V1Pod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, ...(extra.metadata ?? {}) },
    spec: { containers: [{ name: "app", image: "nginx:1.27" }], ...(extra.spec ?? {}) },
    ...(extra.status ? { status: extra.status } : {}),
  };
}

/** Returns the HTTP code and parsed Status body of a failed client-node call. */
async function failure(call: Promise<unknown>): Promise<{ code: number; status: k8s.V1Status }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body =
      typeof e.body === "string" ? (JSON.parse(e.body) as k8s.V1Status) : (e.body as k8s.V1Status);
    return { code: e.code ?? 0, status: body };
  }
  throw new Error("expected the call to fail");
}

describe("kube api server", () => {
  let server: KubeApiServer;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;

  beforeEach(async () => {
    server = await startKubeApiServer();
    kc = server.kubeConfig();
    core = kc.makeApiClient(k8s.CoreV1Api);
  });

  afterEach(async () => {
    await server.stop();
  });

  it("pods – create, read, list, replace, patch and delete through CoreV1Api", async () => {
    const created = await core.createNamespacedPod({ namespace: "default", body: pod("web") });
    expect(created.metadata?.uid).toMatch(/[0-9a-f-]{36}/);
    expect(created.metadata?.resourceVersion).toBeDefined();
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date);
    expect(created.status?.phase).toBe("Pending");

    const read = await core.readNamespacedPod({ namespace: "default", name: "web" });
    expect(read.metadata?.uid).toBe(created.metadata?.uid);

    const list = await core.listNamespacedPod({ namespace: "default" });
    expect(list.items.map((p) => p.metadata?.name)).toEqual(["web"]);
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(
      Number(created.metadata?.resourceVersion),
    );

    read.metadata!.labels = { app: "web" };
    const replaced = await core.replaceNamespacedPod({
      namespace: "default",
      name: "web",
      body: read,
    });
    expect(replaced.metadata?.labels).toEqual({ app: "web" });
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(
      Number(read.metadata?.resourceVersion),
    );

    const jsonPatched = await core.patchNamespacedPod({
      namespace: "default",
      name: "web",
      body: [{ op: "add", path: "/metadata/labels/tier", value: "front" }],
    });
    expect(jsonPatched.metadata?.labels).toEqual({ app: "web", tier: "front" });

    const merged = await core.patchNamespacedPod(
      { namespace: "default", name: "web", body: { metadata: { labels: { app: null } } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    expect(merged.metadata?.labels).toEqual({ tier: "front" });

    const strategic = await core.patchNamespacedPod(
      {
        namespace: "default",
        name: "web",
        body: { spec: { containers: [{ name: "sidecar", image: "nginx:1.27" }] } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
    );
    expect(strategic.spec?.containers.map((c) => c.name)).toEqual(["app", "sidecar"]);

    const deleted = await core.deleteNamespacedPod({ namespace: "default", name: "web" });
    expect(deleted.metadata?.name).toBe("web");
    const gone = await failure(core.readNamespacedPod({ namespace: "default", name: "web" }));
    expect(gone.code).toBe(404);
    expect(gone.status).toMatchObject({
      kind: "Status",
      status: "Failure",
      reason: "NotFound",
      code: 404,
      message: 'pods "web" not found',
    });
  });

  it("pods – creation validates containers like the real server (422 Invalid)", async () => {
    const invalid = await failure(
      core.createNamespacedPod({
        namespace: "default",
        body: { metadata: { name: "empty" }, spec: { containers: [] } },
      }),
    );
    expect(invalid.code).toBe(422);
    expect(invalid.status.reason).toBe("Invalid");
    expect(invalid.status.message).toBe('Pod "empty" is invalid: spec.containers: Required value');
  });

  it("pods – defaulting like the real server: service account, restart policy, pull policy", async () => {
    const created = await core.createNamespacedPod({ namespace: "default", body: pod("d") });
    expect(created.spec).toMatchObject({
      serviceAccountName: "default",
      serviceAccount: "default",
      restartPolicy: "Always",
      dnsPolicy: "ClusterFirst",
      terminationGracePeriodSeconds: 30,
    });
    expect(created.spec?.containers[0]?.imagePullPolicy).toBe("IfNotPresent");
    const named = await core.createNamespacedPod({
      namespace: "default",
      body: pod("e", {
        spec: { serviceAccountName: "registrar", containers: [{ name: "c", image: "x" }] },
      }),
    });
    expect(named.spec?.serviceAccount).toBe("registrar");
    expect(named.spec?.containers[0]?.imagePullPolicy).toBe("Always");
  });

  it("namespaces and services – controllers' effects: default ServiceAccount, cluster IPs", async () => {
    await core.createNamespace({ body: { metadata: { name: "team-b" } } });
    const sa = await core.readNamespacedServiceAccount({ namespace: "team-b", name: "default" });
    expect(sa.metadata?.uid).toBeDefined();
    const svc = await core.createNamespacedService({
      namespace: "team-b",
      body: { metadata: { name: "web" }, spec: { ports: [{ port: 80 }] } },
    });
    expect(svc.spec?.clusterIP).toMatch(/^10\.96\.\d+\.\d+$/);
    expect(svc.spec?.type).toBe("ClusterIP");
  });

  it("routing – cluster-wide paths of namespaced kinds only list and watch", async () => {
    const res = await fetch(`${server.url}/api/v1/pods`, {
      method: "POST",
      headers: { Authorization: `Bearer ${server.adminToken}`, "Content-Type": "application/json" },
      body: JSON.stringify(pod("nowhere")),
    });
    expect(res.status).toBe(404);
    expect(server.list({ kind: "Pod" })).toEqual([]);
  });

  it("decoding – a body of another kind or apiVersion is a 400 BadRequest", async () => {
    const wrongKind = await failure(
      core.createNamespacedConfigMap({
        namespace: "default",
        body: { apiVersion: "v1", kind: "Secret", metadata: { name: "s" } },
      }),
    );
    expect(wrongKind.code).toBe(400);
    expect(wrongKind.status.message).toContain("does not match the expected kind (ConfigMap)");
  });

  it("pods – status subresource is the only way to write status", async () => {
    await core.createNamespacedPod({
      namespace: "default",
      body: pod("p", { status: { phase: "Running" } }),
    });
    const fresh = await core.readNamespacedPod({ namespace: "default", name: "p" });
    expect(fresh.status?.phase).toBe("Pending");

    fresh.status = { phase: "Running", podIP: "10.0.0.7" };
    const viaMain = await core.replaceNamespacedPod({
      namespace: "default",
      name: "p",
      body: fresh,
    });
    expect(viaMain.status?.phase).toBe("Pending");

    const viaStatus = await core.replaceNamespacedPodStatus({
      namespace: "default",
      name: "p",
      body: { ...viaMain, status: { phase: "Running", podIP: "10.0.0.7" } },
    });
    expect(viaStatus.status?.phase).toBe("Running");

    const patched = await core.patchNamespacedPodStatus(
      {
        namespace: "default",
        name: "p",
        body: { status: { phase: "Succeeded" }, metadata: { labels: { x: "y" } } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    expect(patched.status?.phase).toBe("Succeeded");
    expect(patched.status?.podIP).toBe("10.0.0.7");
    expect(patched.metadata?.labels).toBeUndefined();
  });

  it("configmaps – CRUD, AlreadyExists, generateName and missing namespace", async () => {
    const cm = await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "bundle" }, data: { "bundle.crt": "x" } },
    });
    expect(cm.data).toEqual({ "bundle.crt": "x" });

    const dup = await failure(
      core.createNamespacedConfigMap({
        namespace: "default",
        body: { metadata: { name: "bundle" } },
      }),
    );
    expect(dup.code).toBe(409);
    expect(dup.status.reason).toBe("AlreadyExists");

    const generated = await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { generateName: "gen-" } },
    });
    expect(generated.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);

    const noNs = await failure(
      core.createNamespacedConfigMap({ namespace: "nowhere", body: { metadata: { name: "a" } } }),
    );
    expect(noNs.code).toBe(404);
    expect(noNs.status.message).toBe('namespaces "nowhere" not found');

    cm.data = { "bundle.crt": "y" };
    const replaced = await core.replaceNamespacedConfigMap({
      namespace: "default",
      name: "bundle",
      body: cm,
    });
    expect(replaced.data).toEqual({ "bundle.crt": "y" });

    await core.deleteNamespacedConfigMap({ namespace: "default", name: "bundle" });
    expect(server.get({ kind: "ConfigMap", name: "bundle" })).toBeUndefined();
  });

  it("namespaces – auto-create option and cascading delete", async () => {
    const auto = await startKubeApiServer({ autoCreateNamespaces: true });
    try {
      const api = auto.kubeConfig().makeApiClient(k8s.CoreV1Api);
      await api.createNamespacedConfigMap({
        namespace: "team-a",
        body: { metadata: { name: "c" } },
      });
      const ns = await api.readNamespace({ name: "team-a" });
      expect(ns.status?.phase).toBe("Active");
      await api.deleteNamespace({ name: "team-a" });
      expect(auto.list({ kind: "ConfigMap", namespace: "team-a" })).toEqual([]);
    } finally {
      await auto.stop();
    }
  });

  it("optimistic concurrency – a stale replace gets 409 Conflict; a retry on a fresh read succeeds", async () => {
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "c" }, data: { n: "0" } },
    });
    const stale = await core.readNamespacedConfigMap({ namespace: "default", name: "c" });
    server.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "default" },
      data: { n: "1" },
    });

    stale.data = { n: "2" };
    const conflict = await failure(
      core.replaceNamespacedConfigMap({ namespace: "default", name: "c", body: stale }),
    );
    expect(conflict.code).toBe(409);
    expect(conflict.status.reason).toBe("Conflict");
    expect(conflict.status.message).toContain("the object has been modified");

    let attempts = 0;
    for (;;) {
      attempts++;
      const fresh = await core.readNamespacedConfigMap({ namespace: "default", name: "c" });
      fresh.data = { n: String(Number(fresh.data?.n ?? "0") + 1) };
      if (attempts === 1) {
        server.apply({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "c", namespace: "default" },
          data: { n: "5" },
        });
      }
      try {
        await core.replaceNamespacedConfigMap({ namespace: "default", name: "c", body: fresh });
        break;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempts > 3) throw err;
      }
    }
    expect(attempts).toBe(2);
    expect(server.get<k8s.V1ConfigMap>({ kind: "ConfigMap", name: "c" })?.data).toEqual({ n: "6" });

    const patchConflict = await failure(
      core.patchNamespacedConfigMap(
        {
          namespace: "default",
          name: "c",
          body: { metadata: { resourceVersion: "1" }, data: { n: "9" } },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
      ),
    );
    expect(patchConflict.code).toBe(409);
  });

  it("selectors – label (=, ==, !=, in, notin, exists, !key) and field (spec.nodeName, status.phase) selectors", async () => {
    server.apply(
      pod("a", {
        metadata: { name: "a", namespace: "default", labels: { app: "web", tier: "front" } },
        spec: { nodeName: "n1", containers: [] },
        status: { phase: "Running" },
      }),
    );
    server.apply(
      pod("b", {
        metadata: { name: "b", namespace: "default", labels: { app: "db" } },
        spec: { nodeName: "n2", containers: [] },
        status: { phase: "Running" },
      }),
    );
    server.apply(
      pod("c", {
        metadata: { name: "c", namespace: "default", labels: { app: "web" } },
        spec: { nodeName: "n2", containers: [] },
        status: { phase: "Pending" },
      }),
    );
    const names = async (p: { labelSelector?: string; fieldSelector?: string }) =>
      (await core.listNamespacedPod({ namespace: "default", ...p })).items.map(
        (i) => i.metadata?.name,
      );

    expect(await names({ labelSelector: "app=web" })).toEqual(["a", "c"]);
    expect(await names({ labelSelector: "app==db" })).toEqual(["b"]);
    expect(await names({ labelSelector: "app!=web" })).toEqual(["b"]);
    expect(await names({ labelSelector: "app in (db, web),tier" })).toEqual(["a"]);
    expect(await names({ labelSelector: "app notin (web)" })).toEqual(["b"]);
    expect(await names({ labelSelector: "!tier" })).toEqual(["b", "c"]);
    expect(await names({ fieldSelector: "spec.nodeName=n2" })).toEqual(["b", "c"]);
    expect(await names({ fieldSelector: "spec.nodeName=n2,status.phase=Running" })).toEqual(["b"]);
    expect(await names({ fieldSelector: "metadata.name!=a", labelSelector: "app=web" })).toEqual([
      "c",
    ]);
    const all = await core.listPodForAllNamespaces({ fieldSelector: "spec.nodeName=n1" });
    expect(all.items.map((i) => i.metadata?.name)).toEqual(["a"]);

    const bad = await failure(
      core.listNamespacedPod({ namespace: "default", fieldSelector: "spec.image=x" }),
    );
    expect(bad.code).toBe(400);
    expect(bad.status.message).toBe("field label not supported: spec.image");
  });

  it("list – limit and continue page through the collection", async () => {
    for (const n of ["p1", "p2", "p3", "p4", "p5"])
      server.apply(pod(n, { metadata: { name: n, namespace: "default" } }));
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await core.listNamespacedPod({
        namespace: "default",
        limit: 2,
        ...(token ? { _continue: token } : {}),
      });
      pages++;
      seen.push(...page.items.map((i) => i.metadata!.name!));
      token = page.metadata?._continue;
    } while (token);
    expect(pages).toBe(3);
    expect(seen).toEqual(["p1", "p2", "p3", "p4", "p5"]);
  });

  it("discovery – KubernetesObjectApi finds resources through /api and /apis", async () => {
    const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    const lease = await objects.create({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "leader", namespace: "default" },
      spec: { holderIdentity: "a" },
    } as k8s.KubernetesObject);
    expect(lease.metadata?.uid).toBeDefined();
    const cmSpec: k8s.KubernetesObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x", namespace: "default" },
    };
    const cm = await objects.create(cmSpec);
    expect(cm.metadata?.name).toBe("x");
    const read = await objects.read({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x", namespace: "default" },
    });
    expect(read.metadata?.uid).toBe(cm.metadata?.uid);
    const applied = await objects.patch(
      { ...cmSpec, data: { k: "v" } },
      undefined,
      undefined,
      "meshid-test",
      undefined,
      k8s.PatchStrategy.ServerSideApply,
    );
    expect(applied.data).toEqual({ k: "v" });
    const groups = await kc.makeApiClient(k8s.ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).toEqual(
      expect.arrayContaining([
        "coordination.k8s.io",
        "meshid.io",
        "authentication.k8s.io",
        "events.k8s.io",
      ]),
    );
  });

  it("custom resources – clusterspiffeids through CustomObjectsApi, and CRDs applied from YAML register new kinds", async () => {
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const body = {
      apiVersion: "meshid.io/v1alpha1",
      kind: "ClusterSPIFFEID",
      metadata: { name: "default" },
      spec: { spiffeIDTemplate: "spiffe://example.org/ns/{{ .PodMeta.Namespace }}" },
    };
    const created = (await custom.createClusterCustomObject({
      group: "meshid.io",
      version: "v1alpha1",
      plural: "clusterspiffeids",
      body,
    })) as k8s.KubernetesObject;
    expect(created.metadata?.resourceVersion).toBeDefined();
    const list = (await custom.listClusterCustomObject({
      group: "meshid.io",
      version: "v1alpha1",
      plural: "clusterspiffeids",
    })) as { items: k8s.KubernetesObject[] };
    expect(list.items.map((i) => [i.kind, i.metadata?.name])).toEqual([
      ["ClusterSPIFFEID", "default"],
    ]);

    const noRv = await failure(
      custom.replaceClusterCustomObject({
        group: "meshid.io",
        version: "v1alpha1",
        plural: "clusterspiffeids",
        name: "default",
        body,
      }),
    );
    expect(noRv.code).toBe(422);

    const patched = (await custom.patchClusterCustomObject(
      {
        group: "meshid.io",
        version: "v1alpha1",
        plural: "clusterspiffeids",
        name: "default",
        body: { spec: { className: "meshid" } },
      },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    )) as { spec: Record<string, string> };
    expect(patched.spec.className).toBe("meshid");
    const strategic = await failure(
      custom.patchClusterCustomObject(
        {
          group: "meshid.io",
          version: "v1alpha1",
          plural: "clusterspiffeids",
          name: "default",
          body: { spec: {} },
        },
        k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.StrategicMergePatch),
      ),
    );
    expect(strategic.code).toBe(415);
    await custom.deleteClusterCustomObject({
      group: "meshid.io",
      version: "v1alpha1",
      plural: "clusterspiffeids",
      name: "default",
    });

    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: "widgets.example.com" },
        spec: {
          group: "example.com",
          names: { plural: "widgets", singular: "widget", kind: "Widget" },
          scope: "Namespaced",
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: "object" } },
            },
          ],
        },
      },
    });
    await custom.createNamespacedCustomObject({
      group: "example.com",
      version: "v1",
      namespace: "default",
      plural: "widgets",
      body: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } },
    });
    expect(
      server.get({ kind: "Widget", name: "w", namespace: "default" })?.metadata.uid,
    ).toBeDefined();
    const crd = await ext.readCustomResourceDefinition({ name: "widgets.example.com" });
    expect(crd.status?.conditions?.find((c) => c.type === "Established")?.status).toBe("True");
    await ext.deleteCustomResourceDefinition({ name: "widgets.example.com" });
    const unserved = await failure(
      custom.listNamespacedCustomObject({
        group: "example.com",
        version: "v1",
        namespace: "default",
        plural: "widgets",
      }),
    );
    expect(unserved.code).toBe(404);
  });

  it("leases – CoordinationV1Api create and replace with resourceVersion conflicts", async () => {
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coord.createNamespacedLease({
      namespace: "kube-system",
      body: {
        metadata: { name: "registrar" },
        spec: { holderIdentity: "a", leaseDurationSeconds: 15 },
      },
    });
    const renewed = await coord.replaceNamespacedLease({
      namespace: "kube-system",
      name: "registrar",
      body: {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "a", renewTime: new k8s.V1MicroTime() },
      },
    });
    expect(renewed.spec?.renewTime).toBeDefined();
    expect(Number(renewed.metadata?.resourceVersion)).toBeGreaterThan(
      Number(lease.metadata?.resourceVersion),
    );
    const takeover = await failure(
      coord.replaceNamespacedLease({
        namespace: "kube-system",
        name: "registrar",
        body: { ...lease, spec: { holderIdentity: "b" } },
      }),
    );
    expect(takeover.code).toBe(409);
    expect(
      server.get<k8s.V1Lease>({ kind: "Lease", name: "registrar", namespace: "kube-system" })?.spec
        ?.holderIdentity,
    ).toBe("a");
  });

  it("events – core and events.k8s.io Events are recorded", async () => {
    await core.createNamespacedEvent({
      namespace: "default",
      body: {
        metadata: { generateName: "web." },
        involvedObject: { kind: "Pod", name: "web", namespace: "default" },
        reason: "SvidIssued",
        message: "issued",
        type: "Normal",
      },
    });
    await kc.makeApiClient(k8s.EventsV1Api).createNamespacedEvent({
      namespace: "default",
      body: {
        metadata: { name: "e2" },
        eventTime: new k8s.V1MicroTime(),
        reason: "BundleUpdated",
        action: "Update",
        reportingController: "meshid.io/bundle-notifier",
        reportingInstance: "x",
        type: "Normal",
      },
    });
    expect(server.events().map((e) => e.reason)).toEqual(["SvidIssued", "BundleUpdated"]);
    const listed = await core.listNamespacedEvent({
      namespace: "default",
      fieldSelector: "involvedObject.name=web",
    });
    expect(listed.items).toHaveLength(1);
  });

  it("auth – requests without the bearer token get 401; service-account tokens are accepted", async () => {
    const res = await fetch(`${server.url}/api/v1/namespaces`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ kind: "Status", code: 401, reason: "Unauthorized" });
    const token = server.issueServiceAccountToken({
      namespace: "default",
      serviceAccount: "registrar",
      audiences: [server.issuer],
    });
    const ok = await fetch(`${server.url}/api/v1/namespaces`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(ok.status).toBe(200);
  });

  it("fault injection – failNext fails only the next matching request; the request log records verbs", async () => {
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "c" } },
    });
    server.clearRequests();
    server.failNext({ verb: "update", resource: "configmaps", status: 500 });
    const cm = await core.readNamespacedConfigMap({ namespace: "default", name: "c" });
    const first = await failure(
      core.replaceNamespacedConfigMap({ namespace: "default", name: "c", body: cm }),
    );
    expect(first.code).toBe(500);
    expect(first.status.reason).toBe("InternalError");
    cm.data = { a: "b" };
    await core.replaceNamespacedConfigMap({ namespace: "default", name: "c", body: cm });
    expect(server.requests.map((r) => [r.verb, r.resource, r.name, r.status])).toEqual([
      ["get", "configmaps", "c", 200],
      ["update", "configmaps", "c", 500],
      ["update", "configmaps", "c", 200],
    ]);
  });

  it("finalizers – delete marks the object and the last finalizer removal deletes it", async () => {
    await core.createNamespacedConfigMap({
      namespace: "default",
      body: { metadata: { name: "f", finalizers: ["meshid.io/cleanup"] } },
    });
    await core.deleteNamespacedConfigMap({ namespace: "default", name: "f" });
    const marked = server.get({ kind: "ConfigMap", name: "f" });
    expect(marked?.metadata.deletionTimestamp).toBeDefined();
    await core.patchNamespacedConfigMap({
      namespace: "default",
      name: "f",
      body: [{ op: "remove", path: "/metadata/finalizers" }],
    });
    expect(server.get({ kind: "ConfigMap", name: "f" })).toBeUndefined();
  });
});
