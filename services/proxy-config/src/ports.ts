// Interfaces proxy-config's domain needs from the outside world; adapters implement them.
import type { AnnotationReport } from "./domain/effective-mode";
import type { MeshConfigSettings, MeshConfigUpdate } from "./domain/mesh-config";

/** Error code of a write that lost a race with another writer (the store changed meanwhile). */
export const STORE_CONFLICT_CODE = "proxy_config.store.conflict";

/**
 * The MeshConfig as a store holds it: the spec exactly as written (it may be invalid after a
 * `kubectl edit`), its generation and an opaque version for compare-and-swap writes.
 */
export interface MeshConfigDocument {
  /** Spec fields as strings (`mtlsMode`, `caTTL`, `svidTTL`, `caKeyType`); unset = default. */
  readonly spec: MeshConfigUpdate;
  /** Increases with every change of the spec. */
  readonly generation: number;
  /** When proxy-config last wrote it (undefined when written by someone else). */
  readonly updatedAt?: Date;
  /** Opaque version (resourceVersion, file content hash) for {@link MeshConfigStore.write}. */
  readonly version: string;
}

/** Parameters of {@link MeshConfigStore.write}. */
export interface WriteMeshConfigParams {
  /** The complete, validated spec. */
  readonly spec: Required<MeshConfigUpdate>;
  /** The version read before; the write fails with {@link STORE_CONFLICT_CODE} if it moved. */
  readonly expectedVersion: string;
  readonly updatedAt: Date;
}

/** Where the MeshConfig singleton lives: the `meshid.io/v1alpha1` resource or a YAML file. */
export interface MeshConfigStore {
  /** What the store is, for logs (`meshconfigs/meshid`, a file path). */
  readonly description: string;
  /**
   * Reads the MeshConfig, creating it with the defaults (generation 1) when it does not exist.
   * @throws MeshidError `unavailable` when the store cannot be reached.
   */
  read(signal?: AbortSignal): Promise<MeshConfigDocument>;
  /**
   * Replaces the spec if the stored version is still `expectedVersion`; the generation grows by
   * one. @throws MeshidError `aborted` {@link STORE_CONFLICT_CODE} when it changed meanwhile.
   */
  write(params: WriteMeshConfigParams, signal?: AbortSignal): Promise<MeshConfigDocument>;
  /**
   * Every change made by anyone (kubectl, other replicas, this one), newest state each time,
   * until `signal` aborts. Never throws: transient failures are retried inside.
   */
  watch(signal: AbortSignal): AsyncIterable<MeshConfigDocument>;
  /** Reports a stored spec that failed validation (Kubernetes Event; log line for files). */
  reportInvalid(document: MeshConfigDocument, message: string): Promise<void>;
}

/** Publishes `config.updated` (the CA applies the CA settings). */
export interface ConfigUpdatedPublisher {
  /**
   * Publishes the complete settings; `id` de-duplicates retries and replicas (JetStream window).
   * @throws MeshidError `unavailable` when NATS refuses.
   */
  publish(
    settings: MeshConfigSettings,
    options: { readonly rotateNow: boolean; readonly id: string },
  ): Promise<void>;
}

/** One container port of a pod. */
export interface PodPort {
  /** Container name. */
  readonly container: string;
  /** Port name (may be empty). */
  readonly name: string;
  readonly port: number;
}

/** What proxy-config needs to know about a pod. */
export interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** Value of the mtls-mode annotation, undefined when absent. */
  readonly mtlsModeAnnotation?: string;
  readonly ports: readonly PodPort[];
}

/** The pods of the cluster as an informer sees them. */
export interface PodDirectory {
  /** The pod, or undefined when it is not (yet) known. */
  get(namespace: string, name: string): PodInfo | undefined;
  /** Every known pod. */
  list(): readonly PodInfo[];
  /** Calls `listener` after a pod was added, changed or deleted; returns an unsubscribe. */
  subscribe(listener: (pod: PodInfo, change: "upsert" | "delete") => void): () => void;
}

/** Records Kubernetes Events about pods. */
export interface PodEventRecorder {
  /** Records a Warning Event on `pod`. Failures are the recorder's to log; never throws. */
  record(pod: PodInfo, report: AnnotationReport): Promise<void>;
}
