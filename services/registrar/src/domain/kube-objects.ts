// Raw Kubernetes API objects (as JSON) turned into the registrar's checked views. Pure and
// defensive: a malformed object yields an error message, never an exception.
import type { NamespaceInfo, NodeInfo, PodInfo, ServiceInfo } from "./types";

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isRecord(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === "string") out[k] = v;
  return out;
}

function metaOf(object: unknown): Record<string, unknown> | undefined {
  return isRecord(object) && isRecord(object.metadata) ? object.metadata : undefined;
}

function str(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** A pod's view, or a message saying why the object is not a usable pod. */
export function podInfoFromObject(object: unknown): PodInfo | string {
  const meta = metaOf(object);
  if (meta === undefined) return "pod without metadata";
  const uid = str(meta.uid);
  const name = str(meta.name);
  const namespace = str(meta.namespace);
  if (uid === "" || name === "" || namespace === "") {
    return "pod without metadata.uid, metadata.name or metadata.namespace";
  }
  const record = object as Record<string, unknown>;
  const spec = isRecord(record.spec) ? record.spec : {};
  const status = isRecord(record.status) ? record.status : {};
  const phase = str(status.phase);
  return {
    uid,
    name,
    namespace,
    labels: stringMap(meta.labels),
    annotations: stringMap(meta.annotations),
    serviceAccountName: str(spec.serviceAccountName) || "default",
    nodeName: str(spec.nodeName),
    terminated: phase === "Succeeded" || phase === "Failed",
  };
}

/** A node's view, or a message when it has no name or UID. */
export function nodeInfoFromObject(object: unknown): NodeInfo | string {
  const meta = metaOf(object);
  const name = str(meta?.name);
  const uid = str(meta?.uid);
  if (name === "" || uid === "") return "node without metadata.name or metadata.uid";
  return { name, uid, labels: stringMap(meta?.labels) };
}

/** A Service's view, or a message when it has no name or namespace. */
export function serviceInfoFromObject(object: unknown): ServiceInfo | string {
  const meta = metaOf(object);
  const name = str(meta?.name);
  const namespace = str(meta?.namespace);
  if (name === "" || namespace === "") return "service without metadata.name or namespace";
  const spec = isRecord(object) && isRecord(object.spec) ? object.spec : {};
  return { name, namespace, selector: stringMap(spec.selector) };
}

/** A namespace's view, or a message when it has no name. */
export function namespaceInfoFromObject(object: unknown): NamespaceInfo | string {
  const meta = metaOf(object);
  const name = str(meta?.name);
  if (name === "") return "namespace without metadata.name";
  return { name, labels: stringMap(meta?.labels) };
}
