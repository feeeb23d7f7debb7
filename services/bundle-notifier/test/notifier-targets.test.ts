// createTargets: the targets' public `kubeconfigFile` settings feed @meshid/kube's client, which
// reaches the Kubernetes API server stand-in; without a kubeconfig outside a pod it fails early.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { KubeConfigError, type KubeConfigMap } from "@meshid/kube";
import { createMemoryLogger } from "@meshid/telemetry";
import {
  createTempDir,
  startKubeApiServer,
  type KubeApiServer,
  type TempDir,
} from "@meshid/testkit";
import { buildBundleNotifierConfig } from "../src/config";
import type { NotifierBundle } from "../src/domain/bundle";
import { caBundleFromPem } from "../src/domain/ca-bundle-field";
import { CONFIGMAP_PEM_KEY } from "../src/domain/configmap-content";
import { createTargets } from "../src/notifier";

const bundle: NotifierBundle = {
  trustDomain: "example.org",
  sequenceNumber: 3,
  pem: "-----BEGIN CERTIFICATE-----\nroot-3\n-----END CERTIFICATE-----\n",
  spiffeJwks: "{}",
};

interface Hooks {
  webhooks?: { clientConfig?: { caBundle?: string } }[];
}

describe("notifier targets", () => {
  let kube: KubeApiServer;
  let dir: TempDir;
  const signal = new AbortController().signal;
  const logger = createMemoryLogger().logger;

  beforeAll(async () => {
    dir = await createTempDir("bn-targets");
    kube = await startKubeApiServer({
      objects: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "ops" } },
        {
          apiVersion: "admissionregistration.k8s.io/v1",
          kind: "MutatingWebhookConfiguration",
          metadata: { name: "meshid-inject", labels: { "meshid.io/webhook": "true" } },
          webhooks: [
            {
              name: "inject.meshid.io",
              clientConfig: { service: { namespace: "ops", name: "inject" }, caBundle: "b2xk" },
              admissionReviewVersions: ["v1"],
              sideEffects: "None",
            },
          ],
        },
      ],
    });
  });
  afterAll(async () => {
    await kube?.stop();
    await dir?.cleanup();
  });

  const config = (targets: Parameters<typeof buildBundleNotifierConfig>[0]["targets"]) =>
    buildBundleNotifierConfig({
      trustDomain: "example.org",
      ca: { adminSocketPath: join(dir.path, "no-ca.sock") },
      targets,
    });

  it("notifier targets – the ConfigMap and webhook targets reach the API server named by their kubeconfigFile", async () => {
    const kubeconfigFile = join(dir.path, "kubeconfig.yaml");
    await writeFile(kubeconfigFile, kube.kubeConfigYaml(), { mode: 0o600 });
    const built = createTargets(
      config({
        configMap: { enabled: true, namespace: "ops", name: "trust", kubeconfigFile },
        webhooks: { enabled: true, kubeconfigFile },
      }),
      logger,
      undefined,
    );
    try {
      expect(built.targets.map((t) => t.name)).toEqual(["configmap/ops/trust", "webhooks"]);
      kube.clearRequests();
      const writes = await Promise.all(built.targets.map((t) => t.apply(bundle, signal)));
      expect(writes.flat().map((w) => w.target)).toEqual([
        "configmap/ops/trust",
        "webhook/mutating/meshid-inject",
      ]);
    } finally {
      built.close();
    }
    const cm = kube.get<KubeConfigMap>({ kind: "ConfigMap", namespace: "ops", name: "trust" });
    expect(cm?.data?.[CONFIGMAP_PEM_KEY]).toBe(bundle.pem);
    const hooks = kube.get<Hooks>({ kind: "MutatingWebhookConfiguration", name: "meshid-inject" });
    expect(hooks?.webhooks?.map((w) => w.clientConfig?.caBundle)).toEqual([
      caBundleFromPem(bundle.pem),
    ]);
    // Only labelled objects are listed: the selector travels as the API's query parameter.
    const lists = kube.requests.filter((r) => r.verb === "list");
    expect(lists.map((r) => [r.resource, r.query.labelSelector]).sort()).toEqual([
      ["apiservices", "meshid.io/apiservice=true"],
      ["mutatingwebhookconfigurations", "meshid.io/webhook=true"],
      ["validatingwebhookconfigurations", "meshid.io/webhook=true"],
    ]);
  });

  it("notifier targets – a missing kubeconfig file, or none outside a pod, is a KubeConfigError at once", () => {
    expect(() =>
      createTargets(
        config({ webhooks: { enabled: true, kubeconfigFile: join(dir.path, "missing.yaml") } }),
        logger,
        undefined,
      ),
    ).toThrow(KubeConfigError);
    const host = process.env.KUBERNETES_SERVICE_HOST;
    delete process.env.KUBERNETES_SERVICE_HOST;
    try {
      expect(() =>
        createTargets(
          config({ configMap: { enabled: true, namespace: "ops", name: "trust" } }),
          logger,
          undefined,
        ),
      ).toThrow(/KUBERNETES_SERVICE_HOST is unset/);
    } finally {
      if (host !== undefined) process.env.KUBERNETES_SERVICE_HOST = host;
    }
  });

  it("notifier targets – the file target alone needs no Kubernetes at all", () => {
    const built = createTargets(
      config({ file: { path: join(dir.path, "bundle.pem") } }),
      logger,
      undefined,
    );
    expect(built.targets.map((t) => t.name)).toEqual([`file:${join(dir.path, "bundle.pem")}`]);
    built.close();
  });
});
