// proxy-config in Kubernetes mode against the API server stand-in: the MeshConfig resource as
// the store (created with defaults, kubectl edits honoured, invalid edits reported), pod
// annotations (effective mode, Events once per pod and value) and pod-spec ports.
import { CustomObjectsApi } from "@kubernetes/client-node";
import { isMeshidError } from "@meshid/errors";
import { createKubeClient } from "@meshid/kube";
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import {
  createTestCa,
  startKubeApiServer,
  type KubeApiServer,
  type KubeObject,
  type TestCa,
} from "@meshid/testkit";
import { MESH_CONFIG_INVALID_REASON } from "../src/adapters/kube-mesh-config-store";
import {
  ANNOTATION_IGNORED_REASON,
  ANNOTATION_INVALID_REASON,
  MTLS_MODE_ANNOTATION,
} from "../src/domain/effective-mode";
import {
  proxyConfigRequest,
  startProxyConfigHarness,
  type ProxyConfigHarness,
} from "./fixtures/proxy-config-harness";
import { readStream, waitFor } from "./fixtures/wait";

jest.setTimeout(120_000);

const REF = { group: "meshid.io", version: "v1alpha1", plural: "meshconfigs", name: "meshid" };

function pod(
  name: string,
  annotation: string | undefined,
  labels: Record<string, string> = {},
): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "apps",
      uid: `uid-${name}`,
      labels,
      ...(annotation === undefined ? {} : { annotations: { [MTLS_MODE_ANNOTATION]: annotation } }),
    },
    spec: {
      containers: [
        {
          name: "app",
          ports: [
            { name: "http-web", containerPort: 8080 },
            { name: "db", containerPort: 5432 },
          ],
        },
        {
          name: "meshid-sidecar",
          ports: [
            { name: "http-web", containerPort: 18080 },
            { name: "db", containerPort: 15432 },
          ],
        },
      ],
    },
    status: { phase: "Running" },
  };
}

