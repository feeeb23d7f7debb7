// Serves pods' renderings once (Get) or as change feeds (Watch): a new message whenever the
// mesh mode, the pod's annotation or its ports change the rendering.
import type { PodDirectory } from "../ports";
import type { MeshConfig } from "./mesh-config";
import {
  renderPodProxyConfig,
  type PodProxyConfig,
  type PodProxyConfigRequest,
} from "./pod-proxy-config";

/** Most renderings whose generation is remembered (oldest forgotten first). */
export const MAX_REMEMBERED_RENDERINGS = 10_000;

/** A rendering with its generation. */
export interface ProxyConfigResult extends PodProxyConfig {
  /**
   * Grows with every change of this pod's rendering (per pod and request, in this replica);
   * compare for equality across replicas, not for order.
   */
  readonly generation: number;
}

/** Dependencies of {@link createProxyConfigHub}. */
export interface ProxyConfigHubDeps {
  readonly meshConfig: {
    current(): MeshConfig;
    subscribe(listener: (config: MeshConfig) => void): () => void;
  };
  /** Without it (no Kubernetes) the mesh mode applies and only requested ports are used. */
  readonly pods?: PodDirectory;
}

/** Renders pods' sidecar configurations on request and on change. */
export interface ProxyConfigHub {
  /** The rendering now. The request must have been validated. */
  get(request: PodProxyConfigRequest): ProxyConfigResult;
  /**
   * The rendering at once, then again after every change of it, until `signal` aborts (then the
   * iteration ends quietly).
   */
  watch(request: PodProxyConfigRequest, signal: AbortSignal): AsyncIterable<ProxyConfigResult>;
  /** Open watch streams. */
  openStreams(): number;
}

function sameRendering(a: PodProxyConfig, b: PodProxyConfig): boolean {
  return (
    a.nginxConf === b.nginxConf &&
    a.effectiveMode === b.effectiveMode &&
    a.modeSource === b.modeSource
  );
}

/** Creates the {@link ProxyConfigHub}. */
export function createProxyConfigHub(deps: ProxyConfigHubDeps): ProxyConfigHub {
  const remembered = new Map<string, ProxyConfigResult>();
  let open = 0;

  const get = (request: PodProxyConfigRequest): ProxyConfigResult => {
    const rendered = renderPodProxyConfig({
      mesh: deps.meshConfig.current(),
      pod: deps.pods?.get(request.namespace, request.podName),
      request,
    });
    const key = JSON.stringify(request);
    const before = remembered.get(key);
    if (before !== undefined && sameRendering(before, rendered)) {
      return { ...rendered, generation: before.generation };
    }
    const result: ProxyConfigResult = { ...rendered, generation: (before?.generation ?? 0) + 1 };
    remembered.delete(key);
    remembered.set(key, result);
    while (remembered.size > MAX_REMEMBERED_RENDERINGS) {
      const oldest = remembered.keys().next();
      if (oldest.done === true) break;
      remembered.delete(oldest.value);
    }
    return result;
  };

  async function* watch(
    request: PodProxyConfigRequest,
    signal: AbortSignal,
  ): AsyncGenerator<ProxyConfigResult> {
    let dirty = true;
    let wake: (() => void) | undefined;
    const poke = (): void => {
      dirty = true;
      wake?.();
    };
    const unsubscribeMesh = deps.meshConfig.subscribe(poke);
    const unsubscribePods = deps.pods?.subscribe((pod) => {
      if (pod.namespace === request.namespace && pod.name === request.podName) poke();
    });
    const onAbort = (): void => wake?.();
    signal.addEventListener("abort", onAbort);
    open++;
    try {
      let last: ProxyConfigResult | undefined;
      while (!signal.aborted) {
        if (dirty) {
          dirty = false;
          const result = get(request);
          if (last === undefined || !sameRendering(last, result)) {
            last = result;
            yield result;
          }
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      open--;
      signal.removeEventListener("abort", onAbort);
      unsubscribeMesh();
      unsubscribePods?.();
    }
  }

  return { get, watch, openStreams: () => open };
}
