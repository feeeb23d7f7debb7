import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { MeshidError } from "@meshid/errors";
import { normalizeSelectors, type Selector } from "@meshid/spiffe";
import { parseCgroupFile } from "../domain/cgroup";
import type { WorkloadProcess } from "../domain/types";
import type { WorkloadAttestor } from "../ports";
import type { KubeletClient, KubeletContainerStatus, KubeletPod } from "./kubelet-client";
import { procReadError } from "./unix-attestor";

/** Default of {@link CreateK8sAttestorParams.retry}: 5 fetches, 200 ms apart. */
export const DEFAULT_K8S_RETRY = Object.freeze({ attempts: 5, delayMs: 200 });

/** Default of {@link CreateK8sAttestorParams.cacheTtlMs}. */
export const DEFAULT_POD_LIST_CACHE_TTL_MS = 1000;

/** Parameters of {@link createK8sAttestor}. */
export interface CreateK8sAttestorParams {
  /** Where `/proc` is mounted. Default `/proc`. */
  readonly procRoot?: string;
  readonly kubelet: KubeletClient;
  /** This node's name, emitted as `k8s:node-name:<n>`. */
  readonly nodeName: string;
  /**
   * How often the pod list is fetched again when the container is not (yet) listed, and the
   * pause between fetches. Default {@link DEFAULT_K8S_RETRY}.
   */
  readonly retry?: { readonly attempts: number; readonly delayMs: number };
  /** How long one pod list answers lookups (ms). Default {@link DEFAULT_POD_LIST_CACHE_TTL_MS}. */
  readonly cacheTtlMs?: number;
  /** Monotonic milliseconds for the cache; default `performance.now()`. */
  readonly nowMs?: () => number;
}

interface PodMatch {
  readonly pod: KubeletPod;
  readonly status: KubeletContainerStatus;
  readonly init: boolean;
}

function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const reason: unknown = signal.reason;
      reject(reason instanceof Error ? reason : new Error(String(reason)));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function runtimeIdOf(containerID: string | undefined): string | undefined {
  if (containerID === undefined) return undefined;
  const sep = containerID.indexOf("://");
  return sep < 0 ? containerID : containerID.slice(sep + 3);
}

/** The containers of one pod list, by runtime container ID (regular and init containers). */
type PodIndex = ReadonlyMap<string, readonly PodMatch[]>;

/**
 * One pod's containers: runtime container ID and the container's match as a one-element list
 * (the usual index value, so a list indexed again allocates none), regular then init containers.
 */
type PodContainers = readonly (readonly [string, readonly PodMatch[]])[];

function containersOf(pod: KubeletPod): PodContainers {
  const out: (readonly [string, readonly PodMatch[]])[] = [];
  const add = (list: readonly KubeletContainerStatus[] | undefined, init: boolean): void => {
    for (const status of list ?? []) {
      const id = runtimeIdOf(status.containerID);
      if (id !== undefined) out.push([id, [{ pod, status, init }]]);
    }
  };
  add(pod.status?.containerStatuses, false);
  add(pod.status?.initContainerStatuses, true);
  return out;
}

/**
 * Indexes `pods` by the container IDs their statuses (regular or init) name, once per list.
 * A pod object seen in an earlier list (the kubelet client hands out the same object while a
 * pod is unchanged) keeps its matches from `known`.
 */
function indexPods(
  pods: readonly KubeletPod[],
  known: WeakMap<KubeletPod, PodContainers>,
): PodIndex {
  const index = new Map<string, readonly PodMatch[]>();
  for (const pod of pods) {
    let containers = known.get(pod);
    if (containers === undefined) {
      containers = containersOf(pod);
      known.set(pod, containers);
    }
    for (const [id, match] of containers) {
      const matches = index.get(id);
      // Two pods naming one container: attest refuses it as ambiguous.
      index.set(id, matches === undefined ? match : [...matches, ...match]);
    }
  }
  return index;
}

const NO_MATCH: readonly PodMatch[] = Object.freeze([]);

