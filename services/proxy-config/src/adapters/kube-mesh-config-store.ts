// MeshConfig as the cluster-scoped `meshid.io/v1alpha1` MeshConfig resource (singleton, default
// name `meshid`): compare-and-swap writes on resourceVersion, an informer for edits made by
// anyone (kubectl, other replicas), Warning Events on the resource for invalid specs.
import {
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  type KubeConfig,
  type KubernetesListObject,
} from "@kubernetes/client-node";
import { MeshidError } from "@meshid/errors";
import { isKubeConflict, isKubeNotFound, recordKubeEvent } from "@meshid/kube";
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
/** First delay before restarting a failed MeshConfig watch (doubles up to 30 s). */
export const WATCH_RETRY_INITIAL_MS = 500;
const WATCH_RETRY_MAX_MS = 30_000;

/** Dependencies of {@link createKubeMeshConfigStore}. */
export interface KubeMeshConfigStoreDeps {
  readonly kubeConfig: KubeConfig;
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
  const { kubeConfig, name, logger } = deps;
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const ref = {
    group: MESH_CONFIG_GROUP,
    version: MESH_CONFIG_VERSION,
    plural: MESH_CONFIG_PLURAL,
  } as const;
  let lastUid: string | undefined;

  const get = async (): Promise<MeshConfigResource | undefined> => {
    try {
      const resource = (await custom.getClusterCustomObject({
        ...ref,
        name,
      })) as MeshConfigResource;
      lastUid = resource.metadata.uid;
      return resource;
    } catch (err) {
      if (isKubeNotFound(err)) return undefined;
      throw unavailable(`cannot read MeshConfig ${name}`, err);
    }
  };

  const read = async (): Promise<MeshConfigDocument> => {
    const existing = await get();
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
      const created = (await custom.createClusterCustomObject({
        ...ref,
        body,
      })) as MeshConfigResource;
      logger.info({ name }, "proxy-config: created the MeshConfig resource with the defaults");
      return documentOf(created);
    } catch (err) {
      // Another replica created it first: use theirs.
      const raced = await get();
      if (raced !== undefined) return documentOf(raced);
      throw unavailable(`cannot create MeshConfig ${name}`, err);
    }
  };

  return {
    description: `${MESH_CONFIG_PLURAL}.${MESH_CONFIG_GROUP}/${name}`,
    read,
    async write(params) {
      const current = await get();
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
        const written = (await custom.replaceClusterCustomObject({
          ...ref,
          name,
          body,
        })) as MeshConfigResource;
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
      const list = async (): Promise<KubernetesListObject<MeshConfigResource>> =>
        (await custom.listClusterCustomObject(ref)) as KubernetesListObject<MeshConfigResource>;
      const informer = makeInformer<MeshConfigResource & { metadata: { name: string } }>(
        kubeConfig,
        `/apis/${MESH_CONFIG_GROUP}/${MESH_CONFIG_VERSION}/${MESH_CONFIG_PLURAL}`,
        list,
      );
      informer.on("add", push);
      informer.on("update", push);
      let retryMs = WATCH_RETRY_INITIAL_MS;
      let timer: NodeJS.Timeout | undefined;
      informer.on("error", (err: unknown) => {
        if (signal.aborted) return;
        logger.warn(
          { [LogKeys.err]: err instanceof Error ? err.message : String(err), retryInMs: retryMs },
          "proxy-config: MeshConfig watch failed: restarting",
        );
        timer = setTimeout(() => {
          if (!signal.aborted) informer.start().catch(() => undefined);
        }, retryMs);
        retryMs = Math.min(retryMs * 2, WATCH_RETRY_MAX_MS);
      });
      informer.on("connect", () => {
        retryMs = WATCH_RETRY_INITIAL_MS;
      });
      const onAbort = (): void => wake?.();
      signal.addEventListener("abort", onAbort, { once: true });
      await informer.start().catch(() => undefined);
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
        if (timer !== undefined) clearTimeout(timer);
        await informer.stop();
      }
    },
    async reportInvalid(document, message) {
      await recordKubeEvent(core, {
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
