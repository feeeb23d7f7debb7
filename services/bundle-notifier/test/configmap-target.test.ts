// The ConfigMap target against the Kubernetes API server stand-in (real REST: 404, 409,
// resourceVersion) through @meshid/kube's client; the unmodified @kubernetes/client-node plays
// the other writer, so both wire formats meet on the same object.
import { CoreV1Api } from "@kubernetes/client-node";
import { isMeshidError } from "@meshid/errors";
import { createKubeClient, type KubeClient, type KubeConfigMap } from "@meshid/kube";
import { createMemoryLogger } from "@meshid/telemetry";
import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import { createConfigMapTarget } from "../src/adapters/configmap-target";
import { KUBE_REQUEST_FAILED_CODE } from "../src/adapters/kube-failure";
import type { NotifierBundle } from "../src/domain/bundle";
import {
  BUNDLE_SEQUENCE_ANNOTATION,
  CONFIGMAP_PEM_KEY,
  CONFIGMAP_SPIFFE_KEY,
} from "../src/domain/configmap-content";

function bundle(sequenceNumber: number): NotifierBundle {
  return {
    trustDomain: "example.org",
    sequenceNumber,
    pem: `-----BEGIN CERTIFICATE-----\nroot-${sequenceNumber}\n-----END CERTIFICATE-----\n`,
    spiffeJwks: JSON.stringify({ keys: [], spiffe_sequence: sequenceNumber }),
  };
}