function selectorsOf(match: PodMatch, nodeName: string): Selector[] {
  const { pod, status, init } = match;
  const out: Selector[] = [];
  const add = (key: string, value: string | undefined): void => {
    if (value !== undefined && value !== "") out.push({ type: "k8s", value: `${key}:${value}` });
  };
  const meta = pod.metadata ?? {};
  add("ns", meta.namespace);
  add("sa", pod.spec?.serviceAccountName ?? pod.spec?.serviceAccount);
  add("pod-uid", meta.uid);
  add("pod-name", meta.name);
  add("node-name", nodeName);
  for (const [k, v] of Object.entries(meta.labels ?? {}))
    out.push({ type: "k8s", value: `pod-label:${k}:${v}` });
  for (const owner of meta.ownerReferences ?? []) {
    if (owner.kind && owner.name) add("pod-owner", `${owner.kind}:${owner.name}`);
  }
  for (const c of pod.spec?.containers ?? []) add("pod-image", c.image);
  for (const s of pod.status?.containerStatuses ?? []) {
    add("pod-image", s.image);
    add("pod-image", s.imageID);
  }
  for (const c of pod.spec?.initContainers ?? []) add("pod-init-image", c.image);
  for (const s of pod.status?.initContainerStatuses ?? []) {
    add("pod-init-image", s.image);
    add("pod-init-image", s.imageID);
  }
  add("container-name", status.name);
  add("container-image", status.image);
  add("container-image", status.imageID);
  const specs = init ? pod.spec?.initContainers : pod.spec?.containers;
  add("container-image", specs?.find((c) => c.name === status.name)?.image);
  return out;
}

/**
 * Creates the `k8s` workload attestor: reads `<procRoot>/<pid>/cgroup` for the pod UID and
 * container ID (no container ID → `[]`, not a pod), finds the pod in the kubelet's `/pods` list
 * (indexed by container ID once per list and cached for `cacheTtlMs`; on a miss fetched again
 * up to `retry.attempts` times, `retry.delayMs` apart, since a new pod may not be listed yet:
 * one request at a time, shared by every caller, and a caller that misses while a request is
 * under way, which may have been sent before its pod was listed, looks at its answer and then
 * takes the next request, sent as soon as that one is answered, without the delay) whose
 * `containerStatuses` or `initContainerStatuses` name the container (`containerd://<id>`, `cri-o://<id>`,
 * `docker://<id>`), and returns `k8s:ns`, `sa`, `pod-uid`, `pod-name`, `node-name`,
 * `pod-label:<k>:<v>`, `pod-owner:<Kind>:<name>`, `pod-image`, `pod-init-image`, and the calling
 * container's `container-name` and `container-image`, deduplicated and sorted. A container outside Kubernetes (no pod
 * UID in its cgroup, in no pod) is `[]` too.
 *
 * `attest` throws MeshidError `permission_denied` with `agent.attestation.ambiguous_container`
 * (two pods claim the container), `agent.attestation.pod_uid_mismatch` (the pod found is not the
 * cgroup's) or `agent.attestation.process_gone`; `unavailable` with
 * `agent.attestation.pod_not_found` (the cgroup's pod is still not listed after the retries) or
 * `agent.attestation.kubelet_unavailable`.
 */
