// Pods of every namespace through an informer (annotations and container ports), and Warning
// Events recorded on them.
import { CoreV1Api, makeInformer, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { recordKubeEvent } from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { MTLS_MODE_ANNOTATION } from "../domain/effective-mode";
import type { PodDirectory, PodEventRecorder, PodInfo } from "../ports";
import { EVENT_COMPONENT } from "./kube-mesh-config-store";

/** First delay before restarting a failed pod watch (doubles up to 30 s). */
export const POD_WATCH_RETRY_INITIAL_MS = 500;
const POD_WATCH_RETRY_MAX_MS = 30_000;

/** A {@link PodDirectory} fed by an informer. */
export interface KubePodDirectory extends PodDirectory {
  /** True once the first list completed. */
  synced(): boolean;
  stop(): Promise<void>;
}

/** The parts of a pod proxy-config uses. */
export function podInfoFromPod(pod: V1Pod): PodInfo | undefined {
  const name = pod.metadata?.name;
  const namespace = pod.metadata?.namespace;
  if (name === undefined || namespace === undefined) return undefined;
  const annotation = pod.metadata?.annotations?.[MTLS_MODE_ANNOTATION];
  const ports = (pod.spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? []).map((p) => ({ container: c.name, name: p.name ?? "", port: p.containerPort })),
  );
  return {
    namespace,
    name,
    uid: pod.metadata?.uid ?? "",
    ...(annotation === undefined ? {} : { mtlsModeAnnotation: annotation }),
    ports,
  };
}

/** Parameters of {@link startKubePodDirectory}. */
export interface StartKubePodDirectoryParams {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
}

/** Starts the pod informer (all namespaces); resolves once the first list is done or failed. */
export async function startKubePodDirectory(
  params: StartKubePodDirectoryParams,
): Promise<KubePodDirectory> {
  const { kubeConfig, logger } = params;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const pods = new Map<string, PodInfo>();
  const listeners = new Set<(pod: PodInfo, change: "upsert" | "delete") => void>();
  let synced = false;
  let stopped = false;
  let retryMs = POD_WATCH_RETRY_INITIAL_MS;
  let timer: NodeJS.Timeout | undefined;

  const notify = (pod: PodInfo, change: "upsert" | "delete"): void => {
    for (const listener of listeners) {
      try {
        listener(pod, change);
      } catch (err) {
        logger.warn({ [LogKeys.err]: err }, "proxy-config: a pod listener failed");
      }
    }
  };
  const upsert = (obj: V1Pod): void => {
    const info = podInfoFromPod(obj);
    if (info === undefined) return;
    pods.set(`${info.namespace}/${info.name}`, info);
    notify(info, "upsert");
  };
  const remove = (obj: V1Pod): void => {
    const info = podInfoFromPod(obj);
    if (info === undefined) return;
    pods.delete(`${info.namespace}/${info.name}`);
    notify(info, "delete");
  };

  const informer = makeInformer<V1Pod>(kubeConfig, "/api/v1/pods", async () => {
    const list = await core.listPodForAllNamespaces();
    synced = true;
    retryMs = POD_WATCH_RETRY_INITIAL_MS;
    return list;
  });
  informer.on("add", upsert);
  informer.on("update", upsert);
  informer.on("delete", remove);
  informer.on("error", (err: unknown) => {
    if (stopped) return;
    logger.warn(
      { [LogKeys.err]: err instanceof Error ? err.message : String(err), retryInMs: retryMs },
      "proxy-config: pod watch failed: restarting",
    );
    timer = setTimeout(() => {
      if (!stopped) informer.start().catch(() => undefined);
    }, retryMs);
    retryMs = Math.min(retryMs * 2, POD_WATCH_RETRY_MAX_MS);
  });
  await informer.start().catch(() => undefined);

  return {
    get: (namespace, name) => pods.get(`${namespace}/${name}`),
    list: () => [...pods.values()],
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    synced: () => synced,
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      listeners.clear();
      await informer.stop();
    },
  };
}

/** Creates the {@link PodEventRecorder} writing core/v1 Events; failures are logged. */
export function createKubePodEventRecorder(params: {
  readonly kubeConfig: KubeConfig;
  readonly logger: Logger;
  readonly now?: () => Date;
}): PodEventRecorder {
  const core = params.kubeConfig.makeApiClient(CoreV1Api);
  return {
    async record(pod, report) {
      try {
        await recordKubeEvent(core, {
          involvedObject: {
            apiVersion: "v1",
            kind: "Pod",
            namespace: pod.namespace,
            name: pod.name,
            uid: pod.uid,
          },
          type: "Warning",
          reason: report.reason,
          message: report.message,
          component: EVENT_COMPONENT,
          ...(params.now === undefined ? {} : { now: params.now() }),
        });
      } catch (err) {
        params.logger.warn(
          { [LogKeys.err]: err instanceof Error ? err.message : String(err), pod: pod.name },
          "proxy-config: could not record a pod Event",
        );
      }
    },
  };
}
