import { randomUUID } from "node:crypto";
import {
  BUILTIN_RESOURCES,
  groupVersionOf,
  resourcesFromCrd,
  type KubeResourceDefinition,
} from "./discovery";
import {
  alreadyExistsError,
  conflictError,
  expiredError,
  invalidError,
  KubeApiError,
  notFoundError,
} from "./status";
import { cloneJson, isJsonObject, jsonEqual, type KubeObject } from "./types";

/** The type of a watch event. */
export type KubeWatchEventType = "ADDED" | "MODIFIED" | "DELETED";

/** One change recorded in the store's history (what a watch replays and streams). */
export interface KubeStoreEvent {
  readonly type: KubeWatchEventType;
  /** The global resourceVersion this change produced. */
  readonly resourceVersion: number;
  readonly resource: KubeResourceDefinition;
  /** The object after the change (for DELETED: the object as deleted). */
  readonly object: KubeObject;
  /** The object before the change (MODIFIED and DELETED), for selector transitions. */
  readonly previous: KubeObject | undefined;
}

/** Options for {@link createKubeStore}. */
export interface KubeStoreOptions {
  /** Events kept for watch replay; older ones are dropped (then 410 Expired). Default 10 000. */
  readonly historyLimit?: number;
  /** Create a missing namespace on first use instead of failing with 404. Default false. */
  readonly autoCreateNamespaces?: boolean;
  /**
   * Pods bound to a node terminate gracefully like on a real cluster: a delete sets
   * deletionTimestamp (MODIFIED) and the pod stays until deleted again with
   * `gracePeriodSeconds: 0` (what the kubelet does). Default false: deletion is immediate.
   */
  readonly gracefulPodDeletion?: boolean;
  /** Clock for creationTimestamp/deletionTimestamp. Default `() => new Date()`. */
  readonly now?: () => Date;
}

/** Where a write came from: the REST API applies the real server's strategies, tests do not. */
export type KubeWriteOrigin = "rest" | "test";

/** Parameters of {@link KubeStore.create}. */
export interface CreateObjectParams {
  readonly resource: KubeResourceDefinition;
  readonly object: KubeObject;
  readonly origin: KubeWriteOrigin;
  readonly dryRun?: boolean;
}

/** Parameters of {@link KubeStore.update}. */
export interface UpdateObjectParams {
  readonly resource: KubeResourceDefinition;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly object: KubeObject;
  readonly origin: KubeWriteOrigin;
  /** `"status"` writes only `.status`; undefined writes everything else. */
  readonly subresource?: string;
  readonly dryRun?: boolean;
}

/** Parameters of {@link KubeStore.remove}. */
export interface DeleteObjectParams {
  readonly resource: KubeResourceDefinition;
  readonly namespace: string | undefined;
  readonly name: string;
  readonly preconditions?: { readonly uid?: string; readonly resourceVersion?: string };
  /** DeleteOptions.gracePeriodSeconds (only pods with graceful deletion use it). */
  readonly gracePeriodSeconds?: number;
  readonly dryRun?: boolean;
}

