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

/** Pods whose container statuses (regular or init) name `containerId`. */
function findContainer(pods: readonly KubeletPod[], containerId: string): PodMatch[] {
  const matches: PodMatch[] = [];
  for (const pod of pods) {
    const lists: [readonly KubeletContainerStatus[] | undefined, boolean][] = [
      [pod.status?.containerStatuses, false],
      [pod.status?.initContainerStatuses, true],
    ];
    for (const [list, init] of lists) {
      for (const status of list ?? []) {
        if (runtimeIdOf(status.containerID) === containerId) matches.push({ pod, status, init });
      }
    }
  }
  return matches;
}

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
 * (cached for `cacheTtlMs`; on a miss fetched again up to `retry.attempts` times,
 * `retry.delayMs` apart, since a new pod may not be listed yet) whose `containerStatuses` or
 * `initContainerStatuses` name the container (`containerd://<id>`, `cri-o://<id>`,
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
  let cache: { pods: KubeletPod[]; fetchedAtMs: number } | undefined;
  // Concurrent attestations share one in-flight request.
  let inflight: Promise<KubeletPod[]> | undefined;

  // The shared request is not tied to one caller's signal (the client has its own timeout);
  // each caller stops waiting when its own signal aborts.
  const fetchPods = (signal?: AbortSignal): Promise<KubeletPod[]> => {
    inflight ??= params.kubelet
      .listPods()
      .then((pods) => {
        cache = { pods, fetchedAtMs: nowMs() };
        return pods;
      })
      .finally(() => {
        inflight = undefined;
      });
    return untilAborted(inflight, signal);
  };

  const lookup = async (containerId: string, signal?: AbortSignal): Promise<PodMatch[]> => {
    if (cache !== undefined && nowMs() - cache.fetchedAtMs < ttlMs) {
      const hit = findContainer(cache.pods, containerId);
      if (hit.length > 0) return hit;
    }
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const found = findContainer(await fetchPods(signal), containerId);
        if (found.length > 0) return found;
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
    return [];
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
