/** A JSON value as carried by the Kubernetes REST protocol. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/** A JSON object as carried by the Kubernetes REST protocol. */
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

/** The `metadata` of a stored Kubernetes object (only the fields the stand-in interprets). */
export interface KubeObjectMeta extends JsonObject {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
}

/** A Kubernetes object as stored and served by the API server stand-in. */
export interface KubeObject extends JsonObject {
  apiVersion?: string;
  kind?: string;
  metadata: KubeObjectMeta;
}

/** Returns true when `value` is a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Returns a deep copy of a JSON value (objects served to clients never alias the store). */
export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}

/** Returns true when two JSON values are structurally equal (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isJsonObject(a) && isJsonObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}
