// The registrar's view of the cluster, kept by @meshid/kube informers (list + watch from the
// last resourceVersion; a 410 Gone makes the informer re-list, other failures re-list after a
// capped, doubling backoff): pods, nodes, namespaces, Services and ClusterSPIFFEIDs. Each
// change is handed on as the pods it affects, or as "all".
import {
  createKubeInformer,
  isKubeNotFound,
  type KubeClient,
  type KubeInformer,
  type KubeList,
  type KubeObject,
} from "@meshid/kube";
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import {
  CLUSTER_SPIFFE_ID_API_VERSION,
  CLUSTER_SPIFFE_ID_PLURAL,
  parseClusterSpiffeId,
  type IdentityTemplate,
} from "../domain/cluster-spiffe-id";
import {
  namespaceInfoFromObject,
  nodeInfoFromObject,
  podInfoFromObject,
  serviceInfoFromObject,
} from "../domain/kube-objects";
import type { NamespaceInfo, NodeInfo, PodInfo, ServiceInfo } from "../domain/types";
import type { ClusterView, PodRef, TemplateProblem } from "../ports";

/** First delay before restarting a failed watch (500 ms); doubles up to 30 s. */
export const WATCH_RETRY_INITIAL_MS = 500;
/** Longest delay between restarts of a failing watch (30 s). */
export const WATCH_RETRY_MAX_MS = 30_000;
/** Counter of API objects the registrar could not use. */
export const MALFORMED_OBJECTS_METRIC = "meshid_registrar_malformed_objects_total";
/** Counter of informer failures (each is followed by a restart). */
export const WATCH_ERRORS_METRIC = "meshid_registrar_watch_errors_total";

/** What the watchers tell the registrar. */
export interface ClusterWatchHandlers {
  /** A pod changed (or is gone: `ref` then names it). */
  podChanged(uid: string, ref?: PodRef): void;
  /** Something that may affect every pod changed (a ClusterSPIFFEID). */
  allChanged(): void;
}

/** Parameters of {@link startClusterWatchers}. */
export interface StartClusterWatchersParams {
  /** The API client; the caller owns it (closes it after `stop()`). */
  readonly client: KubeClient;
  readonly handlers: ClusterWatchHandlers;
  readonly logger: Logger;
  /** Default {@link WATCH_RETRY_INITIAL_MS}. */
  readonly retryInitialMs?: number;
}

/** The running watchers: a {@link ClusterView} plus their lifecycle. */
export interface ClusterWatchers extends ClusterView {
  /** Re-lists counted per resource (first list included): proof of 410 handling in tests. */
  listCounts(): Readonly<Record<string, number>>;
  /** Stops every informer. */
  stop(): Promise<void>;
}

type Obj = KubeObject;

interface WatchSpec {
  readonly name: string;
  /** Collection path of the list and the watch. */
  readonly path: string;
  /** Replaces the informer's plain list (the CRD's: a missing CRD is an empty list). */
  readonly list?: (signal: AbortSignal) => Promise<KubeList<Obj>>;
  readonly upsert: (obj: Obj) => void;
  readonly remove: (obj: Obj) => void;
}

/** Collection path of the (cluster-scoped) ClusterSPIFFEIDs. */
const CLUSTER_SPIFFE_IDS_PATH =
  `/apis/${CLUSTER_SPIFFE_ID_API_VERSION}/${CLUSTER_SPIFFE_ID_PLURAL}` as const;

