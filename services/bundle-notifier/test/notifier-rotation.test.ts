// Whole notifier in-process against the real CA process, a real nats-server and the Kubernetes
// API server stand-in: a rotation forced through the CA's AuthorityService reaches the
// ConfigMap, the labelled webhook configurations, the APIService and the file target.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createKubeClient, type KubeClient, type KubeConfigMap } from "@meshid/kube";
import { createMemoryLogger } from "@meshid/telemetry";
import {
  createTempDir,
  startKubeApiServer,
  startMeshidCa,
  startNatsServer,
  type KubeApiServer,
  type KubeObject,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import type { NatsConnection } from "nats";
import { buildBundleNotifierConfig } from "../src/config";
import { caBundleFromPem } from "../src/domain/ca-bundle-field";
import {
  BUNDLE_SEQUENCE_ANNOTATION,
  CONFIGMAP_PEM_KEY,
  CONFIGMAP_SPIFFE_KEY,
} from "../src/domain/configmap-content";
import { startBundleNotifier, type RunningBundleNotifier } from "../src/notifier";
import { collectBundlePublished, pemCertificates, waitFor } from "./notifier-harness";

jest.setTimeout(120_000);

const CONFIGMAP_TARGET = "configmap/meshid/meshid-bundle";
const UNTOUCHED = Buffer.from("not ours").toString("base64");

function webhookConfig(
  kind: "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration",
  name: string,
  labels: Record<string, string>,
): KubeObject {
  return {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind,
    metadata: { name, labels },
    webhooks: ["a", "b"].map((n) => ({
      name: `${n}.${name}.meshid.io`,
      clientConfig: { service: { namespace: "meshid", name }, caBundle: UNTOUCHED },
      admissionReviewVersions: ["v1"],
      sideEffects: "None",
    })),
  };
}

interface Hooks {
  webhooks?: { clientConfig?: { caBundle?: string } }[];
  spec?: { caBundle?: string };
}

describe("bundle-notifier rotation", () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let ca: MeshidCaProcess;
  let kube: KubeApiServer;
  let kubeClient: KubeClient;
  let dir: TempDir;
  let notifier: RunningBundleNotifier | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await nats.connect();
    ca = await startMeshidCa({ natsUrl: nats.url });
    dir = await createTempDir("bn-rotation");
    kube = await startKubeApiServer({
      objects: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } },
        webhookConfig("ValidatingWebhookConfiguration", "meshid-validate", {
          "meshid.io/webhook": "true",
        }),
        webhookConfig("MutatingWebhookConfiguration", "meshid-inject", {
          "meshid.io/webhook": "true",
        }),
        webhookConfig("ValidatingWebhookConfiguration", "unlabelled", { app: "other" }),
        {
          apiVersion: "apiregistration.k8s.io/v1",
          kind: "APIService",
          metadata: {
            name: "v1alpha1.metrics.meshid.io",
            labels: { "meshid.io/apiservice": "true" },
          },
          spec: {
            group: "metrics.meshid.io",
            version: "v1alpha1",
            service: { namespace: "meshid", name: "metrics" },
            groupPriorityMinimum: 100,
            versionPriority: 10,
          },
        },
      ],
    });
    kubeClient = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
  });

  afterAll(async () => {
    await notifier?.stop();
    kubeClient?.close();
    await kube?.stop();
    await ca?.stop();
    await nats?.stop();
    await dir?.cleanup();
  });

  const configMap = () =>
    kube.get<KubeConfigMap>({ kind: "ConfigMap", namespace: "meshid", name: "meshid-bundle" });
  const hookBundles = (kind: string, name: string) =>
    kube.get<Hooks>({ kind, name })?.webhooks?.map((w) => w.clientConfig?.caBundle);

  it("bundle-notifier rotation – creates the ConfigMap, patches labelled caBundles and writes the file; a forced rotation puts old and new roots everywhere; a conflicting write is retried", async () => {
    const published = collectBundlePublished(nc);
    const bundleFile = join(dir.path, "out", "bundle.pem");
    const config = buildBundleNotifierConfig({
      trustDomain: ca.trustDomain,
      ca: { adminSocketPath: ca.adminSocketPath, retryInitialDelay: "100ms", retryMaxDelay: "2s" },
      natsUrl: nats.url,
      targets: {
        configMap: { enabled: true },
        webhooks: { enabled: true },
        file: { path: bundleFile },
      },
      resyncInterval: "1s",
    });
    notifier = await startBundleNotifier({
      config,
      logger: createMemoryLogger().logger,
      kubeClient,
    });
    const n = notifier;
    await waitFor("the notifier ready", () => n.ready());

    // Start state: one root everywhere.
    const before = await ca.bundlePem();
    expect(pemCertificates(before)).toHaveLength(1);
    const cm = configMap();
    expect(cm?.data?.[CONFIGMAP_PEM_KEY]).toBe(before);
    const jwks = JSON.parse(cm?.data?.[CONFIGMAP_SPIFFE_KEY] ?? "{}") as { keys?: unknown[] };
    expect(jwks.keys).toHaveLength(1);
    const firstSequence = n.status().sequenceNumber ?? 0;
    expect(cm?.metadata?.annotations?.[BUNDLE_SEQUENCE_ANNOTATION]).toBe(String(firstSequence));
    expect(await readFile(bundleFile, "utf8")).toBe(before);
    await waitFor("bundle.published for the ConfigMap", () =>
      published.events.some((e) => e.target === CONFIGMAP_TARGET),
    );

    // Someone else edits the ConfigMap, and our next update meets a 409 once.
    kube.apply({
      ...(cm as unknown as KubeObject),
      data: { ...cm?.data, "operator-note": "keep me" },
    });
    kube.failNext({ verb: "update", resource: "configmaps", name: "meshid-bundle", status: 409 });
    kube.clearRequests();

    // Forced rotation: prepare publishes the next root in the bundle; activate switches signing.
    const admin = ca.admin();
    const rotationStart = Date.now();
    const prepared = await admin.authorities.prepareX509Authority({});
    const after = await ca.bundlePem();
    expect(pemCertificates(after)).toHaveLength(2);
    const event = await waitFor("bundle.published of the rotated bundle for the ConfigMap", () =>
      published.events.find(
        (e) => e.target === CONFIGMAP_TARGET && e.sequenceNumber > firstSequence,
      ),
    );
    const rotationMs = event.receivedAt - rotationStart;
    // Measured, not asserted (no timing asserts in tests); the target is < 1 s.
    process.stdout.write(`bundle-notifier: prepare → ConfigMap written: ${rotationMs} ms\n`);

    const rotated = configMap();
    expect(pemCertificates(rotated?.data?.[CONFIGMAP_PEM_KEY] ?? "").sort()).toEqual(
      pemCertificates(after).sort(),
    );
    expect(pemCertificates(rotated?.data?.[CONFIGMAP_PEM_KEY] ?? "")).toEqual(
      expect.arrayContaining(pemCertificates(before)),
    );
    expect(rotated?.data?.["operator-note"]).toBe("keep me");
    expect(
      (JSON.parse(rotated?.data?.[CONFIGMAP_SPIFFE_KEY] ?? "{}") as { keys?: unknown[] }).keys,
    ).toHaveLength(2);
    const updates = kube.requests.filter((r) => r.verb === "update" && r.resource === "configmaps");
    expect(updates.map((r) => r.status)).toEqual([409, 200]);

    const ca64 = caBundleFromPem(after);
    await waitFor(
      "labelled caBundles rotated",
      () =>
        hookBundles("ValidatingWebhookConfiguration", "meshid-validate")?.every(
          (b) => b === ca64,
        ) &&
        hookBundles("MutatingWebhookConfiguration", "meshid-inject")?.every((b) => b === ca64) &&
        kube.get<Hooks>({ kind: "APIService", name: "v1alpha1.metrics.meshid.io" })?.spec
          ?.caBundle === ca64,
    );
    expect(hookBundles("ValidatingWebhookConfiguration", "unlabelled")).toEqual([
      UNTOUCHED,
      UNTOUCHED,
    ]);
    expect(kube.requests.filter((r) => r.name === "unlabelled")).toEqual([]);
    await waitFor("the file rotated", async () => (await readFile(bundleFile, "utf8")) === after);
    for (const target of [
      "webhook/validating/meshid-validate",
      "webhook/mutating/meshid-inject",
      "apiservice/v1alpha1.metrics.meshid.io",
      `file:${bundleFile}`,
    ]) {
      await waitFor(`bundle.published for ${target}`, () =>
        published.events.some((e) => e.target === target && e.sequenceNumber > firstSequence),
      );
    }

    // Activation keeps both roots in the bundle: the ConfigMap still holds old and new.
    await admin.authorities.activateX509Authority({ authorityId: prepared.authorityId });
    const activated = await ca.bundlePem();
    await waitFor("the ConfigMap after activation", () =>
      configMap()?.data?.[CONFIGMAP_PEM_KEY] === activated ? true : undefined,
    );
    expect(pemCertificates(activated)).toHaveLength(2);

    // Resyncs (every second) write nothing while nothing changes.
    kube.clearRequests();
    const resyncsBefore = kube.requests.length;
    await waitFor(
      "two resyncs",
      () =>
        kube.requests.filter((r) => r.verb === "get" && r.resource === "configmaps").length >= 2,
    );
    expect(kube.requests.slice(resyncsBefore).filter((r) => r.verb === "update")).toEqual([]);
    await published.close();
  });

  it("bundle-notifier rotation – a labelled webhook created later gets the bundle at the next resync, without a rotation", async () => {
    const n = notifier;
    if (n === undefined) throw new Error("the first test starts the notifier");
    const current = await ca.bundlePem();
    kube.apply(
      webhookConfig("ValidatingWebhookConfiguration", "late-comer", {
        "meshid.io/webhook": "true",
      }),
    );
    const expected = caBundleFromPem(current);
    await waitFor("the late webhook patched", () =>
      hookBundles("ValidatingWebhookConfiguration", "late-comer")?.every((b) => b === expected),
    );
    expect(n.status().targets.every((t) => t.ready)).toBe(true);
  });

  it("bundle-notifier rotation – a deleted ConfigMap is created again at the next resync", async () => {
    kube.delete({ kind: "ConfigMap", namespace: "meshid", name: "meshid-bundle" });
    const current = await ca.bundlePem();
    await waitFor("the ConfigMap back", () => configMap()?.data?.[CONFIGMAP_PEM_KEY] === current);
  });
});
