// The interfaces the registrar's domain needs; adapters/ implements them.
import type { IdentityTemplate } from "./domain/cluster-spiffe-id";
import type {
  CurrentEntry,
  DesiredEntry,
  NamespaceInfo,
  NodeInfo,
  PodInfo,
  ServiceInfo,
} from "./domain/types";

/** An entry to write: what the registrar wants, with the id it should have at the CA. */
export interface EntryWrite extends DesiredEntry {
  readonly id: string;
}

/** Outcome of one item of a batch call. */
export type EntryItemResult =
  | { readonly ok: true; readonly entry: CurrentEntry }
  | {
      readonly ok: false;
      /** google.rpc.Code (5 NOT_FOUND, 6 ALREADY_EXISTS, …). */
      readonly code: number;
      readonly message: string;
      readonly errorCode: string;
    };

/** Outcome of one item of a batch delete. */
export type DeleteItemResult =
  | { readonly ok: true; readonly id: string }
  | { readonly ok: false; readonly id: string; readonly code: number; readonly message: string };

/** The CA's entry API as the registrar uses it. Failed calls throw MeshidErrors. */
export interface EntryClient {
  /** Every entry with owner `owner` (all pages). */
  listOwnedEntries(owner: string, signal?: AbortSignal): Promise<CurrentEntry[]>;
  /** Creates entries (tagged with `owner`); results in request order. */
  createEntries(
    entries: readonly EntryWrite[],
    owner: string,
    signal?: AbortSignal,
  ): Promise<EntryItemResult[]>;
  /** Rewrites entries by id (tagged with `owner`); results in request order. */
  updateEntries(
    entries: readonly EntryWrite[],
    owner: string,
    signal?: AbortSignal,
  ): Promise<EntryItemResult[]>;
  /** Deletes entries by id; results in request order. */
  deleteEntries(ids: readonly string[], signal?: AbortSignal): Promise<DeleteItemResult[]>;
  close(): void;
}

/** The pod of a registration event. */
export interface PodRef {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
}

/** Where pod.registered / pod.deregistered go (NATS, or nowhere). */
export interface RegistrationEvents {
  registered(pod: PodRef, spiffeId: string, entryId: string): void;
  deregistered(pod: PodRef, spiffeId: string, entryId: string): void;
}

/** A ClusterSPIFFEID that cannot be used, or a template that failed for a pod. */
export interface TemplateProblem {
  readonly template: string;
  readonly templateUid: string;
  /** The resource's resourceVersion (problems of a changed resource are reported again). */
  readonly templateRevision: string;
  readonly message: string;
}

/** Reports template problems (Kubernetes Event + log + metric). Never throws. */
export interface TemplateProblemReporter {
  report(problem: TemplateProblem): void;
}

/** The registrar's cached view of the cluster, kept by the watchers. */
export interface ClusterView {
  /** True once every watcher completed its first list. */
  synced(): boolean;
  pods(): Iterable<PodInfo>;
  pod(uid: string): PodInfo | undefined;
  node(name: string): NodeInfo | undefined;
  namespace(name: string): NamespaceInfo | undefined;
  services(namespace: string): readonly ServiceInfo[];
  /** The usable ClusterSPIFFEIDs, and the problems of those that exist but are unusable. */
  templates(): {
    readonly valid: readonly IdentityTemplate[];
    readonly invalid: readonly TemplateProblem[];
  };
}

/** Time source of the reconciler. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early (without rejecting) once `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}
