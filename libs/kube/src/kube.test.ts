import { CoreV1Api } from "@kubernetes/client-node";
import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import { isKubeConflict, isKubeGone, isKubeNotFound, kubeStatusCode } from "./api-errors";
import { CLUSTER_EVENTS_NAMESPACE, recordKubeEvent } from "./events";

let kube: KubeApiServer;
let core: CoreV1Api;

beforeAll(async () => {
  kube = await startKubeApiServer();
  core = kube.kubeConfig().makeApiClient(CoreV1Api);
});
afterAll(async () => {
  await kube.stop();
});

describe("recordKubeEvent", () => {
  it("records a Warning on a namespaced object in its namespace", async () => {
    kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    const name = await recordKubeEvent(core, {
      involvedObject: { kind: "Pod", namespace: "apps", name: "web", uid: "u-1" },
      type: "Warning",
      reason: "MtlsModeIgnored",
      message: "global strict overrides the annotation",
      component: "meshid-proxy-config",
    });
    const event = await core.readNamespacedEvent({ name, namespace: "apps" });
    expect(event).toMatchObject({
      reason: "MtlsModeIgnored",
      type: "Warning",
      involvedObject: { kind: "Pod", name: "web", uid: "u-1" },
      source: { component: "meshid-proxy-config" },
    });
  });

  it("records Events about cluster-scoped objects in the default namespace", async () => {
    const name = await recordKubeEvent(core, {
      involvedObject: { kind: "ClusterSPIFFEID", name: "broken", apiVersion: "meshid.io/v1alpha1" },
      type: "Warning",
      reason: "TemplateRenderFailed",
      message: "unknown field",
      component: "meshid-registrar",
    });
    const event = await core.readNamespacedEvent({ name, namespace: CLUSTER_EVENTS_NAMESPACE });
    expect(event.involvedObject.name).toBe("broken");
  });
});

describe("API error classification", () => {
  it("classifies 404 and 409 responses", async () => {
    const notFound = await core
      .readNamespacedConfigMap({ name: "missing", namespace: "default" })
      .catch((e: unknown) => e);
    expect(kubeStatusCode(notFound)).toBe(404);
    expect(isKubeNotFound(notFound)).toBe(true);
    expect(isKubeConflict(notFound)).toBe(false);

    const body = { metadata: { name: "twice", namespace: "default" }, data: { a: "1" } };
    await core.createNamespacedConfigMap({ namespace: "default", body });
    const conflict = await core
      .createNamespacedConfigMap({ namespace: "default", body })
      .catch((e: unknown) => e);
    expect(isKubeConflict(conflict)).toBe(true);
  });

  it("reads statusCode from watch errors and ignores non-API errors", () => {
    expect(isKubeGone({ statusCode: 410 })).toBe(true);
    expect(kubeStatusCode(new Error("boom"))).toBeUndefined();
    expect(kubeStatusCode(null)).toBeUndefined();
  });
});
