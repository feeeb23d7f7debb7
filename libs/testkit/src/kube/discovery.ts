import { isJsonObject, type JsonObject, type KubeObject } from "./types";

/** One REST resource the API server stand-in serves (the shape of an APIResource, plus extras). */
export interface KubeResourceDefinition {
  /** API group; `""` for core. */
  readonly group: string;
  readonly version: string;
  /** Plural resource name used in URLs (`pods`). */
  readonly plural: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  /** Whether a `status` subresource exists (main-resource writes then keep the stored status). */
  readonly statusSubresource: boolean;
  /** Verbs advertised in discovery; `create` only for review-style resources. */
  readonly verbs: readonly string[];
  /** Field-selector fields beyond `metadata.name` and `metadata.namespace`. */
  readonly fieldSelectors: readonly string[];
  /** True for custom resources: list items carry kind/apiVersion and updates need a resourceVersion. */
  readonly custom: boolean;
}

const CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

function builtin(
  group: string,
  version: string,
  plural: string,
  kind: string,
  namespaced: boolean,
  extra: Partial<KubeResourceDefinition> = {},
): KubeResourceDefinition {
  return {
    group,
    version,
    plural,
    singular: kind.toLowerCase(),
    kind,
    namespaced,
    statusSubresource: false,
    verbs: CRUD,
    fieldSelectors: [],
    custom: false,
    ...extra,
  };
}

/** The resources the stand-in serves before any CustomResourceDefinition is applied. */
export const BUILTIN_RESOURCES: readonly KubeResourceDefinition[] = [
  builtin("", "v1", "pods", "Pod", true, {
    shortNames: ["po"],
    statusSubresource: true,
    fieldSelectors: [
      "spec.nodeName",
      "spec.serviceAccountName",
      "spec.schedulerName",
      "spec.restartPolicy",
      "status.phase",
      "status.podIP",
      "status.nominatedNodeName",
    ],
  }),
  builtin("", "v1", "nodes", "Node", false, {
    shortNames: ["no"],
    statusSubresource: true,
    fieldSelectors: ["spec.unschedulable"],
  }),
  builtin("", "v1", "namespaces", "Namespace", false, {
    shortNames: ["ns"],
    statusSubresource: true,
    fieldSelectors: ["status.phase"],
  }),
  builtin("", "v1", "services", "Service", true, { shortNames: ["svc"], statusSubresource: true }),
  builtin("", "v1", "endpoints", "Endpoints", true, { singular: "endpoints", shortNames: ["ep"] }),
  builtin("", "v1", "configmaps", "ConfigMap", true, { shortNames: ["cm"] }),
  builtin("", "v1", "secrets", "Secret", true, { fieldSelectors: ["type"] }),
  builtin("", "v1", "serviceaccounts", "ServiceAccount", true, { shortNames: ["sa"] }),
  builtin("", "v1", "events", "Event", true, {
    shortNames: ["ev"],
    fieldSelectors: [
      "involvedObject.kind",
      "involvedObject.namespace",
      "involvedObject.name",
      "involvedObject.uid",
      "involvedObject.apiVersion",
      "involvedObject.resourceVersion",
      "involvedObject.fieldPath",
      "reason",
      "reportingComponent",
      "source",
      "type",
    ],
  }),
  builtin("events.k8s.io", "v1", "events", "Event", true, {
    shortNames: ["ev"],
    fieldSelectors: ["regarding.kind", "regarding.name", "regarding.namespace", "reason", "type"],
  }),
  builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
  builtin(
    "admissionregistration.k8s.io",
    "v1",
    "validatingwebhookconfigurations",
    "ValidatingWebhookConfiguration",
    false,
  ),
  builtin(
    "admissionregistration.k8s.io",
    "v1",
    "mutatingwebhookconfigurations",
    "MutatingWebhookConfiguration",
    false,
  ),
  builtin("apiregistration.k8s.io", "v1", "apiservices", "APIService", false, {
    statusSubresource: true,
  }),
  builtin(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    false,
    {
      shortNames: ["crd", "crds"],
      statusSubresource: true,
    },
  ),
  builtin("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", false, {
    verbs: ["create"],
  }),
  builtin("meshid.io", "v1alpha1", "clusterspiffeids", "ClusterSPIFFEID", false, {
    statusSubresource: true,
    custom: true,
  }),
  builtin("meshid.io", "v1alpha1", "meshconfigs", "MeshConfig", false, {
    statusSubresource: true,
    custom: true,
  }),
];