/** The in-memory object store behind the API server stand-in (an etcd-like revisioned map). */
export interface KubeStore {
  /** Every resource served right now (built-ins plus applied CRDs). */
  resources(): readonly KubeResourceDefinition[];
  /** Finds a resource by URL parts; undefined when not served. */
  resourceByPath(
    group: string,
    version: string,
    plural: string,
  ): KubeResourceDefinition | undefined;
  /**
   * Finds a resource by kind (`Pod`), plural (`pods`) or short name, optionally narrowed by
   * apiVersion. Throws `KubeApiError` 404 when none matches.
   */
  resolve(kind: string, apiVersion?: string): KubeResourceDefinition;
  /** The latest global resourceVersion. */
  currentResourceVersion(): number;
  /** The resourceVersion below which history is gone (watching from older fails with 410). */
  compactedResourceVersion(): number;
  get(resource: KubeResourceDefinition, namespace: string | undefined, name: string): KubeObject;
  tryGet(
    resource: KubeResourceDefinition,
    namespace: string | undefined,
    name: string,
  ): KubeObject | undefined;
  /** All objects of a resource (in one namespace when given), sorted by namespace/name. */
  list(resource: KubeResourceDefinition, namespace?: string): KubeObject[];
  create(params: CreateObjectParams): KubeObject;
  update(params: UpdateObjectParams): KubeObject;
  remove(params: DeleteObjectParams): KubeObject;
  /** Recorded events with resourceVersion > `after`; throws 410 when `after` was compacted. */
  eventsSince(after: number): KubeStoreEvent[];
  /**
   * Drops all retained history and advances the revision: a watch or continue token from any
   * resourceVersion handed out before then gets 410 Expired.
   */
  compact(): void;
  /** Calls `listener` synchronously for every change; returns the unsubscribe function. */
  subscribe(listener: (event: KubeStoreEvent) => void): () => void;
  /** Makes sure a namespace object exists (used for auto-creation and the default set). */
  ensureNamespace(name: string): void;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789";

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ""}/${name}`;
}

function storageKey(def: KubeResourceDefinition): string {
  return `${def.group}/${def.plural}`;
}

/** The status the real API server's create strategy gives a new object, if it resets it. */
function statusOnCreate(def: KubeResourceDefinition, object: KubeObject): KubeObject["status"] {
  if (def.group === "" && def.plural === "pods") {
    return { phase: "Pending", qosClass: "BestEffort" };
  }
  if (def.group === "" && def.plural === "namespaces") return { phase: "Active" };
  if (def.group === "" && def.plural === "services") return { loadBalancer: {} };
  if (def.group === "apiextensions.k8s.io" && def.plural === "customresourcedefinitions") {
    const spec = isJsonObject(object.spec) ? object.spec : {};
    const versions = Array.isArray(spec.versions) ? spec.versions.filter(isJsonObject) : [];
    const storage = versions.find((v) => v.storage === true) ?? versions[0];
    return {
      acceptedNames: spec.names ?? {},
      conditions: [
        {
          type: "NamesAccepted",
          status: "True",
          reason: "NoConflicts",
          message: "no conflicts found",
        },
        {
          type: "Established",
          status: "True",
          reason: "InitialNamesAccepted",
          message: "the initial names have been accepted",
        },
      ],
      storedVersions: storage && typeof storage.name === "string" ? [storage.name] : [],
    };
  }
  if (def.custom && def.statusSubresource) return undefined;
  return object.status;
}

/** Applies the defaults the real API server (defaulting + ServiceAccount admission) gives a pod. */
function defaultPod(def: KubeResourceDefinition, object: KubeObject): void {
  if (def.group !== "" || def.plural !== "pods") return;
  const spec = isJsonObject(object.spec) ? object.spec : (object.spec = {});
  const sa =
    typeof spec.serviceAccountName === "string" && spec.serviceAccountName !== ""
      ? spec.serviceAccountName
      : typeof spec.serviceAccount === "string" && spec.serviceAccount !== ""
        ? spec.serviceAccount
        : "default";
  spec.serviceAccountName = sa;
  spec.serviceAccount = sa;
  spec.restartPolicy ??= "Always";
  spec.dnsPolicy ??= "ClusterFirst";
  spec.schedulerName ??= "default-scheduler";
  spec.terminationGracePeriodSeconds ??= 30;
  spec.enableServiceLinks ??= true;
  spec.securityContext ??= {};
  spec.priority ??= 0;
  const all = [
    ...(Array.isArray(spec.initContainers) ? spec.initContainers : []),
    ...(Array.isArray(spec.containers) ? spec.containers : []),
  ];
  for (const c of all) {
    if (!isJsonObject(c)) continue;
    const image = typeof c.image === "string" ? c.image : "";
    const tagged = /:[^/]+$/.test(image) || image.includes("@");
    c.imagePullPolicy ??= !tagged || image.endsWith(":latest") ? "Always" : "IfNotPresent";
    c.terminationMessagePath ??= "/dev/termination-log";
    c.terminationMessagePolicy ??= "File";
    c.resources ??= {};
  }
}

/** The real API server's validation of a pod's containers, reduced to what tests trip over. */
function validatePodOnCreate(def: KubeResourceDefinition, object: KubeObject): void {
  if (def.group !== "" || def.plural !== "pods") return;
  const spec = isJsonObject(object.spec) ? object.spec : {};
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  if (containers.length === 0) {
    throw invalidError(def, object.metadata.name ?? "", "spec.containers", "Required value");
  }
  containers.forEach((c, i) => {
    if (!isJsonObject(c) || typeof c.name !== "string" || c.name === "") {
      throw invalidError(
        def,
        object.metadata.name ?? "",
        `spec.containers[${i}].name`,
        "Required value",
      );
    }
  });
}

let nextClusterIp = 10;

/** Gives a new Service a cluster IP from 10.96.0.0/12, as the real allocator does. */
function assignClusterIp(def: KubeResourceDefinition, object: KubeObject): void {
  if (def.group !== "" || def.plural !== "services") return;
  const spec = isJsonObject(object.spec) ? object.spec : (object.spec = {});
  spec.type ??= "ClusterIP";
  if (spec.type === "ExternalName" || spec.clusterIP === "None") return;
  if (typeof spec.clusterIP !== "string" || spec.clusterIP === "") {
    const n = nextClusterIp++;
    spec.clusterIP = `10.96.${Math.floor(n / 250) % 250}.${n % 250}`;
  }
  spec.clusterIPs = [spec.clusterIP];
}

/** True when the change between two versions should bump metadata.generation. */
function specChanged(before: KubeObject, after: KubeObject): boolean {
  const strip = (o: KubeObject) => {
    const copy: Record<string, unknown> = { ...o };
    delete copy.metadata;
    delete copy.status;
    return copy;
  };
  return !jsonEqual(strip(before), strip(after));
}

/** Creates an empty store holding the default namespaces. */
export function createKubeStore(options: KubeStoreOptions = {}): KubeStore {
  const historyLimit = options.historyLimit ?? 10_000;
  const now = options.now ?? (() => new Date());
  const defs: KubeResourceDefinition[] = [...BUILTIN_RESOURCES];
  const data = new Map<string, Map<string, KubeObject>>();
  const history: KubeStoreEvent[] = [];
  const listeners = new Set<(event: KubeStoreEvent) => void>();
  let revision = 1;
  let compacted = 1;

  const bucket = (def: KubeResourceDefinition): Map<string, KubeObject> => {
    const key = storageKey(def);
    let map = data.get(key);
    if (!map) {
      map = new Map();
      data.set(key, map);
    }
    return map;
  };

  const record = (
    type: KubeWatchEventType,
    def: KubeResourceDefinition,
    object: KubeObject,
    previous: KubeObject | undefined,
  ): void => {
    const event: KubeStoreEvent = {
      type,
      resourceVersion: Number(object.metadata.resourceVersion),
      resource: def,
      object: cloneJson(object),
      previous: previous ? cloneJson(previous) : undefined,
    };
    history.push(event);
    while (history.length > historyLimit) {
      const dropped = history.shift()!;
      compacted = dropped.resourceVersion;
    }
    for (const listener of [...listeners]) listener(event);
  };

  const namespaceDef = (): KubeResourceDefinition =>
    defs.find((d) => d.group === "" && d.plural === "namespaces")!;

  const withTypeMeta = (def: KubeResourceDefinition, object: KubeObject): KubeObject => ({
    ...object,
    apiVersion: groupVersionOf(def),
    kind: def.kind,
  });

  const registerCrd = (crd: KubeObject): void => {
    for (const def of resourcesFromCrd(crd)) {
      const existing = defs.findIndex(
        (d) => d.group === def.group && d.version === def.version && d.plural === def.plural,
      );
      if (existing >= 0) defs[existing] = def;
      else defs.push(def);
    }
  };

  const checkNamespace = (def: KubeResourceDefinition, namespace: string | undefined): void => {
    if (!def.namespaced) return;
    if (namespace === undefined || namespace === "") {
      throw new KubeApiError(400, "the server could not find the requested resource", "BadRequest");
    }
    if (bucket(namespaceDef()).has(keyOf(undefined, namespace))) return;
    if (options.autoCreateNamespaces) {
      store.ensureNamespace(namespace);
      return;
    }
    throw notFoundError(namespaceDef(), namespace);
  };

  const finishDelete = (
    def: KubeResourceDefinition,
    current: KubeObject,
    dryRun: boolean | undefined,
  ): KubeObject => {
    if (dryRun) return cloneJson(current);
    const map = bucket(def);
    map.delete(keyOf(current.metadata.namespace, current.metadata.name!));
    const deleted = cloneJson(current);
    deleted.metadata.resourceVersion = String(++revision);
    record("DELETED", def, deleted, current);
    if (def.group === "apiextensions.k8s.io" && def.plural === "customresourcedefinitions") {
      // Deleting a CRD deletes its objects and stops serving its resources.
      for (const gone of resourcesFromCrd(current)) {
        for (const obj of store.list(gone)) finishDelete(gone, obj, false);
        const index = defs.findIndex(
          (d) => d.group === gone.group && d.version === gone.version && d.plural === gone.plural,
        );
        if (index >= 0) defs.splice(index, 1);
      }
    }
    if (def.group === "" && def.plural === "namespaces") {
      for (const other of defs) {
        if (!other.namespaced) continue;
        for (const obj of store.list(other, current.metadata.name)) {
          finishDelete(other, obj, false);
        }
      }
    }
    return deleted;
  };

  const store: KubeStore = {
    resources: () => defs,

    resourceByPath: (group, version, plural) =>
      defs.find((d) => d.group === group && d.version === version && d.plural === plural),

    resolve(kind, apiVersion) {
      const lower = kind.toLowerCase();
      const candidates = defs.filter(
        (d) =>
          (apiVersion === undefined || groupVersionOf(d) === apiVersion) &&
          (d.kind.toLowerCase() === lower ||
            d.plural === lower ||
            d.singular === lower ||
            (d.shortNames ?? []).includes(lower)),
      );
      const found = candidates[0];
      if (!found) {
        throw new KubeApiError(404, `no resource for kind "${kind}" ${apiVersion ?? ""}`.trim());
      }
      return found;
    },

    currentResourceVersion: () => revision,
    compactedResourceVersion: () => compacted,

    tryGet(def, namespace, name) {
      const found = bucket(def).get(keyOf(def.namespaced ? namespace : undefined, name));
      return found ? withTypeMeta(def, cloneJson(found)) : undefined;
    },

    get(def, namespace, name) {
      const found = store.tryGet(def, namespace, name);
      if (!found) throw notFoundError(def, name);
      return found;
    },

    list(def, namespace) {
      const items = [...bucket(def).values()].filter(
        (o) => !def.namespaced || namespace === undefined || o.metadata.namespace === namespace,
      );
      items.sort((a, b) =>
        keyOf(a.metadata.namespace, a.metadata.name!).localeCompare(
          keyOf(b.metadata.namespace, b.metadata.name!),
        ),
      );
      return items.map((o) => withTypeMeta(def, cloneJson(o)));
    },

    create({ resource: def, object, origin, dryRun }) {
      const obj = withTypeMeta(def, cloneJson(object));
      const meta = (obj.metadata = isJsonObject(obj.metadata) ? obj.metadata : {});
      if (!def.namespaced) delete meta.namespace;
      if (origin === "rest" && meta.resourceVersion !== undefined && meta.resourceVersion !== "") {
        throw new KubeApiError(500, "resourceVersion should not be set on objects to be created");
      }
      if (!meta.name && meta.generateName) {
        let suffix = "";
        for (let i = 0; i < 5; i++) {
          suffix +=
            GENERATE_NAME_ALPHABET[Math.floor(Math.random() * GENERATE_NAME_ALPHABET.length)];
        }
        meta.name = meta.generateName + suffix;
      }
      if (!meta.name)
        throw invalidError(
          def,
          "",
          "metadata.name",
          "Required value: name or generateName is required",
        );
      const nameRule = def.plural === "namespaces" ? DNS1123_LABEL : DNS1123_SUBDOMAIN;
      if (!nameRule.test(meta.name) || meta.name.length > 253) {
        throw invalidError(
          def,
          meta.name,
          "metadata.name",
          `Invalid value: "${meta.name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`,
        );
      }
      if (origin === "test" && def.namespaced && meta.namespace)
        store.ensureNamespace(meta.namespace);
      checkNamespace(def, meta.namespace);
      if (origin === "rest") validatePodOnCreate(def, obj);
      // Defaulting runs for test-side writes too: they stand for objects that went through an
      // API server.
      defaultPod(def, obj);
      assignClusterIp(def, obj);
      const map = bucket(def);
      const key = keyOf(meta.namespace, meta.name);
      if (map.has(key)) throw alreadyExistsError(def, meta.name);
      if (origin === "rest") {
        const status = statusOnCreate(def, obj);
        if (status === undefined) delete obj.status;
        else obj.status = status;
        delete meta.deletionTimestamp;
      }
      if (def.group === "" && def.plural === "namespaces") {
        meta.labels = { ...(meta.labels ?? {}), "kubernetes.io/metadata.name": meta.name };
      }
      meta.uid = typeof meta.uid === "string" && origin === "test" ? meta.uid : randomUUID();
      meta.creationTimestamp =
        typeof meta.creationTimestamp === "string" && origin === "test"
          ? meta.creationTimestamp
          : now()
              .toISOString()
              .replace(/\.\d{3}Z$/, "Z");
      meta.generation = 1;
      if (dryRun) return cloneJson(obj);
      meta.resourceVersion = String(++revision);
      map.set(key, obj);
      record("ADDED", def, obj, undefined);
      if (def.group === "" && def.plural === "namespaces") {
        // What the service-account controller does for every new namespace.
        store.create({
          resource: store.resolve("serviceaccounts", "v1"),
          object: { metadata: { name: "default", namespace: meta.name } },
          origin: "rest",
        });
      }
      if (def.group === "apiextensions.k8s.io" && def.plural === "customresourcedefinitions") {
        registerCrd(obj);
      }
      return cloneJson(obj);
    },

    update({ resource: def, namespace, name, object, origin, subresource, dryRun }) {
      const ns = def.namespaced ? namespace : undefined;
      const map = bucket(def);
      const key = keyOf(ns, name);
      const current = map.get(key);
      if (!current) throw notFoundError(def, name);
      const incoming = cloneJson(object);
      const meta = isJsonObject(incoming.metadata)
        ? incoming.metadata
        : ({} as KubeObject["metadata"]);
      if (meta.name !== undefined && meta.name !== name) {
        throw new KubeApiError(
          400,
          `the name of the object (${meta.name}) does not match the name on the URL (${name})`,
          "BadRequest",
        );
      }
      const rv = meta.resourceVersion;
      if (rv !== undefined && rv !== "" && rv !== current.metadata.resourceVersion) {
        throw conflictError(def, name);
      }
      if ((rv === undefined || rv === "") && def.custom && origin === "rest") {
        throw invalidError(
          def,
          name,
          "metadata.resourceVersion",
          "Invalid value: 0x0: must be specified for an update",
        );
      }
      let next: KubeObject;
      if (subresource === "status") {
        next = cloneJson(current);
        if (incoming.status === undefined) delete next.status;
        else next.status = incoming.status;
      } else {
        next = withTypeMeta(def, incoming);
        next.metadata = {
          ...meta,
          name,
          ...(ns !== undefined ? { namespace: ns } : {}),
          uid: current.metadata.uid,
          creationTimestamp: current.metadata.creationTimestamp,
          resourceVersion: current.metadata.resourceVersion,
          generation: current.metadata.generation,
          ...(current.metadata.deletionTimestamp !== undefined
            ? { deletionTimestamp: current.metadata.deletionTimestamp }
            : {}),
        };
        if (!def.namespaced) delete next.metadata.namespace;
        if (origin === "rest" && def.statusSubresource) {
          if (current.status === undefined) delete next.status;
          else next.status = cloneJson(current.status);
        }
        defaultPod(def, next);
        if (specChanged(current, next))
          next.metadata.generation = (current.metadata.generation ?? 1) + 1;
      }
      if (jsonEqual(next, current)) return withTypeMeta(def, cloneJson(current));
      if (
        next.metadata.deletionTimestamp !== undefined &&
        (next.metadata.finalizers ?? []).length === 0
      ) {
        return finishDelete(def, next, dryRun);
      }
      if (dryRun) return cloneJson(next);
      next.metadata.resourceVersion = String(++revision);
      map.set(key, next);
      record("MODIFIED", def, next, current);
      if (def.group === "apiextensions.k8s.io" && def.plural === "customresourcedefinitions") {
        registerCrd(next);
      }
      return cloneJson(next);
    },

    remove({ resource: def, namespace, name, preconditions, gracePeriodSeconds, dryRun }) {
      const ns = def.namespaced ? namespace : undefined;
      const map = bucket(def);
      const current = map.get(keyOf(ns, name));
      if (!current) throw notFoundError(def, name);
      if (preconditions?.uid !== undefined && preconditions.uid !== current.metadata.uid) {
        throw new KubeApiError(
          409,
          `Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${current.metadata.uid}`,
          "Conflict",
        );
      }
      if (
        preconditions?.resourceVersion !== undefined &&
        preconditions.resourceVersion !== current.metadata.resourceVersion
      ) {
        throw new KubeApiError(
          409,
          `Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`,
          "Conflict",
        );
      }
      const spec = isJsonObject(current.spec) ? current.spec : {};
      const graceful =
        options.gracefulPodDeletion === true &&
        def.group === "" &&
        def.plural === "pods" &&
        typeof spec.nodeName === "string" &&
        spec.nodeName !== "";
      const grace = graceful
        ? (gracePeriodSeconds ??
          (typeof spec.terminationGracePeriodSeconds === "number"
            ? spec.terminationGracePeriodSeconds
            : 30))
        : 0;
      const hasFinalizers = (current.metadata.finalizers ?? []).length > 0;
      if (hasFinalizers || grace > 0) {
        if (current.metadata.deletionTimestamp !== undefined) return cloneJson(current);
        const marked = cloneJson(current);
        marked.metadata.deletionTimestamp = new Date(now().getTime() + grace * 1000)
          .toISOString()
          .replace(/\.\d{3}Z$/, "Z");
        marked.metadata.deletionGracePeriodSeconds = grace;
        if (dryRun) return marked;
        marked.metadata.resourceVersion = String(++revision);
        map.set(keyOf(ns, name), marked);
        record("MODIFIED", def, marked, current);
        return cloneJson(marked);
      }
      return finishDelete(def, current, dryRun);
    },

    eventsSince(after) {
      if (after < compacted) throw expiredError(after, compacted);
      return history.filter((e) => e.resourceVersion > after);
    },

    compact() {
      // Advancing the revision makes every resourceVersion handed out so far too old, while
      // lists taken afterwards get a fresh one that can be watched from.
      history.length = 0;
      revision++;
      compacted = revision;
    },

    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    ensureNamespace(name) {
      const def = namespaceDef();
      if (bucket(def).has(keyOf(undefined, name))) return;
      store.create({
        resource: def,
        object: { apiVersion: "v1", kind: "Namespace", metadata: { name } },
        origin: "rest",
      });
    },
  };

  for (const ns of ["default", "kube-system", "kube-public", "kube-node-lease"]) {
    store.ensureNamespace(ns);
  }
  return store;
}
