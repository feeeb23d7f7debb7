// MeshConfig as the cluster-scoped `meshid.io/v1alpha1` MeshConfig resource (singleton, default
// name `meshid`): compare-and-swap writes on resourceVersion, an informer for edits made by
// anyone (kubectl, other replicas), Warning Events on the resource for invalid specs.
import { MeshidError } from "@meshid/errors";
import {
  createKubeInformer,
  isKubeConflict,
  isKubeNotFound,
  recordKubeEvent,
  type KubeClient,
} from "@meshid/kube";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { DEFAULT_MESH_CONFIG_SETTINGS } from "../domain/mesh-config";
import { specFromSettings } from "../domain/mesh-config-manager";
import { STORE_CONFLICT_CODE, type MeshConfigDocument, type MeshConfigStore } from "../ports";
import {
  MESH_CONFIG_GROUP,
  MESH_CONFIG_KIND,
  MESH_CONFIG_PLURAL,
  MESH_CONFIG_VERSION,
  UPDATED_AT_ANNOTATION,
  resourceSpecFromUpdate,
  updateFromResourceSpec,
  updatedAtOf,
  type MeshConfigResource,
} from "./mesh-config-document";

/** Reporting component of proxy-config's Kubernetes Events. */
export const EVENT_COMPONENT = "meshid-proxy-config";
/** Event reason of an invalid MeshConfig spec. */
export const MESH_CONFIG_INVALID_REASON = "MeshConfigInvalid";
/** First delay before re-listing after a failed MeshConfig list or watch (doubles up to 30 s). */
export const WATCH_RETRY_INITIAL_MS = 500;
const WATCH_RETRY_MAX_MS = 30_000;
/** REST path of the (cluster-scoped) MeshConfig collection. */
const MESH_CONFIGS_PATH = `/apis/${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}/${MESH_CONFIG_PLURAL}`;

/** Dependencies of {@link createKubeMeshConfigStore}. */
export interface KubeMeshConfigStoreDeps {
  readonly client: KubeClient;
  /** Name of the singleton. */
  readonly name: string;
  readonly logger: Logger;
}

function documentOf(resource: MeshConfigResource): MeshConfigDocument {
  const updatedAt = updatedAtOf(resource);
  return {
    spec: updateFromResourceSpec(resource.spec),
    generation: resource.metadata.generation ?? 1,
    ...(updatedAt === undefined ? {} : { updatedAt }),
    version: resource.metadata.resourceVersion ?? "",
  };
}

function unavailable(what: string, err: unknown): MeshidError {
  return new MeshidError(
    "unavailable",
    "proxy_config.kube.unavailable",
    `${what}: ${err instanceof Error ? err.message : String(err)}`,
    { cause: err },
  );
}

