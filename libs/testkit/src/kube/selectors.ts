import { MeshidError } from "@meshid/errors";
import { isJsonObject, type JsonObject } from "./types";

/** One requirement of a Kubernetes label selector. */
export type LabelRequirement =
  | { readonly key: string; readonly op: "=" | "!="; readonly value: string }
  | { readonly key: string; readonly op: "in" | "notin"; readonly values: readonly string[] }
  | { readonly key: string; readonly op: "exists" | "!exists" }
  | { readonly key: string; readonly op: "gt" | "lt"; readonly value: number };

/** One requirement of a Kubernetes field selector. */
export interface FieldRequirement {
  readonly field: string;
  readonly op: "=" | "!=";
  readonly value: string;
}

function selectorError(message: string): MeshidError {
  return new MeshidError("invalid_argument", "kube.selector.invalid", message);
}

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = "";
  for (const ch of text) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

const LABEL_KEY = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

function checkKey(key: string, raw: string): string {
  if (!LABEL_KEY.test(key) || key.length > 317) {
    throw selectorError(`unable to parse requirement: invalid label key "${key}" in "${raw}"`);
  }
  return key;
}

function checkValue(value: string, raw: string): string {
  if (!LABEL_VALUE.test(value) || value.length > 63) {
    throw selectorError(`unable to parse requirement: invalid label value "${value}" in "${raw}"`);
  }
  return value;
}

/**
 * Parses a Kubernetes label selector string (`a=b,c!=d,e in (x,y),f notin (z),g,!h,n>3`).
 * An empty string selects everything. Throws `MeshidError` `kube.selector.invalid` on bad input.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const trimmed = selector.trim();
  if (trimmed === "") return [];
  return splitTopLevel(trimmed).map((part): LabelRequirement => {
    const raw = part.trim();
    if (raw === "") throw selectorError(`found '', expected: identifier in "${selector}"`);
    const setMatch = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(raw);
    if (setMatch) {
      const values = setMatch[3]!
        .split(",")
        .map((v) => v.trim())
        .filter((v) => v !== "")
        .map((v) => checkValue(v, raw));
      if (values.length === 0) {
        throw selectorError(`for 'in', 'notin' operators, values set can't be empty`);
      }
      return { key: checkKey(setMatch[1]!, raw), op: setMatch[2] as "in" | "notin", values };
    }
    const opMatch = /^([^=!<>\s]+)\s*(==|=|!=|<|>)\s*(.*)$/.exec(raw);
    if (opMatch) {
      const key = checkKey(opMatch[1]!, raw);
      const op = opMatch[2]!;
      const value = opMatch[3]!.trim();
      if (op === "<" || op === ">") {
        if (!/^-?\d+$/.test(value)) {
          throw selectorError(`for 'Gt', 'Lt' operators, the value must be an integer`);
        }
        return { key, op: op === ">" ? "gt" : "lt", value: Number(value) };
      }
      return { key, op: op === "!=" ? "!=" : "=", value: checkValue(value, raw) };
    }
    if (raw.startsWith("!")) return { key: checkKey(raw.slice(1).trim(), raw), op: "!exists" };
    return { key: checkKey(raw, raw), op: "exists" };
  });
}

/** Returns true when `labels` satisfy every requirement (an empty list matches everything). */
export function matchesLabelSelector(
  requirements: readonly LabelRequirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const all = labels ?? {};
  return requirements.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(all, r.key);
    const value = has ? all[r.key] : undefined;
    switch (r.op) {
      case "=":
        return has && value === r.value;
      case "!=":
        return !has || value !== r.value;
      case "in":
        return has && r.values.includes(value!);
      case "notin":
        return !has || !r.values.includes(value!);
      case "exists":
        return has;
      case "!exists":
        return !has;
      case "gt":
        return has && /^-?\d+$/.test(value!) && Number(value) > r.value;
      case "lt":
        return has && /^-?\d+$/.test(value!) && Number(value) < r.value;
    }
    return false;
  });
}

/** Splits `text` on the unescaped separator `sep`, keeping escapes for the next stage. */
function splitEscaped(text: string, sep: string): string[] {
  const parts: string[] = [];
  let current = "";
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === "\\" && i + 1 < text.length) {
      current += ch + text[i + 1]!;
      i++;
    } else if (ch === sep) {
      parts.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function unescapeFieldValue(value: string): string {
  return value.replace(/\\(.)/g, "$1");
}

/**
 * Parses a Kubernetes field selector string (`metadata.name=x,spec.nodeName!=y`, `==` allowed,
 * `\,` `\=` `\\` escapes in values). Field support is checked later, per resource, by
 * {@link checkFieldSelector}. Throws `MeshidError` `kube.selector.invalid` on bad syntax.
 */
export function parseFieldSelector(selector: string): FieldRequirement[] {
  const trimmed = selector.trim();
  if (trimmed === "") return [];
  return splitEscaped(trimmed, ",").map((part) => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/s.exec(part.trim());
    if (!m) throw selectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    return {
      field: m[1]!.trim(),
      op: m[2] === "!=" ? ("!=" as const) : ("=" as const),
      value: unescapeFieldValue(m[3]!),
    };
  });
}

/**
 * Throws `MeshidError` `kube.selector.invalid` ("field label not supported: …", as the real API
 * server words it) when a requirement names a field outside `supported`.
 */
export function checkFieldSelector(
  requirements: readonly FieldRequirement[],
  supported: readonly string[],
): void {
  for (const r of requirements) {
    if (!supported.includes(r.field)) {
      throw selectorError(`field label not supported: ${r.field}`);
    }
  }
}

/** Reads a dotted path (`spec.nodeName`) from an object as the string a field selector compares. */
export function fieldValue(obj: JsonObject, path: string): string {
  let current: unknown = obj;
  for (const segment of path.split(".")) {
    if (!isJsonObject(current)) return "";
    current = current[segment];
  }
  if (current === undefined || current === null) return "";
  if (typeof current === "string") return current;
  if (typeof current === "number" || typeof current === "boolean") return String(current);
  return JSON.stringify(current);
}

/** Returns true when the object satisfies every field requirement. */
export function matchesFieldSelector(
  requirements: readonly FieldRequirement[],
  obj: JsonObject,
): boolean {
  return requirements.every((r) => {
    const actual = fieldValue(obj, r.field);
    return r.op === "=" ? actual === r.value : actual !== r.value;
  });
}
