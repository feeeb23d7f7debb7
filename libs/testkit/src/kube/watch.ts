import type { IncomingMessage, ServerResponse } from "node:http";
import { groupVersionOf, type KubeResourceDefinition } from "./discovery";
import {
  matchesFieldSelector,
  matchesLabelSelector,
  type FieldRequirement,
  type LabelRequirement,
} from "./selectors";
import { KubeApiError } from "./status";
import type { KubeStore, KubeStoreEvent } from "./store";
import type { JsonObject, KubeObject } from "./types";

/** An open watch stream, as tracked by the API server stand-in. */
export interface OpenWatch {
  readonly resource: KubeResourceDefinition;
  /** Sends a BOOKMARK now (only when the client asked for bookmarks). */
  bookmark(): void;
  /** Ends the stream as the real server does when a watch times out. */
  close(): void;
}

/** How a watch from a resourceVersion older than the retained history fails. */
export type ExpiredWatchMode = "event" | "http";

/** Parameters of {@link serveWatch}. */
export interface ServeWatchParams {
  readonly store: KubeStore;
  readonly resource: KubeResourceDefinition;
  readonly namespace: string | undefined;
  readonly labelSelector: readonly LabelRequirement[];
  readonly fieldSelector: readonly FieldRequirement[];
  /** The `resourceVersion` query parameter (undefined, "" or "0": start with the current state). */
  readonly resourceVersion: string | undefined;
  readonly allowBookmarks: boolean;
  readonly timeoutSeconds: number | undefined;
  readonly bookmarkIntervalMs: number;
  /** `event` (default, like the real server): 200 then an ERROR event with a 410 Status. */
  readonly expiredMode: ExpiredWatchMode;
  /** Registry of open watches; the stream adds itself and removes itself when it ends. */
  readonly openWatches: Set<OpenWatch>;
}

function matches(params: ServeWatchParams, obj: KubeObject | undefined): boolean {
  if (!obj) return false;
  if (
    params.resource.namespaced &&
    params.namespace !== undefined &&
    obj.metadata.namespace !== params.namespace
  ) {
    return false;
  }
  return (
    matchesLabelSelector(params.labelSelector, obj.metadata.labels) &&
    matchesFieldSelector(params.fieldSelector, obj)
  );
}

/**
 * Turns a store event into the watch event a client with these selectors sees: an object that
 * starts matching is ADDED, one that stops matching is DELETED (like the real watch cache).
 */
function project(
  params: ServeWatchParams,
  event: KubeStoreEvent,
): { type: string; object: KubeObject } | undefined {
  const def = params.resource;
  if (event.resource.group !== def.group || event.resource.plural !== def.plural) return undefined;
  const object = { ...event.object, apiVersion: groupVersionOf(def), kind: def.kind };
  const now = matches(params, event.object);
  if (event.type === "ADDED") return now ? { type: "ADDED", object } : undefined;
  const before = matches(params, event.previous);
  if (event.type === "DELETED") return before ? { type: "DELETED", object } : undefined;
  if (before && now) return { type: "MODIFIED", object };
  if (now) return { type: "ADDED", object };
  if (before) return { type: "DELETED", object };
  return undefined;
}

/**
 * Serves a watch on `res` as chunked JSON lines (`{"type":…,"object":…}`): replays retained
 * history after `resourceVersion` (or the current state as ADDED events), then streams live
 * changes, optional BOOKMARKs, and ends after `timeoutSeconds`. Throws `KubeApiError` 410 before
 * writing anything when the resourceVersion is too old and `expiredMode` is `http`.
 */
export function serveWatch(
  req: IncomingMessage,
  res: ServerResponse,
  params: ServeWatchParams,
): void {
  const { store, resource } = params;
  const rvParam = params.resourceVersion;
  const fromState = rvParam === undefined || rvParam === "" || rvParam === "0";
  let from = 0;
  if (!fromState) {
    from = Number(rvParam);
    if (!Number.isInteger(from) || from < 0) {
      throw new KubeApiError(400, `invalid resource version: ${rvParam}`, "BadRequest");
    }
  }
  let replay: KubeStoreEvent[] = [];
  let expired: KubeApiError | undefined;
  if (!fromState) {
    try {
      replay = store.eventsSince(from);
    } catch (err) {
      if (!(err instanceof KubeApiError) || err.code !== 410) throw err;
      if (params.expiredMode === "http") throw err;
      expired = err;
    }
  }

  res.writeHead(200, {
    "Content-Type": "application/json",
    "Transfer-Encoding": "chunked",
    "Cache-Control": "no-cache, private",
  });
  res.flushHeaders();

  let ended = false;
  const send = (type: string, object: JsonObject): void => {
    if (!ended) res.write(JSON.stringify({ type, object }) + "\n");
  };

  if (expired) {
    send("ERROR", expired.toStatus());
    res.end();
    return;
  }

  const timers: NodeJS.Timeout[] = [];
  let unsubscribe: () => void = () => undefined;
  const handle: OpenWatch = {
    resource,
    bookmark() {
      if (!params.allowBookmarks) return;
      send("BOOKMARK", {
        kind: resource.kind,
        apiVersion: groupVersionOf(resource),
        metadata: { resourceVersion: String(store.currentResourceVersion()) },
      });
    },
    close() {
      if (ended) return;
      ended = true;
      unsubscribe();
      for (const t of timers) clearTimeout(t);
      params.openWatches.delete(handle);
      res.end();
    },
  };
  params.openWatches.add(handle);
  req.on("close", () => handle.close());
  res.on("close", () => handle.close());

  // Subscribing and replaying happen in the same tick, so no change can fall in between.
  unsubscribe = store.subscribe((event) => {
    const projected = project(params, event);
    if (projected) send(projected.type, projected.object);
  });
  if (fromState) {
    for (const obj of store.list(resource, resource.namespaced ? params.namespace : undefined)) {
      if (matches(params, obj)) send("ADDED", obj);
    }
  } else {
    for (const event of replay) {
      const projected = project(params, event);
      if (projected) send(projected.type, projected.object);
    }
  }

  if (params.allowBookmarks && params.bookmarkIntervalMs > 0) {
    const interval = setInterval(() => handle.bookmark(), params.bookmarkIntervalMs);
    interval.unref();
    timers.push(interval);
  }
  if (params.timeoutSeconds !== undefined && params.timeoutSeconds > 0) {
    const timeout = setTimeout(() => handle.close(), params.timeoutSeconds * 1000);
    timeout.unref();
    timers.push(timeout);
  }
}