/** Creates the Kubernetes-backed {@link MeshConfigStore}. */
export function createKubeMeshConfigStore(deps: KubeMeshConfigStoreDeps): MeshConfigStore {
  const { client, name, logger } = deps;
  const path = `${MESH_CONFIGS_PATH}/${encodeURIComponent(name)}`;
  let lastUid: string | undefined;

  const get = async (signal?: AbortSignal): Promise<MeshConfigResource | undefined> => {
    try {
      const resource = await client.request<MeshConfigResource>({
        path,
        ...(signal === undefined ? {} : { signal }),
      });
      lastUid = resource.metadata.uid;
      return resource;
    } catch (err) {
      if (isKubeNotFound(err)) return undefined;
      throw unavailable(`cannot read MeshConfig ${name}`, err);
    }
  };

  const read = async (signal?: AbortSignal): Promise<MeshConfigDocument> => {
    const existing = await get(signal);
    if (existing !== undefined) return documentOf(existing);
    const body: MeshConfigResource = {
      apiVersion: `${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}`,
      kind: MESH_CONFIG_KIND,
      metadata: {
        name,
        annotations: { [UPDATED_AT_ANNOTATION]: new Date().toISOString() },
      },
      spec: resourceSpecFromUpdate(specFromSettings(DEFAULT_MESH_CONFIG_SETTINGS)),
    };
    try {
      const created = await client.request<MeshConfigResource>({
        method: "POST",
        path: MESH_CONFIGS_PATH,
        body,
        ...(signal === undefined ? {} : { signal }),
      });
      logger.info({ name }, "proxy-config: created the MeshConfig resource with the defaults");
      return documentOf(created);
    } catch (err) {
      // Another replica created it first: use theirs.
      const raced = await get(signal);
      if (raced !== undefined) return documentOf(raced);
      throw unavailable(`cannot create MeshConfig ${name}`, err);
    }
  };

  return {
    description: `${MESH_CONFIG_PLURAL}.${MESH_CONFIG_GROUP}/${name}`,
    read,
    async write(params, signal) {
      const current = await get(signal);
      if (current === undefined || current.metadata.resourceVersion !== params.expectedVersion) {
        throw new MeshidError(
          "aborted",
          STORE_CONFLICT_CODE,
          `MeshConfig ${name} changed meanwhile`,
        );
      }
      const body: MeshConfigResource = {
        ...current,
        metadata: {
          ...current.metadata,
          annotations: {
            ...current.metadata.annotations,
            [UPDATED_AT_ANNOTATION]: params.updatedAt.toISOString(),
          },
        },
        spec: resourceSpecFromUpdate(params.spec),
      };
      try {
        // PUT carries metadata.resourceVersion: a change since `get` is a 409 Conflict.
        const written = await client.request<MeshConfigResource>({
          method: "PUT",
          path,
          body,
          ...(signal === undefined ? {} : { signal }),
        });
        return documentOf(written);
      } catch (err) {
        if (isKubeConflict(err)) {
          throw new MeshidError(
            "aborted",
            STORE_CONFLICT_CODE,
            `MeshConfig ${name} changed meanwhile`,
            { cause: err },
          );
        }
        throw unavailable(`cannot update MeshConfig ${name}`, err);
      }
    },
    async *watch(signal) {
      const queue: MeshConfigDocument[] = [];
      let wake: (() => void) | undefined;
      const push = (resource: MeshConfigResource): void => {
        if (resource.metadata.name !== name) return;
        lastUid = resource.metadata.uid ?? lastUid;
        queue.push(documentOf(resource));
        wake?.();
      };
      // The informer re-lists after failures itself (capped doubling backoff) and after 410.
      const informer = createKubeInformer<MeshConfigResource>({
        client,
        path: MESH_CONFIGS_PATH,
        onUpsert: push,
        onDelete: () => undefined,
        onError: (err, retryInMs) => {
          if (signal.aborted) return;
          logger.warn(
            { [LogKeys.err]: err instanceof Error ? err.message : String(err), retryInMs },
            "proxy-config: MeshConfig watch failed: restarting",
          );
        },
        retryInitialMs: WATCH_RETRY_INITIAL_MS,
        retryMaxMs: WATCH_RETRY_MAX_MS,
      });
      const onAbort = (): void => wake?.();
      signal.addEventListener("abort", onAbort, { once: true });
      await informer.start();
      try {
        while (!signal.aborted) {
          const next = queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
      } finally {
        signal.removeEventListener("abort", onAbort);
        await informer.stop();
      }
    },
    async reportInvalid(document, message) {
      await recordKubeEvent(client, {
        involvedObject: {
          apiVersion: `${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}`,
          kind: MESH_CONFIG_KIND,
          name,
          ...(lastUid === undefined ? {} : { uid: lastUid }),
          resourceVersion: document.version,
        },
        type: "Warning",
        reason: MESH_CONFIG_INVALID_REASON,
        message: `MeshConfig generation ${document.generation} is invalid and ignored (the last valid config stays in use): ${message}`,
        component: EVENT_COMPONENT,
      });
    },
  };
}
