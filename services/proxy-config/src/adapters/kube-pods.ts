// Pods of every namespace through an informer (annotations and container ports), and Warning
// Events recorded on them.
import { createKubeInformer, recordKubeEvent, type KubeClient, type KubePod } from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { MTLS_MODE_ANNOTATION } from "../domain/effective-mode";
import type { PodDirectory, PodEventRecorder, PodInfo } from "../ports";
import { EVENT_COMPONENT } from "./kube-mesh-config-store";

/** First delay before re-listing after a failed pod list or watch (doubles up to 30 s). */
export const POD_WATCH_RETRY_INITIAL_MS = 500;
const POD_WATCH_RETRY_MAX_MS = 30_000;
/** Pods of every namespace. */
const PODS_PATH = "/api/v1/pods";

/** A {@link PodDirectory} fed by an informer. */
export interface KubePodDirectory extends PodDirectory {
  /** True once the first list completed. */
  synced(): boolean;
  stop(): Promise<void>;
}

/** The parts of a pod proxy-config uses. */
export function podInfoFromPod(pod: KubePod): PodInfo | undefined {
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
  readonly client: KubeClient;
  readonly logger: Logger;
}

/** Starts the pod informer (all namespaces); resolves once the first list is done or failed. */
export async function startKubePodDirectory(
  params: StartKubePodDirectoryParams,
): Promise<KubePodDirectory> {
  const { client, logger } = params;
  const pods = new Map<string, PodInfo>();
  const listeners = new Set<(pod: PodInfo, change: "upsert" | "delete") => void>();

  const notify = (pod: PodInfo, change: "upsert" | "delete"): void => {
    for (const listener of listeners) {
      try {
        listener(pod, change);
      } catch (err) {
        logger.warn({ [LogKeys.err]: err }, "proxy-config: a pod listener failed");
      }
    }
  };
  const upsert = (obj: KubePod): void => {
    const info = podInfoFromPod(obj);
    if (info === undefined) return;
    pods.set(`${info.namespace}/${info.name}`, info);
    notify(info, "upsert");
  };
  const remove = (obj: KubePod): void => {
    const info = podInfoFromPod(obj);
    if (info === undefined) return;
    pods.delete(`${info.namespace}/${info.name}`);
    notify(info, "delete");
  };

  // The informer re-lists after failures itself (capped doubling backoff) and after 410.
  const informer = createKubeInformer<KubePod>({
    client,
    path: PODS_PATH,
    onUpsert: upsert,
    onDelete: remove,
    onError: (err, retryInMs) => {
      logger.warn(
        { [LogKeys.err]: err instanceof Error ? err.message : String(err), retryInMs },
        "proxy-config: pod watch failed: restarting",
      );
    },
    retryInitialMs: POD_WATCH_RETRY_INITIAL_MS,
    retryMaxMs: POD_WATCH_RETRY_MAX_MS,
  });
  await informer.start();

  return {
    get: (namespace, name) => pods.get(`${namespace}/${name}`),
    list: () => [...pods.values()],
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    synced: () => informer.synced(),
    async stop() {
      listeners.clear();
      await informer.stop();
    },
  };
}

/** Creates the {@link PodEventRecorder} writing core/v1 Events; failures are logged. */
export function createKubePodEventRecorder(params: {
  readonly client: KubeClient;
  readonly logger: Logger;
  readonly now?: () => Date;
}): PodEventRecorder {
  return {
    async record(pod, report) {
      try {
        await recordKubeEvent(params.client, {
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