describe("kube", () => {
  let ca: TestCa;
  let kube: KubeApiServer;
  let h: ProxyConfigHarness;
  let custom: CustomObjectsApi;

  const eventsFor = (name: string, reason: string): KubeObject[] =>
    kube.events().filter((e) => {
      const ev = e as KubeObject & { involvedObject?: { name?: string }; reason?: string };
      return ev.involvedObject?.name === name && ev.reason === reason;
    });

  /** Replaces the resource's spec through the API, as `kubectl edit` does. */
  const editSpec = async (change: Record<string, string>): Promise<void> => {
    const current = (await custom.getClusterCustomObject(REF)) as {
      spec: Record<string, string>;
    };
    await custom.replaceClusterCustomObject({
      ...REF,
      body: { ...current, spec: { ...current.spec, ...change } },
    });
  };

  beforeAll(async () => {
    ca = await createTestCa();
    kube = await startKubeApiServer();
    kube.apply(pod("annotated-off", "off"));
    custom = kube.kubeConfig().makeApiClient(CustomObjectsApi);
    h = await startProxyConfigHarness({ ca, kubeconfigYaml: kube.kubeConfigYaml() });
  });

  afterAll(async () => {
    await h?.stop();
    await kube?.stop();
  });

  it("kube – a kubeconfig that cannot be used fails the start with proxy_config.kube.config", async () => {
    const err: unknown = await startProxyConfigHarness({
      ca,
      kubeconfigYaml: "current-context: nowhere\n",
    }).catch((e: unknown) => e);
    expect(isMeshidError(err, "proxy_config.kube.config")).toBe(true);
    expect((err as Error).message).toMatch(/no context named "nowhere"/);
  });

  it("kube – the MeshConfig resource is created with the defaults and is what Get reports", async () => {
    const resource = kube.get<{ spec: Record<string, string>; metadata: { generation: number } }>({
      kind: "MeshConfig",
      name: "meshid",
    });
    expect(resource?.spec).toEqual({
      mtlsMode: "permissive",
      caTTL: "720h",
      svidTTL: "1h",
      caKeyType: "ec-p256",
    });
    const { config } = await h.workload.meshConfig.getMeshConfig({});
    expect(config?.generation).toBe(resource?.metadata.generation);
    // Ready only once the pod informer has listed: renderings then know the annotations.
    expect(h.service.ready()).toBe(true);
  });

  it("kube – a valid annotation sets the pod's mode; its container ports become inbound ports", async () => {
    await waitFor("pod seen", async () => {
      const res = await h.workload.proxyConfig.getProxyConfig({
        ...proxyConfigRequest("apps", "annotated-off"),
        inbound: [],
      });
      return res.effectiveMode === pb.MtlsMode.MTLS_MODE_OFF ? res : undefined;
    }).then((res) => {
      expect(res.modeSource).toBe("annotation");
      // http-web → HTTP server on 18080 to the app's 8080; db → stream server 15432 → 5432.
      expect(res.nginxConf).toMatch(
        /server \{\n\s+listen 18080;\n\s+location \/ \{\n\s+proxy_pass http:\/\/127\.0\.0\.1:8080;/,
      );
      expect(res.nginxConf).toMatch(/listen 15432;\n\s+proxy_pass 127\.0\.0\.1:5432;/);
    });
  });

  it("kube – an invalid annotation is ignored and reported once per pod and value", async () => {
    kube.apply(pod("bogus", "sometimes"));
    await waitFor("invalid-annotation Event", () =>
      eventsFor("bogus", ANNOTATION_INVALID_REASON).length === 1 ? true : undefined,
    );
    const res = await h.workload.proxyConfig.getProxyConfig(proxyConfigRequest("apps", "bogus"));
    expect(res).toMatchObject({
      effectiveMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
      modeSource: "global",
    });
    // The pod changes (a label), the annotation does not: no second Event. A later pod whose
    // Event shows proves the informer got past the relabel.
    kube.apply(pod("bogus", "sometimes", { touched: "yes" }));
    kube.apply(pod("bogus-later", "never"));
    await waitFor("the later pod's Event", () =>
      eventsFor("bogus-later", ANNOTATION_INVALID_REASON).length === 1 ? true : undefined,
    );
    expect(eventsFor("bogus", ANNOTATION_INVALID_REASON)).toHaveLength(1);
    const event = eventsFor("bogus", ANNOTATION_INVALID_REASON)[0] as KubeObject & {
      type?: string;
      message?: string;
    };
    expect(event.type).toBe("Warning");
    expect(event.message).toMatch(/must be off, permissive or strict \(got "sometimes"\)/);
  });

  it("kube – an annotation change re-renders the pod's Watch stream", async () => {
    kube.apply(pod("watched", "permissive"));
    const controller = new AbortController();
    const request = proxyConfigRequest("apps", "watched");
    await waitFor("pod seen", async () => {
      const res = await h.workload.proxyConfig.getProxyConfig(request);
      return res.modeSource === "annotation" ? true : undefined;
    });
    const stream = readStream(
      h.workload.proxyConfig.watchProxyConfig(request, { signal: controller.signal }),
    );
    try {
      expect((await stream.next()).effectiveMode).toBe(pb.MtlsMode.MTLS_MODE_PERMISSIVE);
      kube.apply(pod("watched", "strict"));
      const next = await stream.next();
      expect(next).toMatchObject({
        effectiveMode: pb.MtlsMode.MTLS_MODE_STRICT,
        modeSource: "annotation",
      });
    } finally {
      controller.abort();
    }
  });

  it("kube – global strict overrides a permissive annotation and records an Event", async () => {
    kube.apply(pod("wants-permissive", "permissive"));
    await waitFor("pod seen", async () => {
      const res = await h.workload.proxyConfig.getProxyConfig(
        proxyConfigRequest("apps", "wants-permissive"),
      );
      return res.modeSource === "annotation" ? true : undefined;
    });
    expect(eventsFor("wants-permissive", ANNOTATION_IGNORED_REASON)).toHaveLength(0);
    const res = await h.admin.meshConfig.updateMeshConfig({
      mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT,
      rotateNow: false,
    });
    expect(res.config?.mtlsMode).toBe(pb.MtlsMode.MTLS_MODE_STRICT);
    const got = await h.workload.proxyConfig.getProxyConfig(
      proxyConfigRequest("apps", "wants-permissive"),
    );
    expect(got).toMatchObject({
      effectiveMode: pb.MtlsMode.MTLS_MODE_STRICT,
      modeSource: "global strict overrides annotation",
    });
    await waitFor("ignored-annotation Event", () =>
      eventsFor("wants-permissive", ANNOTATION_IGNORED_REASON).length === 1 ? true : undefined,
    );
    // The stored resource carries the change.
    expect(
      kube.get<{ spec: { mtlsMode: string } }>({ kind: "MeshConfig", name: "meshid" })?.spec
        .mtlsMode,
    ).toBe("strict");
  });

  it("kube – a kubectl edit is honoured; an invalid edit is reported on the resource and ignored", async () => {
    await editSpec({ mtlsMode: "off" });
    await waitFor("mode off from the resource", async () => {
      const { config } = await h.workload.meshConfig.getMeshConfig({});
      return config?.mtlsMode === pb.MtlsMode.MTLS_MODE_OFF ? true : undefined;
    });
    await editSpec({ caTTL: "1h" });
    await waitFor("MeshConfigInvalid Event", () =>
      eventsFor("meshid", MESH_CONFIG_INVALID_REASON).length > 0 ? true : undefined,
    );
    const event = eventsFor("meshid", MESH_CONFIG_INVALID_REASON)[0] as KubeObject & {
      message?: string;
    };
    expect(event.message).toMatch(/caTTL: must be at least 24h \(got "1h"\)/);
    const { config } = await h.workload.meshConfig.getMeshConfig({});
    expect(config).toMatchObject({ mtlsMode: pb.MtlsMode.MTLS_MODE_OFF, caTtl: "720h" });
    // An API update repairs the resource from the last valid config plus the change.
    const repaired = await h.admin.meshConfig.updateMeshConfig({ svidTtl: "2h", rotateNow: false });
    expect(repaired.config).toMatchObject({ caTtl: "720h", svidTtl: "2h" });
    expect(
      kube.get<{ spec: { caTTL: string } }>({ kind: "MeshConfig", name: "meshid" })?.spec.caTTL,
    ).toBe("720h");
  });

  it("kube – expected_generation follows the resource's metadata.generation", async () => {
    const generation = kube.get<{ metadata: { generation: number } }>({
      kind: "MeshConfig",
      name: "meshid",
    })?.metadata.generation;
    const { config } = await h.workload.meshConfig.getMeshConfig({});
    expect(config?.generation).toBe(generation);
    const res = await h.local.meshConfig.updateMeshConfig({
      mtlsMode: pb.MtlsMode.MTLS_MODE_PERMISSIVE,
      expectedGeneration: generation ?? 0,
      rotateNow: false,
    });
    expect(res.config?.generation).toBe((generation ?? 0) + 1);
  });

  it("kube – replicas share the resource: an update through one re-renders the other's Watch streams", async () => {
    // This replica gets its client injected; the first one built its own from the kubeconfig.
    const client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
    const other = await startProxyConfigHarness({ ca, kubeClient: client });
    const controller = new AbortController();
    try {
      const request = proxyConfigRequest("apps", "replica-pod");
      const stream = readStream(
        other.workload.proxyConfig.watchProxyConfig(request, { signal: controller.signal }),
      );
      const first = await stream.next();
      const target =
        first.effectiveMode === pb.MtlsMode.MTLS_MODE_STRICT
          ? pb.MtlsMode.MTLS_MODE_OFF
          : pb.MtlsMode.MTLS_MODE_STRICT;
      const res = await h.admin.meshConfig.updateMeshConfig({ mtlsMode: target, rotateNow: false });
      const next = await stream.next();
      expect(next.effectiveMode).toBe(target);
      expect(next.meshConfigGeneration).toBe(res.config?.generation);
      const seen = await other.workload.meshConfig.getMeshConfig({});
      expect(seen.config).toEqual(res.config);
    } finally {
      controller.abort();
      await other.stop();
      client.close();
    }
  });
});
