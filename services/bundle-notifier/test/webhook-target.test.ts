// The webhook / APIService caBundle target against the Kubernetes API server stand-in.
import { createKubeClient, type KubeClient } from "@meshid/kube";
import { createMemoryLogger } from "@meshid/telemetry";
import { startKubeApiServer, type KubeApiServer, type KubeObject } from "@meshid/testkit";
import { createWebhookTarget } from "../src/adapters/webhook-target";
import type { NotifierBundle } from "../src/domain/bundle";
import { caBundleFromPem } from "../src/domain/ca-bundle-field";
import { PartialTargetFailure } from "../src/domain/partial-target-failure";

function bundle(sequenceNumber: number): NotifierBundle {
  return {
    trustDomain: "example.org",
    sequenceNumber,
    pem: `-----BEGIN CERTIFICATE-----\nroot-${sequenceNumber}\n-----END CERTIFICATE-----\n`,
    spiffeJwks: "{}",
  };
}

const OLD_CA_BUNDLE = Buffer.from("old").toString("base64");

function webhookConfig(
  kind: "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
  name: string,
  labels: Record<string, string>,
  entries = 2,
): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind,
    metadata: { name, labels },
    webhooks: Array.from({ length: entries }, (_, i) => ({
      name: `hook-${i}.${name}.meshid.io`,
      clientConfig: {
        service: { namespace: "meshid", name: "hooks", path: `/h${i}` },
        caBundle: OLD_CA_BUNDLE,
      },
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
    })),
  };
}

function apiService(name: string, labels: Record<string, string>, insecure = false): KubeObject {
  return {
    apiVersion: "apiregistration.k8s.io/v1",
    kind: "APIService",
    metadata: { name, labels },
    spec: {
      group: name.split(".").slice(1).join("."),
      version: name.split(".")[0] ?? "v1",
      service: { namespace: "meshid", name: "api" },
      groupPriorityMinimum: 100,
      versionPriority: 10,
      ...(insecure ? { insecureSkipTLSVerify: true } : { caBundle: OLD_CA_BUNDLE }),
    },
  };
}

interface HookObject {
  webhooks?: { clientConfig?: { caBundle?: string } }[];
  spec?: { caBundle?: string };
}