function nsNameKey(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

/**
 * Starts the informers and resolves once each has listed once (or keeps retrying in the
 * background: `synced()` tells). Malformed objects are logged, counted and skipped.
 */
export async function startClusterWatchers(
  params: StartClusterWatchersParams,
): Promise<ClusterWatchers> {
  const { client, handlers, logger } = params;
  const meter = getMeter("@meshid/registrar");
  const malformed = meter.createCounter(MALFORMED_OBJECTS_METRIC, {
    description: "Kubernetes objects the registrar could not use",
  });
  const watchErrors = meter.createCounter(WATCH_ERRORS_METRIC, {
    description: "Watch or list failures (the informer restarts after a backoff)",
  });

  const pods = new Map<string, PodInfo>();
  const podUidByName = new Map<string, string>();
  const podsByNode = new Map<string, Set<string>>();
  const podsByNamespace = new Map<string, Set<string>>();
  const nodes = new Map<string, NodeInfo>();
  const namespaces = new Map<string, NamespaceInfo>();
  const services = new Map<string, Map<string, ServiceInfo>>();
  const templates = new Map<
    string,
    { readonly valid?: IdentityTemplate; readonly problem?: TemplateProblem }
  >();
  const listCounts: Record<string, number> = {};
  let crdMissingLogged = false;
  const synced = new Set<string>();

  const index = (map: Map<string, Set<string>>, key: string, uid: string, add: boolean): void => {
    let set = map.get(key);
    if (add) {
      if (set === undefined) map.set(key, (set = new Set()));
      set.add(uid);
    } else {
      set?.delete(uid);
      if (set?.size === 0) map.delete(key);
    }
  };
  const dropPod = (uid: string): PodRef | undefined => {
    const old = pods.get(uid);
    if (old === undefined) return undefined;
    pods.delete(uid);
    index(podsByNode, old.nodeName, uid, false);
    index(podsByNamespace, old.namespace, uid, false);
    const key = nsNameKey(old.namespace, old.name);
    if (podUidByName.get(key) === uid) podUidByName.delete(key);
    return { uid, name: old.name, namespace: old.namespace };
  };
  const skipMalformed = (kind: string, obj: Obj, why: string): void => {
    malformed.add(1, { kind });
    logger.warn(
      { kind, name: nsNameKey(obj.metadata?.namespace, obj.metadata?.name), reason: why },
      "skipping malformed object",
    );
  };
  const podsOf = (set: Set<string> | undefined): void => {
    for (const uid of [...(set ?? [])]) handlers.podChanged(uid);
  };

  const specs: WatchSpec[] = [
    {
      name: "pods",
      path: "/api/v1/pods",
      upsert: (obj) => {
        const pod = podInfoFromObject(obj);
        if (typeof pod === "string") return skipMalformed("Pod", obj, pod);
        const key = nsNameKey(pod.namespace, pod.name);
        const previousUid = podUidByName.get(key);
        // Same name, new UID: the pod was re-created (seen at a re-list).
        if (previousUid !== undefined && previousUid !== pod.uid) {
          const ref = dropPod(previousUid);
          handlers.podChanged(previousUid, ref);
        }
        const old = pods.get(pod.uid);
        if (old !== undefined) {
          index(podsByNode, old.nodeName, pod.uid, false);
        }
        pods.set(pod.uid, pod);
        podUidByName.set(key, pod.uid);
        index(podsByNode, pod.nodeName, pod.uid, true);
        index(podsByNamespace, pod.namespace, pod.uid, true);
        handlers.podChanged(pod.uid);
      },
      remove: (obj) => {
        const uid =
          obj.metadata?.uid ??
          podUidByName.get(nsNameKey(obj.metadata?.namespace, obj.metadata?.name));
        if (uid === undefined) return;
        const ref = dropPod(uid);
        handlers.podChanged(uid, ref);
      },
    },
    {
      name: "nodes",
      path: "/api/v1/nodes",
      upsert: (obj) => {
        const node = nodeInfoFromObject(obj);
        if (typeof node === "string") return skipMalformed("Node", obj, node);
        const old = nodes.get(node.name);
        nodes.set(node.name, node);
        if (old?.uid !== node.uid || JSON.stringify(old.labels) !== JSON.stringify(node.labels)) {
          podsOf(podsByNode.get(node.name));
        }
      },
      remove: (obj) => {
        const name = obj.metadata?.name ?? "";
        if (nodes.delete(name)) podsOf(podsByNode.get(name));
      },
    },
    {
      name: "namespaces",
      path: "/api/v1/namespaces",
      upsert: (obj) => {
        const ns = namespaceInfoFromObject(obj);
        if (typeof ns === "string") return skipMalformed("Namespace", obj, ns);
        const old = namespaces.get(ns.name);
        namespaces.set(ns.name, ns);
        if (JSON.stringify(old?.labels) !== JSON.stringify(ns.labels)) {
          podsOf(podsByNamespace.get(ns.name));
        }
      },
      remove: (obj) => {
        const name = obj.metadata?.name ?? "";
        if (namespaces.delete(name)) podsOf(podsByNamespace.get(name));
      },
    },
    {
      name: "services",
      path: "/api/v1/services",
      upsert: (obj) => {
        const svc = serviceInfoFromObject(obj);
        if (typeof svc === "string") return skipMalformed("Service", obj, svc);
        let inNs = services.get(svc.namespace);
        if (inNs === undefined)
          services.set(svc.namespace, (inNs = new Map<string, ServiceInfo>()));
        const old = inNs.get(svc.name);
        inNs.set(svc.name, svc);
        if (JSON.stringify(old?.selector) !== JSON.stringify(svc.selector)) {
          podsOf(podsByNamespace.get(svc.namespace));
        }
      },
      remove: (obj) => {
        const namespace = obj.metadata?.namespace ?? "";
        if (services.get(namespace)?.delete(obj.metadata?.name ?? "") === true) {
          podsOf(podsByNamespace.get(namespace));
        }
      },
    },
    {
      name: CLUSTER_SPIFFE_ID_PLURAL,
      path: CLUSTER_SPIFFE_IDS_PATH,
      list: async (signal) => {
        try {
          return await client.request<KubeList<Obj>>({ path: CLUSTER_SPIFFE_IDS_PATH, signal });
        } catch (err) {
          // Without the CRD there are no templates: register with the default rather than
          // wait forever; the informer keeps retrying and picks the CRD up once installed.
          if (!isKubeNotFound(err)) throw err;
          if (!crdMissingLogged) {
            crdMissingLogged = true;
            logger.warn(
              { resource: CLUSTER_SPIFFE_ID_PLURAL },
              "ClusterSPIFFEID CRD not installed: using the default template",
            );
          }
          return { apiVersion: "v1", kind: "List", items: [], metadata: {} };
        }
      },
      upsert: (obj) => {
        const parsed = parseClusterSpiffeId(obj);
        const name = obj.metadata?.name ?? "";
        if (parsed.ok) templates.set(name, { valid: parsed.template });
        else {
          templates.set(name, {
            problem: {
              template: name,
              templateUid: parsed.uid,
              templateRevision: parsed.revision,
              message: parsed.error,
            },
          });
        }
        handlers.allChanged();
      },
      remove: (obj) => {
        if (templates.delete(obj.metadata?.name ?? "")) handlers.allChanged();
      },
    },
  ];

  const informers: KubeInformer[] = [];
  let stopped = false;

  const startOne = (spec: WatchSpec): Promise<void> => {
    const informer = createKubeInformer<Obj>({
      client,
      path: spec.path,
      ...(spec.list === undefined ? {} : { list: spec.list }),
      onUpsert: spec.upsert,
      onDelete: spec.remove,
      onListed: () => {
        listCounts[spec.name] = (listCounts[spec.name] ?? 0) + 1;
        synced.add(spec.name);
      },
      onError: (err, retryInMs) => {
        if (stopped) return;
        watchErrors.add(1, { resource: spec.name });
        logger.warn(
          {
            resource: spec.name,
            [LogKeys.err]: err instanceof Error ? err.message : String(err),
            retryInMs,
          },
          "watch failed: restarting",
        );
      },
      retryInitialMs: params.retryInitialMs ?? WATCH_RETRY_INITIAL_MS,
      retryMaxMs: WATCH_RETRY_MAX_MS,
    });
    informers.push(informer);
    return informer.start();
  };

  await Promise.all(specs.map(startOne));
  // The templates decide everything: once they are known, reconcile all.
  handlers.allChanged();

  return {
    synced: () => synced.size === specs.length,
    pods: () => pods.values(),
    pod: (uid) => pods.get(uid),
    node: (name) => nodes.get(name),
    namespace: (name) => namespaces.get(name),
    services: (namespace) => [...(services.get(namespace)?.values() ?? [])],
    templates: () => {
      const valid: IdentityTemplate[] = [];
      const invalid: TemplateProblem[] = [];
      for (const name of [...templates.keys()].sort()) {
        const t = templates.get(name);
        if (t?.valid !== undefined) valid.push(t.valid);
        if (t?.problem !== undefined) invalid.push(t.problem);
      }
      return { valid, invalid };
    },
    listCounts: () => ({ ...listCounts }),
    async stop() {
      stopped = true;
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