export function createK8sAttestor(params: CreateK8sAttestorParams): WorkloadAttestor {
  const procRoot = params.procRoot ?? "/proc";
  const retry = params.retry ?? DEFAULT_K8S_RETRY;
  const attempts = Math.max(1, retry.attempts);
  const ttlMs = params.cacheTtlMs ?? DEFAULT_POD_LIST_CACHE_TTL_MS;
  const nowMs = params.nowMs ?? (() => performance.now());
  let cache: { index: PodIndex; fetchedAtMs: number } | undefined;
  const containersByPod = new WeakMap<KubeletPod, PodContainers>();
  // At most one request at a time, shared by every attestation waiting for it.
  let inflight: Promise<PodIndex> | undefined;

  const startFetch = (): Promise<PodIndex> => {
    const request = params.kubelet.listPods().then((pods) => {
      const index = indexPods(pods, containersByPod);
      cache = { index, fetchedAtMs: nowMs() };
      return index;
    });
    inflight = request;
    request
      .finally(() => {
        if (inflight === request) inflight = undefined;
      })
      .catch(() => undefined);
    return request;
  };

  /**
   * A pod list fetched after `stale` (the request under way when the caller found its container
   * missing, which may have been sent before the pod was listed): a request sent since is
   * joined, else one is sent. The shared request is not tied to one caller's signal (the
   * client has its own timeout); each caller stops waiting when its own signal aborts.
   */
  const fetchAfter = async (
    stale: Promise<PodIndex> | undefined,
    signal: AbortSignal | undefined,
  ): Promise<PodIndex> => {
    while (stale !== undefined && inflight === stale) {
      await untilAborted(
        stale.catch(() => undefined),
        signal,
      );
    }
    return untilAborted(inflight ?? startFetch(), signal);
  };

  const lookup = async (
    containerId: string,
    signal?: AbortSignal,
  ): Promise<readonly PodMatch[]> => {
    if (cache !== undefined && nowMs() - cache.fetchedAtMs < ttlMs) {
      const hit = cache.index.get(containerId);
      if (hit !== undefined) return hit;
    }
    // A request already under way may list the pod: it costs nothing to look.
    let stale = inflight;
    if (stale !== undefined) {
      const index = await untilAborted(
        stale.catch(() => undefined),
        signal,
      );
      const hit = index?.get(containerId);
      if (hit !== undefined) return hit;
    }
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const fresh = fetchAfter(stale, signal);
      stale = undefined;
      try {
        const found = (await fresh).get(containerId);
        if (found !== undefined) return found;
        lastError = undefined;
      } catch (err) {
        signal?.throwIfAborted();
        lastError = err instanceof Error ? err : new Error(String(err));
      }
      if (attempt < attempts) {
        await sleep(retry.delayMs, undefined, { signal }).catch((err: unknown) => {
          signal?.throwIfAborted();
          throw err;
        });
      }
    }
    if (lastError !== undefined) throw lastError;
    return NO_MATCH;
  };

  return {
    type: "k8s",
    async attest(process: WorkloadProcess, signal?: AbortSignal): Promise<Selector[]> {
      signal?.throwIfAborted();
      let cgroupText: string;
      try {
        cgroupText = await readFile(join(procRoot, String(process.pid), "cgroup"), "utf8");
      } catch (err) {
        throw procReadError(err, process.pid, "cgroup");
      }
      const { podUid, containerId } = parseCgroupFile(cgroupText);
      if (containerId === undefined) return [];
      const matches = await lookup(containerId, signal);
      const podUids = new Set(matches.map((m) => m.pod.metadata?.uid ?? ""));
      if (podUids.size > 1) {
        throw new MeshidError(
          "permission_denied",
          "agent.attestation.ambiguous_container",
          `container ${containerId} of process ${process.pid} is claimed by ${podUids.size} pods`,
          { details: { pid: process.pid, containerId } },
        );
      }
      const match = matches[0];
      if (match === undefined) {
        if (podUid === undefined) return [];
        throw new MeshidError(
          "unavailable",
          "agent.attestation.pod_not_found",
          `pod ${podUid} of process ${process.pid} is not listed by the kubelet`,
          { details: { pid: process.pid, podUid, containerId } },
        );
      }
      if (podUid !== undefined && match.pod.metadata?.uid !== podUid) {
        throw new MeshidError(
          "permission_denied",
          "agent.attestation.pod_uid_mismatch",
          `container ${containerId} of process ${process.pid} belongs to pod ${match.pod.metadata?.uid ?? "?"}, but its cgroup names pod ${podUid}`,
          { details: { pid: process.pid, containerId, podUid } },
        );
      }
      return normalizeSelectors(selectorsOf(match, params.nodeName));
    },
  };
}
