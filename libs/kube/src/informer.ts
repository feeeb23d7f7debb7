// An informer: list a collection, then watch it from the list's resourceVersion, keeping a
// cache and reporting every change. A watch the server ends (timeout) is re-opened from the
// last resourceVersion seen (bookmarks advance it); 410 Expired re-lists at once; any other
// failure is reported and re-listed after a capped, doubling backoff. A re-list reports the
// differences against the cache, deletions included, so nothing is missed across gaps.
import { setTimeout as delay } from "node:timers/promises";
import { isKubeGone } from "./api-errors";
import type { KubeClient } from "./client";
import type { KubeList, KubeObject } from "./types";

/** First delay before re-listing after a failure; doubles up to {@link INFORMER_RETRY_MAX_MS}. */
export const INFORMER_RETRY_INITIAL_MS = 500;
export const INFORMER_RETRY_MAX_MS = 30_000;

/** Parameters of {@link createKubeInformer}. */
export interface KubeInformerParams<T extends KubeObject> {
  readonly client: KubeClient;
  /** Collection path, e.g. `/api/v1/pods` or `/apis/spire.spiffe.io/v1alpha1/clusterspiffeids`. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** A new or changed object (a re-list reports each object that changed meanwhile). */
  readonly onUpsert: (obj: T) => void;
  /**
   * A deleted object. For an object that vanished during a gap (found by a re-list) only its
   * apiVersion, kind and metadata name, namespace, uid and resourceVersion are known.
   */
  readonly onDelete: (obj: T) => void;
  /** After each successful list, the first included, once its changes were reported. */
  readonly onListed?: () => void;
  /** A failed list or watch; the informer re-lists after `retryInMs`. */
  readonly onError?: (err: unknown, retryInMs: number) => void;
  /** Replaces the list request, e.g. to treat a missing CRD as an empty list. */
  readonly list?: (signal: AbortSignal) => Promise<KubeList<T>>;
  /** Default {@link INFORMER_RETRY_INITIAL_MS}. */
  readonly retryInitialMs?: number;
  /** Default {@link INFORMER_RETRY_MAX_MS}. */
  readonly retryMaxMs?: number;
  /** Server-side watch timeout; default a random 300–600 s, as client-go does. */
  readonly watchTimeoutSeconds?: number;
}

/** A running informer. */
export interface KubeInformer {
  /** Starts; resolves after the first list attempt, successful or not (it keeps retrying). */
  start(): Promise<void>;
  /** Stops watching; resolves once the loop has ended. */
  stop(): Promise<void>;
  /** True once a list has succeeded. */
  synced(): boolean;
  /** Successful lists so far (re-lists after 410 or failures included). */
  listCount(): number;
  /** Objects known now (as tracked: identity and resourceVersion only). */
  size(): number;
}

/**
 * What the informer keeps of each object: enough to tell changes and deletions apart at a
 * re-list. Consumers keep what they need themselves; holding every full object too (a pod is
 * ≈ 10 KB as JS objects) doubled the registrar's and proxy-config's memory per pod.
 */
function tracked<T extends KubeObject>(obj: T): T {
  const m = obj.metadata ?? {};
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
    },
  } as T;
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

/** Creates an informer; nothing happens until `start()`. */
export function createKubeInformer<T extends KubeObject>(
  params: KubeInformerParams<T>,
): KubeInformer {
  const { client } = params;
  const retryInitialMs = params.retryInitialMs ?? INFORMER_RETRY_INITIAL_MS;
  const retryMaxMs = params.retryMaxMs ?? INFORMER_RETRY_MAX_MS;
  const selectors = {
    labelSelector: params.labelSelector,
    fieldSelector: params.fieldSelector,
  };
  const cache = new Map<string, T>();
  let lists = 0;
  let abort = new AbortController();
  let running: Promise<void> | undefined;

  const list =
    params.list ??
    ((signal: AbortSignal) =>
      client.request<KubeList<T>>({ path: params.path, query: selectors, signal }));

  const relist = async (signal: AbortSignal): Promise<string> => {
    const result = await list(signal);
    const seen = new Set<string>();
    for (const obj of result.items) {
      const key = keyOf(obj);
      seen.add(key);
      const old = cache.get(key);
      cache.set(key, tracked(obj));
      if (old?.metadata?.resourceVersion !== obj.metadata?.resourceVersion || old === undefined) {
        params.onUpsert(obj);
      }
    }
    for (const [key, old] of [...cache]) {
      if (!seen.has(key)) {
        cache.delete(key);
        params.onDelete(old);
      }
    }
    lists++;
    params.onListed?.();
    return result.metadata?.resourceVersion ?? "";
  };

  const loop = async (signal: AbortSignal, firstAttempt: () => void): Promise<void> => {
    let retryMs = retryInitialMs;
    while (!signal.aborted) {
      try {
        let resourceVersion = await relist(signal);
        firstAttempt();
        retryMs = retryInitialMs;
        while (!signal.aborted) {
          await client.watch<T>(
            {
              path: params.path,
              signal,
              query: {
                ...selectors,
                resourceVersion,
                allowWatchBookmarks: true,
                timeoutSeconds: params.watchTimeoutSeconds ?? Math.floor(300 + Math.random() * 300),
              },
            },
            (event) => {
              const rv = event.object.metadata?.resourceVersion;
              if (rv !== undefined && rv !== "") resourceVersion = rv;
              if (event.type === "BOOKMARK") return;
              const key = keyOf(event.object);
              if (event.type === "DELETED") {
                cache.delete(key);
                params.onDelete(event.object);
              } else {
                cache.set(key, tracked(event.object));
                params.onUpsert(event.object);
              }
            },
          );
        }
      } catch (err) {
        firstAttempt();
        if (signal.aborted) break;
        // 410 Expired: our resourceVersion is older than the server's history. Re-list now.
        if (isKubeGone(err)) continue;
        params.onError?.(err, retryMs);
        await delay(retryMs, undefined, { signal }).catch(() => undefined);
        retryMs = Math.min(retryMs * 2, retryMaxMs);
      }
    }
  };

  return {
    start() {
      if (running !== undefined) return Promise.resolve();
      abort = new AbortController();
      return new Promise<void>((resolve) => {
        running = loop(abort.signal, resolve).finally(resolve);
      });
    },
    async stop() {
      abort.abort();
      await running;
      running = undefined;
    },
    synced: () => lists > 0,
    listCount: () => lists,
    size: () => cache.size,
  };
}