/** Returns `group/version`, or `version` for the core group. */
export function groupVersionOf(def: Pick<KubeResourceDefinition, "group" | "version">): string {
  return def.group === "" ? def.version : `${def.group}/${def.version}`;
}

/**
 * Returns the resource definitions a CustomResourceDefinition object declares (one per served
 * version), or an empty list when the object is not a well-formed v1 CRD.
 */
export function resourcesFromCrd(crd: KubeObject): KubeResourceDefinition[] {
  const spec = crd.spec;
  if (!isJsonObject(spec) || !isJsonObject(spec.names) || !Array.isArray(spec.versions)) return [];
  const group = typeof spec.group === "string" ? spec.group : "";
  const names = spec.names;
  if (typeof names.plural !== "string" || typeof names.kind !== "string") return [];
  const result: KubeResourceDefinition[] = [];
  for (const v of spec.versions) {
    if (!isJsonObject(v) || typeof v.name !== "string" || v.served === false) continue;
    const sub = isJsonObject(v.subresources) ? v.subresources : {};
    result.push({
      group,
      version: v.name,
      plural: names.plural,
      singular: typeof names.singular === "string" ? names.singular : names.kind.toLowerCase(),
      kind: names.kind,
      namespaced: spec.scope !== "Cluster",
      shortNames: Array.isArray(names.shortNames)
        ? names.shortNames.filter((s): s is string => typeof s === "string")
        : [],
      statusSubresource: isJsonObject(sub.status),
      verbs: CRUD,
      fieldSelectors: [],
      custom: true,
    });
  }
  return result;
}

/** Builds the `/api` APIVersions document. */
export function apiVersionsDocument(serverAddress: string): JsonObject {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function groupDocument(group: string, defs: readonly KubeResourceDefinition[]): JsonObject {
  const versions = [...new Set(defs.filter((d) => d.group === group).map((d) => d.version))];
  const entries = versions.map((version) => ({ groupVersion: `${group}/${version}`, version }));
  return { name: group, versions: entries, preferredVersion: entries[0] ?? null };
}

/** Builds the `/apis` APIGroupList document. */
export function apiGroupListDocument(defs: readonly KubeResourceDefinition[]): JsonObject {
  const groups = [...new Set(defs.map((d) => d.group).filter((g) => g !== ""))];
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: groups.map((g) => groupDocument(g, defs)),
  };
}

/** Builds the `/apis/<group>` APIGroup document, or undefined for an unknown group. */
export function apiGroupDocument(
  group: string,
  defs: readonly KubeResourceDefinition[],
): JsonObject | undefined {
  if (!defs.some((d) => d.group === group)) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...groupDocument(group, defs) };
}

/** Builds the APIResourceList for one group/version, or undefined when nothing is served there. */
export function apiResourceListDocument(
  group: string,
  version: string,
  defs: readonly KubeResourceDefinition[],
): JsonObject | undefined {
  const served = defs.filter((d) => d.group === group && d.version === version);
  if (served.length === 0) return undefined;
  const resources: JsonObject[] = [];
  for (const d of served) {
    resources.push({
      name: d.plural,
      singularName: d.singular,
      namespaced: d.namespaced,
      kind: d.kind,
      verbs: [...d.verbs],
      ...(d.shortNames && d.shortNames.length > 0 ? { shortNames: [...d.shortNames] } : {}),
    });
    if (d.statusSubresource) {
      resources.push({
        name: `${d.plural}/status`,
        singularName: "",
        namespaced: d.namespaced,
        kind: d.kind,
        verbs: ["get", "patch", "update"],
      });
    }
  }
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: groupVersionOf({ group, version }),
    resources,
  };
}