describe("configmap target", () => {
  let kube: KubeApiServer;
  let client: KubeClient;
  const signal = new AbortController().signal;
  const logger = createMemoryLogger().logger;

  beforeEach(async () => {
    kube = await startKubeApiServer({
      objects: [{ apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } }],
    });
    client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
  });
  afterEach(async () => {
    client.close();
    await kube.stop();
  });

  const target = (name = "meshid-bundle") =>
    createConfigMapTarget({ client, namespace: "meshid", name, logger });
  const read = (name = "meshid-bundle") =>
    kube.get<KubeConfigMap>({ kind: "ConfigMap", namespace: "meshid", name });
  const writes = () =>
    kube.requests.filter(
      (r) => r.resource === "configmaps" && (r.verb === "create" || r.verb === "update"),
    );

  it("configmap target – creates the missing ConfigMap with both keys and the sequence annotation", async () => {
    expect(await target().apply(bundle(1), signal)).toEqual([
      { target: "configmap/meshid/meshid-bundle" },
    ]);
    const cm = read();
    expect(cm?.data).toEqual({
      [CONFIGMAP_PEM_KEY]: bundle(1).pem,
      [CONFIGMAP_SPIFFE_KEY]: bundle(1).spiffeJwks,
    });
    expect(cm?.metadata?.annotations?.[BUNDLE_SEQUENCE_ANNOTATION]).toBe("1");
    expect(cm?.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("meshid-bundle-notifier");
  });

  it("configmap target – writes nothing when the bundle is already there", async () => {
    await target().apply(bundle(1), signal);
    kube.clearRequests();
    expect(await target().apply(bundle(1), signal)).toEqual([]);
    expect(writes()).toEqual([]);
  });

  it("configmap target – an update keeps other keys, labels and annotations", async () => {
    kube.apply({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name: "meshid-bundle",
        namespace: "meshid",
        labels: { team: "platform" },
        annotations: { note: "keep" },
      },
      data: { "extra.txt": "hello", [CONFIGMAP_PEM_KEY]: "stale" },
    });
    await target().apply(bundle(4), signal);
    const cm = read();
    expect(cm?.data).toEqual({
      "extra.txt": "hello",
      [CONFIGMAP_PEM_KEY]: bundle(4).pem,
      [CONFIGMAP_SPIFFE_KEY]: bundle(4).spiffeJwks,
    });
    expect(cm?.metadata?.labels).toEqual({ team: "platform" });
    expect(cm?.metadata?.annotations).toEqual({
      note: "keep",
      [BUNDLE_SEQUENCE_ANNOTATION]: "4",
    });
  });

  it("configmap target – a 409 from a conflicting writer is retried after reading again", async () => {
    await target().apply(bundle(1), signal);
    // Someone else changes the ConfigMap, and our first update meets a conflict.
    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    const theirs = await core.readNamespacedConfigMap({
      name: "meshid-bundle",
      namespace: "meshid",
    });
    await core.replaceNamespacedConfigMap({
      name: "meshid-bundle",
      namespace: "meshid",
      body: { ...theirs, data: { ...theirs.data, "added-by-someone-else": "yes" } },
    });
    kube.failNext({ verb: "update", resource: "configmaps", status: 409 });
    kube.clearRequests();
    expect(await target().apply(bundle(2), signal)).toHaveLength(1);
    const updates = kube.requests.filter((r) => r.verb === "update");
    expect(updates.map((r) => r.status)).toEqual([409, 200]);
    expect(read()?.data).toMatchObject({
      "added-by-someone-else": "yes",
      [CONFIGMAP_PEM_KEY]: bundle(2).pem,
    });
  });

  it("configmap target – a create that meets 409 (another replica was first) reads again and decides again", async () => {
    kube.failNext({ verb: "create", resource: "configmaps", status: 409, reason: "AlreadyExists" });
    expect(await target().apply(bundle(1), signal)).toHaveLength(1);
    const creates = kube.requests.filter((r) => r.verb === "create" && r.resource === "configmaps");
    expect(creates.map((r) => r.status)).toEqual([409, 201]);
    expect(read()?.data?.[CONFIGMAP_PEM_KEY]).toBe(bundle(1).pem);
  });

  it("configmap target – two replicas converge on the newest bundle; the lagging one never overwrites it", async () => {
    const a = target();
    const b = target();
    const results = await Promise.all([
      a.apply(bundle(7), signal),
      b.apply(bundle(7), signal),
      a.apply(bundle(7), signal),
      b.apply(bundle(7), signal),
    ]);
    expect(results.flat()).toHaveLength(1);
    await a.apply(bundle(8), signal);
    expect(await b.apply(bundle(7), signal)).toEqual([]);
    expect(read()?.data?.[CONFIGMAP_PEM_KEY]).toBe(bundle(8).pem);
    expect(read()?.metadata?.annotations?.[BUNDLE_SEQUENCE_ANNOTATION]).toBe("8");
  });

  it("configmap target – a sequence that stays behind the ConfigMap's past the grace period (CA store reset) is written anyway", async () => {
    await target().apply(bundle(9), signal);
    let nowMs = 1_000_000;
    const reset = createConfigMapTarget({
      client,
      namespace: "meshid",
      name: "meshid-bundle",
      logger,
      sequenceRegressionGraceMs: 60_000,
      now: () => nowMs,
    });
    expect(await reset.apply(bundle(1), signal)).toEqual([]);
    nowMs += 59_999;
    expect(await reset.apply(bundle(1), signal)).toEqual([]);
    expect(read()?.data?.[CONFIGMAP_PEM_KEY]).toBe(bundle(9).pem);
    nowMs += 1;
    expect(await reset.apply(bundle(1), signal)).toHaveLength(1);
    expect(read()?.data?.[CONFIGMAP_PEM_KEY]).toBe(bundle(1).pem);
    expect(read()?.metadata?.annotations?.[BUNDLE_SEQUENCE_ANNOTATION]).toBe("1");
  });

  it("configmap target – conflicts on every attempt give up with a retryable error", async () => {
    await target().apply(bundle(1), signal);
    kube.failNext({ verb: "update", resource: "configmaps", status: 409, times: 100 });
    const failing = createConfigMapTarget({
      client,
      namespace: "meshid",
      name: "meshid-bundle",
      logger,
      maxConflictRetries: 2,
    });
    await expect(failing.apply(bundle(2), signal)).rejects.toMatchObject({
      code: "bundle_notifier.kube.conflicts_exhausted",
    });
    expect(kube.requests.filter((r) => r.verb === "update" && r.status === 409)).toHaveLength(3);
  });

  it("configmap target – a missing namespace or a failing API server is an error naming the call", async () => {
    const elsewhere = createConfigMapTarget({
      client,
      namespace: "nowhere",
      name: "meshid-bundle",
      logger,
    });
    const err: unknown = await elsewhere.apply(bundle(1), signal).catch((e: unknown) => e);
    expect(isMeshidError(err, KUBE_REQUEST_FAILED_CODE)).toBe(true);
    expect((err as Error).message).toMatch(
      /create configmap\/nowhere\/meshid-bundle failed: HTTP 404: namespaces "nowhere" not found/,
    );
    kube.failNext({ verb: "get", resource: "configmaps", status: 500 });
    await expect(target().apply(bundle(1), signal)).rejects.toThrow(
      /read configmap\/meshid\/meshid-bundle failed: HTTP 500/,
    );
  });
});
