// The pod directory and the pod Event recorder on @meshid/kube's client against the API server
// stand-in: failures are logged and retried until the first list, a gap in the watch (410,
// history compacted) is caught up by a re-list, Events land on the pod.
import { CoreV1Api } from "@kubernetes/client-node";
import { createKubeClient, type KubeClient } from "@meshid/kube";
import { createNoopLogger, type Logger } from "@meshid/telemetry";
import { startKubeApiServer, type KubeApiServer, type KubeObject } from "@meshid/testkit";
import {
  POD_WATCH_RETRY_INITIAL_MS,
  createKubePodEventRecorder,
  startKubePodDirectory,
  type KubePodDirectory,
} from "../src/adapters/kube-pods";
import { ANNOTATION_INVALID_REASON, MTLS_MODE_ANNOTATION } from "../src/domain/effective-mode";
import { waitFor } from "./fixtures/wait";

jest.setTimeout(60_000);

function pod(name: string, annotation?: string): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "apps",
      uid: `uid-${name}`,
      ...(annotation === undefined ? {} : { annotations: { [MTLS_MODE_ANNOTATION]: annotation } }),
    },
    spec: { containers: [{ name: "app", ports: [{ name: "http", containerPort: 8080 }] }] },
  };
}

/** A logger keeping its warn lines (fields and message). */
function recordingLogger(): Logger & { warnings: { fields: object; msg?: string }[] } {
  const warnings: { fields: object; msg?: string }[] = [];
  const base = createNoopLogger();
  const logger = {
    ...base,
    warnings,
    warn: (obj: object | string, msg?: string) => {
      warnings.push(typeof obj === "string" ? { fields: {}, msg: obj } : { fields: obj, msg });
    },
    child: () => logger,
  };
  return logger;
}

describe("kube pods", () => {
  let kube: KubeApiServer;
  let client: KubeClient;
  let directory: KubePodDirectory | undefined;

  beforeEach(async () => {
    kube = await startKubeApiServer();
    kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "apps" } });
    client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
  });
  afterEach(async () => {
    await directory?.stop();
    directory = undefined;
    client.close();
    await kube.stop();
  });

  it("kube pods – a failing pod list is logged with its retry delay and retried until the directory syncs", async () => {
    kube.apply(pod("early", "strict"));
    kube.failNext({ verb: "list", resource: "pods", status: 500, times: 2 });
    const logger = recordingLogger();
    directory = await startKubePodDirectory({ client, logger });
    // The first attempt failed: not synced, nothing known, the failure logged.
    expect(directory.synced()).toBe(false);
    expect(directory.get("apps", "early")).toBeUndefined();
    const synced = directory;
    await waitFor("synced", () => (synced.synced() ? true : undefined));
    expect(synced.get("apps", "early")).toMatchObject({
      uid: "uid-early",
      mtlsModeAnnotation: "strict",
      ports: [{ container: "app", name: "http", port: 8080 }],
    });
    expect(
      logger.warnings.map((w) => [w.msg, (w.fields as { retryInMs?: number }).retryInMs]),
    ).toEqual([
      ["proxy-config: pod watch failed: restarting", POD_WATCH_RETRY_INITIAL_MS],
      ["proxy-config: pod watch failed: restarting", POD_WATCH_RETRY_INITIAL_MS * 2],
    ]);
  });

  it("kube pods – changes made while the watch was down are caught up by a re-list (deletions too)", async () => {
    kube.apply(pod("stays", "off"));
    kube.apply(pod("goes"));
    directory = await startKubePodDirectory({ client, logger: createNoopLogger() });
    expect(directory.synced()).toBe(true);
    const changes: string[] = [];
    directory.subscribe((p, change) => changes.push(`${change} ${p.name}`));
    kube.compactHistory();
    kube.closeWatches();
    kube.delete({ kind: "Pod", name: "goes", namespace: "apps" });
    kube.apply(pod("stays", "strict"));
    const d = directory;
    await waitFor("re-list", () =>
      d.get("apps", "goes") === undefined && d.get("apps", "stays")?.mtlsModeAnnotation === "strict"
        ? true
        : undefined,
    );
    expect(changes).toEqual(expect.arrayContaining(["delete goes", "upsert stays"]));
    expect(d.list().map((p) => p.name)).toEqual(["stays"]);
  });

  it("kube pods – the recorder writes a Warning Event on the pod that client-node reads back", async () => {
    kube.apply(pod("bad", "sometimes"));
    const recorder = createKubePodEventRecorder({
      client,
      logger: createNoopLogger(),
      now: () => new Date("2026-03-04T05:06:07.890Z"),
    });
    await recorder.record(
      {
        namespace: "apps",
        name: "bad",
        uid: "uid-bad",
        mtlsModeAnnotation: "sometimes",
        ports: [],
      },
      {
        reason: ANNOTATION_INVALID_REASON,
        message: "must be off, permissive or strict",
        value: "sometimes",
      },
    );
    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    const events = await core.listNamespacedEvent({ namespace: "apps" });
    expect(events.items).toHaveLength(1);
    const event = events.items[0];
    expect(event?.involvedObject).toMatchObject({ kind: "Pod", name: "bad", uid: "uid-bad" });
    expect(event).toMatchObject({ type: "Warning", reason: ANNOTATION_INVALID_REASON });
    // Our JSON timestamp strings are read back by client-node as the same instant.
    expect(event?.lastTimestamp?.toISOString()).toBe("2026-03-04T05:06:07.000Z");
  });

  it("kube pods – a failed Event is logged, never thrown", async () => {
    kube.failNext({ verb: "create", resource: "events", status: 500 });
    const logger = recordingLogger();
    const recorder = createKubePodEventRecorder({ client, logger });
    await expect(
      recorder.record(
        { namespace: "apps", name: "p", uid: "u", ports: [] },
        { reason: ANNOTATION_INVALID_REASON, message: "x", value: "x" },
      ),
    ).resolves.toBeUndefined();
    expect(logger.warnings.map((w) => w.msg)).toEqual([
      "proxy-config: could not record a pod Event",
    ]);
  });
});
