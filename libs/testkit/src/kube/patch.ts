import { MeshidError } from "@meshid/errors";
import { cloneJson, isJsonObject, jsonEqual, type JsonObject, type JsonValue } from "./types";

function patchError(message: string, code = "kube.patch.invalid"): MeshidError {
  return new MeshidError("invalid_argument", code, message);
}

/**
 * Applies an RFC 7386 JSON merge patch (`application/merge-patch+json`) and returns the result.
 * `null` deletes a key; arrays replace whole. The inputs are not modified.
 */
export function applyMergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const result: JsonObject = isJsonObject(target) ? cloneJson(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    if (value === null) {
      delete result[key];
    } else {
      result[key] = applyMergePatch(result[key], value);
    }
  }
  return result;
}

/** The merge key of list fields the strategic merge patch merges instead of replacing. */
const STRATEGIC_MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: "name",
  initContainers: "name",
  ephemeralContainers: "name",
  env: "name",
  volumes: "name",
  imagePullSecrets: "name",
  volumeMounts: "mountPath",
  volumeDevices: "devicePath",
  ports: "containerPort",
  conditions: "type",
  ownerReferences: "uid",
  hostAliases: "ip",
  secrets: "name",
  webhooks: "name",
};

/** List fields of primitives the strategic merge patch unions instead of replacing. */
const STRATEGIC_SET_FIELDS: ReadonlySet<string> = new Set(["finalizers"]);

function strategicMergeList(
  field: string,
  target: JsonValue[] | undefined,
  patch: JsonValue[],
): JsonValue[] {
  const key = STRATEGIC_MERGE_KEYS[field];
  if (STRATEGIC_SET_FIELDS.has(field)) {
    const result = cloneJson(target ?? []);
    for (const item of patch) {
      if (!result.some((existing) => jsonEqual(existing, item))) result.push(cloneJson(item));
    }
    return result;
  }
  if (key === undefined || !patch.every(isJsonObject)) return cloneJson(patch);
  const result = cloneJson(target ?? []);
  for (const item of patch) {
    const directive = item.$patch;
    const id = item[key];
    const index = result.findIndex((existing) => isJsonObject(existing) && existing[key] === id);
    if (directive === "delete") {
      if (index >= 0) result.splice(index, 1);
      continue;
    }
    if (index >= 0) {
      result[index] = applyStrategicMergePatch(result[index], item);
    } else {
      result.push(applyStrategicMergePatch(undefined, item));
    }
  }
  return result;
}

/**
 * Applies a strategic merge patch (`application/strategic-merge-patch+json`): a JSON merge patch,
 * except that well-known Kubernetes list fields are merged by their patch merge key
 * (containers/env/volumes by `name`, conditions by `type`, ownerReferences by `uid`, …; a
 * `$patch: delete` item removes the entry) and `finalizers` are unioned. Other lists replace.
 */
export function applyStrategicMergePatch(
  target: JsonValue | undefined,
  patch: JsonValue,
): JsonValue {
  if (!isJsonObject(patch)) return cloneJson(patch);
  if (patch.$patch === "replace") {
    const copy = cloneJson(patch);
    delete copy.$patch;
    return copy;
  }
  const result: JsonObject = isJsonObject(target) ? cloneJson(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined || key === "$patch" || key.startsWith("$setElementOrder/")) continue;
    if (value === null) {
      delete result[key];
    } else if (Array.isArray(value)) {
      const existing = result[key];
      result[key] = strategicMergeList(key, Array.isArray(existing) ? existing : undefined, value);
    } else {
      result[key] = applyStrategicMergePatch(result[key], value);
    }
  }
  return result;
}

/** One RFC 6902 JSON patch operation. */
export interface JsonPatchOperation {
  readonly op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  readonly path: string;
  readonly from?: string;
  readonly value?: JsonValue;
}

function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw patchError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function getAt(doc: JsonValue, tokens: readonly string[]): JsonValue | undefined {
  let current: JsonValue | undefined = doc;
  for (const token of tokens) {
    if (Array.isArray(current)) {
      current = current[Number(token)];
    } else if (isJsonObject(current)) {
      current = current[token];
    } else {
      return undefined;
    }
  }
  return current;
}

function arrayIndex(parent: JsonValue[], token: string, forInsert: boolean): number {
  if (forInsert && token === "-") return parent.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw patchError(`invalid array index "${token}"`);
  const index = Number(token);
  const max = forInsert ? parent.length : parent.length - 1;
  if (index > max) throw patchError(`array index ${index} out of bounds`);
  return index;
}

/** Mutates `doc` (a working copy) by one operation at `tokens`; returns the new root. */
function setAt(
  doc: JsonValue,
  tokens: readonly string[],
  mode: "add" | "replace" | "remove",
  value?: JsonValue,
): JsonValue {
  if (tokens.length === 0) {
    if (mode === "remove") throw patchError("cannot remove the document root");
    return value!;
  }
  const parent = getAt(doc, tokens.slice(0, -1));
  const last = tokens[tokens.length - 1]!;
  const path = "/" + tokens.join("/");
  if (Array.isArray(parent)) {
    const index = arrayIndex(parent, last, mode === "add");
    if (mode === "add") parent.splice(index, 0, value!);
    else if (mode === "replace") parent[index] = value!;
    else parent.splice(index, 1);
  } else if (isJsonObject(parent)) {
    if (mode !== "add" && !(last in parent)) {
      throw patchError(`doc is missing key: ${path}`, "kube.patch.missing_path");
    }
    if (mode === "remove") delete parent[last];
    else parent[last] = value!;
  } else {
    throw patchError(`doc is missing path: ${path}`, "kube.patch.missing_path");
  }
  return doc;
}

/**
 * Applies an RFC 6902 JSON patch (`application/json-patch+json`) and returns the result; the
 * input is not modified. Throws `MeshidError` `kube.patch.invalid` / `kube.patch.missing_path` /
 * `kube.patch.test_failed` (the whole patch is then not applied).
 */
export function applyJsonPatch(target: JsonValue, operations: unknown): JsonValue {
  if (!Array.isArray(operations)) throw patchError("a JSON patch must be an array of operations");
  let doc = cloneJson(target);
  for (const raw of operations as unknown[]) {
    if (!isJsonObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      throw patchError("each JSON patch operation needs string `op` and `path`");
    }
    const tokens = parsePointer(raw.path);
    switch (raw.op) {
      case "add":
      case "replace":
        if (raw.value === undefined) throw patchError(`missing value for ${raw.op}`);
        doc = setAt(doc, tokens, raw.op, cloneJson(raw.value));
        break;
      case "remove":
        doc = setAt(doc, tokens, "remove");
        break;
      case "move":
      case "copy": {
        if (typeof raw.from !== "string") throw patchError(`missing from for ${raw.op}`);
        const fromTokens = parsePointer(raw.from);
        const value = getAt(doc, fromTokens);
        if (value === undefined) {
          throw patchError(`doc is missing from path: ${raw.from}`, "kube.patch.missing_path");
        }
        const copy = cloneJson(value);
        if (raw.op === "move") doc = setAt(doc, fromTokens, "remove");
        doc = setAt(doc, tokens, "add", copy);
        break;
      }
      case "test":
        if (!jsonEqual(getAt(doc, tokens), raw.value)) {
          throw patchError(`testing value ${raw.path} failed`, "kube.patch.test_failed");
        }
        break;
      default:
        throw patchError(`unexpected kind: ${raw.op}`);
    }
  }
  return doc;
}
