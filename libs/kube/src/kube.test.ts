import { CoreV1Api } from "@kubernetes/client-node";
import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import {
  KubeApiError,
  isKubeConflict,
  isKubeGone,
  isKubeNotFound,
  kubeStatusCode,
} from "./api-errors";
import { createKubeClient, type KubeClient } from "./client";
import { CLUSTER_EVENTS_NAMESPACE, recordKubeEvent } from "./events";

let kube: KubeApiServer;
// client-node reads back what our client wrote: an independent check of the wire format.
let core: CoreV1Api;
let client: KubeClient;

beforeAll(async () => {
  kube = await startKubeApiServer();
  core = kube.kubeConfig().makeApiClient(CoreV1Api);
  client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
});
afterAll(async () => {
  await kube.stop();
});

describe("recordKubeEvent", () => {
  it("records a Warning on a namespaced object in its namespace", async () => {
    kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    const name = await recordKubeEvent(client, {
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
    const name = await recordKubeEvent(client, {
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
    const notFound = await client
      .request({ path: "/api/v1/namespaces/default/configmaps/missing" })
      .catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(KubeApiError);
    expect((notFound as KubeApiError).reason).toBe("NotFound");
    expect(kubeStatusCode(notFound)).toBe(404);
    expect(isKubeNotFound(notFound)).toBe(true);
    expect(isKubeConflict(notFound)).toBe(false);

    const body = { metadata: { name: "twice", namespace: "default" }, data: { a: "1" } };
    const path = "/api/v1/namespaces/default/configmaps";
    await client.request({ method: "POST", path, body });
    const conflict = await client.request({ method: "POST", path, body }).catch((e: unknown) => e);
    expect(isKubeConflict(conflict)).toBe(true);
  });

  it("reads client-node's codes, statusCode from watch errors, and ignores non-API errors", async () => {
    const fromClientNode = await core
      .readNamespacedConfigMap({ name: "missing", namespace: "default" })
      .catch((e: unknown) => e);
    expect(isKubeNotFound(fromClientNode)).toBe(true);
    expect(isKubeGone({ statusCode: 410 })).toBe(true);
    expect(kubeStatusCode(new Error("boom"))).toBeUndefined();
    expect(kubeStatusCode(Object.assign(new Error("x"), { code: "ECONNREFUSED" }))).toBeUndefined();
    expect(kubeStatusCode(null)).toBeUndefined();
  });
});
