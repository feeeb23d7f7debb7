// Unknown-field check for rendered objects. kubernetes-models validates types and required
// fields but, like the API server without strict field validation, lets unknown fields pass
// (a misspelt `readOnly` would be silently dropped in a cluster). This walks the object along
// the field declarations of kubernetes-models' type definitions and reports every key that
// its type does not declare.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

interface TypeInfo {
  /** Declared fields and, per field, the module of its object type (if it is one). */
  readonly fields: ReadonlyMap<string, string | undefined>;
}

const PROP = /^ {4}"([^"]+)"\??: (.+?);?$/;
const IMPORT = /^import \{ ([^}]+) \} from "([^"]+)";$/;

const cache = new Map<string, TypeInfo | undefined>();

function resolveModule(fromFile: string, specifier: string): string | undefined {
  let base: string;
  if (specifier.startsWith(".")) base = resolve(dirname(fromFile), specifier);
  else {
    const [scope, name, ...rest] = specifier.split("/");
    try {
      base = join(dirname(require.resolve(`${scope}/${name}/package.json`)), ...rest);
    } catch {
      return undefined;
    }
  }
  const file = `${base}.d.ts`;
  return existsSync(file) ? file : undefined;
}

/** Reads the first `export interface` of a kubernetes-models `.d.ts` module. */
function typeInfo(file: string): TypeInfo | undefined {
  if (cache.has(file)) return cache.get(file);
  const lines = readFileSync(file, "utf8").split("\n");
  const imports = new Map<string, string>();
  for (const line of lines) {
    const m = IMPORT.exec(line);
    if (m === null) continue;
    for (const name of m[1]!.split(",").map((s) => s.trim())) {
      const target = resolveModule(file, m[2]!);
      if (target !== undefined) imports.set(name, target);
    }
  }
  const start = lines.findIndex((l) => l.startsWith("export interface "));
  if (start < 0) {
    cache.set(file, undefined);
    return undefined;
  }
  const fields = new Map<string, string | undefined>();
  for (let i = start + 1; i < lines.length && lines[i] !== "}"; i++) {
    const m = PROP.exec(lines[i]!);
    if (m === null) continue;
    const typeName = /^(?:Array<)?(I[A-Za-z0-9]+)>?$/.exec(m[2]!)?.[1];
    fields.set(m[1]!, typeName === undefined ? undefined : imports.get(typeName));
  }
  const info = { fields };
  cache.set(file, info);
  return info;
}

/** The module of a top-level kind (`apps/v1` `Deployment`). */
function kindModule(apiVersion: string, kind: string): string | undefined {
  try {
    return resolveModule(require.resolve(`kubernetes-models/${apiVersion}/${kind}`), `./${kind}`);
  } catch {
    return undefined;
  }
}

function walk(value: unknown, file: string, path: string, out: string[]): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => walk(v, file, `${path}[${i}]`, out));
    return;
  }
  if (typeof value !== "object" || value === null) return;
  const info = typeInfo(file);
  // A type whose definition declares no fields is a free-form map (labels, IntOrString, …).
  if (info === undefined || info.fields.size === 0) return;
  for (const [key, child] of Object.entries(value)) {
    if (!info.fields.has(key)) {
      out.push(path === "" ? key : `${path}.${key}`);
      continue;
    }
    const childFile = info.fields.get(key);
    if (childFile !== undefined) walk(child, childFile, path === "" ? key : `${path}.${key}`, out);
  }
}

/**
 * Dotted paths of the fields of `obj` that its Kubernetes type does not declare (empty when
 * every field is known). Objects of kinds kubernetes-models lacks yield `["<no type>"]`.
 */
export function unknownFields(obj: { apiVersion: string; kind: string }): string[] {
  const file = kindModule(obj.apiVersion, obj.kind);
  if (file === undefined) return ["<no type>"];
  const out: string[] = [];
  walk(obj, file, "", out);
  return out;
}