describe("webhook target", () => {
  let kube: KubeApiServer;
  let client: KubeClient;
  const signal = new AbortController().signal;
  const logger = createMemoryLogger().logger;
  const labelled = { "meshid.io/webhook": "true" };

  beforeEach(async () => {
    kube = await startKubeApiServer({
      objects: [
        webhookConfig("ValidatingWebhookConfiguration", "meshid-validate", labelled),
        webhookConfig("MutatingWebhookConfiguration", "meshid-inject", labelled, 1),
        webhookConfig("ValidatingWebhookConfiguration", "someone-else", { app: "other" }),
        webhookConfig("MutatingWebhookConfiguration", "label-false", {
          "meshid.io/webhook": "false",
        }),
        apiService("v1alpha1.metrics.meshid.io", { "meshid.io/apiservice": "true" }),
        apiService("v1.other.example.com", {}),
        apiService("v1beta1.insecure.meshid.io", { "meshid.io/apiservice": "true" }, true),
      ],
    });
    client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
  });
  afterEach(async () => {
    client.close();
    await kube.stop();
  });

  const get = (kind: string, name: string) => kube.get<HookObject>({ kind, name });
  const hookBundles = (kind: string, name: string) =>
    get(kind, name)?.webhooks?.map((w) => w.clientConfig?.caBundle);

  it("webhook target – labelled webhooks (every entry) and APIServices get the bundle; unlabelled ones are untouched", async () => {
    const target = createWebhookTarget({ client, logger });
    const writes = await target.apply(bundle(1), signal);
    expect(writes.map((w) => w.target).sort()).toEqual([
      "apiservice/v1alpha1.metrics.meshid.io",
      "webhook/mutating/meshid-inject",
      "webhook/validating/meshid-validate",
    ]);
    const ca = caBundleFromPem(bundle(1).pem);
    expect(hookBundles("ValidatingWebhookConfiguration", "meshid-validate")).toEqual([ca, ca]);
    expect(hookBundles("MutatingWebhookConfiguration", "meshid-inject")).toEqual([ca]);
    expect(get("APIService", "v1alpha1.metrics.meshid.io")?.spec?.caBundle).toBe(ca);
    expect(hookBundles("ValidatingWebhookConfiguration", "someone-else")).toEqual([
      OLD_CA_BUNDLE,
      OLD_CA_BUNDLE,
    ]);
    expect(hookBundles("MutatingWebhookConfiguration", "label-false")).toEqual([
      OLD_CA_BUNDLE,
      OLD_CA_BUNDLE,
    ]);
    expect(get("APIService", "v1.other.example.com")?.spec?.caBundle).toBe(OLD_CA_BUNDLE);
    expect(get("APIService", "v1beta1.insecure.meshid.io")?.spec?.caBundle).toBeUndefined();
    const touched = kube.requests.filter((r) => r.verb === "update").map((r) => r.name);
    expect(touched.sort()).toEqual([
      "meshid-inject",
      "meshid-validate",
      "v1alpha1.metrics.meshid.io",
    ]);
  });

  it("webhook target – nothing is written when every caBundle is current; a new labelled webhook gets it at the next apply", async () => {
    const target = createWebhookTarget({ client, logger });
    await target.apply(bundle(1), signal);
    kube.clearRequests();
    expect(await target.apply(bundle(1), signal)).toEqual([]);
    expect(kube.requests.filter((r) => r.verb === "update")).toEqual([]);
    kube.apply(webhookConfig("ValidatingWebhookConfiguration", "late-comer", labelled));
    expect(await target.apply(bundle(1), signal)).toEqual([
      { target: "webhook/validating/late-comer" },
    ]);
  });

  it("webhook target – a 409 is retried after reading the object again; its other changes are kept", async () => {
    const target = createWebhookTarget({ client, logger });
    // Another controller adds a webhook entry just before our write.
    const theirs = webhookConfig("ValidatingWebhookConfiguration", "meshid-validate", labelled, 3);
    kube.apply(theirs);
    kube.failNext({
      verb: "update",
      resource: "validatingwebhookconfigurations",
      name: "meshid-validate",
      status: 409,
    });
    const writes = await target.apply(bundle(2), signal);
    expect(writes.map((w) => w.target)).toContain("webhook/validating/meshid-validate");
    const ca = caBundleFromPem(bundle(2).pem);
    expect(hookBundles("ValidatingWebhookConfiguration", "meshid-validate")).toEqual([ca, ca, ca]);
    const statuses = kube.requests
      .filter((r) => r.verb === "update" && r.name === "meshid-validate")
      .map((r) => r.status);
    expect(statuses).toEqual([409, 200]);
  });

  it("webhook target – a failing list is an error carrying what the other kinds wrote", async () => {
    const target = createWebhookTarget({ client, logger });
    kube.failNext({ verb: "list", resource: "apiservices", status: 503 });
    const err: unknown = await target.apply(bundle(3), signal).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PartialTargetFailure);
    expect((err as Error).message).toMatch(/list apiservice failed: HTTP 503/);
    expect((err as PartialTargetFailure).writes.map((w) => w.target).sort()).toEqual([
      "webhook/mutating/meshid-inject",
      "webhook/validating/meshid-validate",
    ]);
    const ca = caBundleFromPem(bundle(3).pem);
    expect(hookBundles("MutatingWebhookConfiguration", "meshid-inject")).toEqual([ca]);
    expect(await target.apply(bundle(3), signal)).toEqual([
      { target: "apiservice/v1alpha1.metrics.meshid.io" },
    ]);
  });
});
