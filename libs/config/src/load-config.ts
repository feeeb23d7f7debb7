import { readFileSync } from "node:fs";
import { LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { ConfigError, type ConfigProblem } from "./config-error";
import { deepFreeze } from "./deep-freeze";
import { describeSchema, fromEnvSegment, toEnvSegment, type SchemaNode } from "./schema-walk";

/** Parameters of {@link loadConfig}. */
export interface LoadConfigParams<S extends z.ZodType> {
  /** Service name as in `MESHID_<SERVICE>_…`, e.g. `"ca"` or `"bundle-notifier"`. */
  service: string;
  /** The one schema of the service's configuration (an object schema; defaults on its fields). */
  schema: S;
  /** Optional YAML file (a mapping at the top level). */
  file?: string;
  /** Environment to read `MESHID_<SERVICE>_*` variables from (main passes `process.env`). */
  env: Readonly<Record<string, string | undefined>>;
}

type Path = readonly (string | number)[];
type PlainObject = Record<string, unknown>;

/** `MESHID_<SERVICE>_` for a service name (`bundle-notifier` → `MESHID_BUNDLE_NOTIFIER_`). */
export function envPrefix(service: string): string {
  return `MESHID_${toEnvSegment(service)}_`;
}

/**
 * The environment variable naming the service's YAML file, `MESHID_<SERVICE>_CONFIG_FILE`.
 * `loadConfig` skips it when mapping variables to keys; `main.ts` passes its value as `file`.
 */
export function configFileEnvVar(service: string): string {
  return `${envPrefix(service)}CONFIG_FILE`;
}

/** The environment variable that sets the setting at `path` (`["datastore", "url"]` → `MESHID_CA_DATASTORE__URL`). */
export function envVarName(service: string, path: readonly string[]): string {
  return envPrefix(service) + path.map(toEnvSegment).join("__");
}

function formatPath(path: Path): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out;
}

function isPlainObject(value: unknown): value is PlainObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readYaml(file: string, problems: ConfigProblem[]): PlainObject | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    problems.push({
      source: file,
      path: "",
      message: `cannot read file: ${(err as Error).message}`,
    });
    return undefined;
  }
  const lineCounter = new LineCounter();
  // prettyErrors would quote the offending lines; they could hold secrets.
  const doc = parseDocument(text, { prettyErrors: false, lineCounter, uniqueKeys: true });
  if (doc.errors.length > 0) {
    for (const err of doc.errors) {
      const { line, col } = lineCounter.linePos(err.pos[0]);
      problems.push({
        source: `${file}:${line}:${col}`,
        path: "",
        message: `invalid YAML: ${err.message}`,
      });
    }
    return undefined;
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    problems.push({ source: file, path: "", message: `invalid YAML: ${(err as Error).message}` });
    return undefined;
  }
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    problems.push({
      source: file,
      path: "",
      message: "the top level must be a mapping of settings",
    });
    return undefined;
  }
  return value;
}

/** Reports keys the schema does not know (and removes them so the schema never sees them). */
function dropUnknownKeys(
  value: unknown,
  schema: z.ZodType | undefined,
  path: Path,
  source: string,
  problems: ConfigProblem[],
): void {
  const node = describeSchema(schema);
  if (node.kind === "object" && isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      const child = node.shape[key];
      if (child !== undefined) {
        dropUnknownKeys(value[key], child, [...path, key], source, problems);
      } else if (!node.open) {
        problems.push({ source, path: formatPath([...path, key]), message: "unknown key" });
        delete value[key];
      }
    }
  } else if (node.kind === "record" && isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      dropUnknownKeys(value[key], node.valueType, [...path, key], source, problems);
    }
  } else if (node.kind === "array" && Array.isArray(value)) {
    value.forEach((item, i) => dropUnknownKeys(item, node.element, [...path, i], source, problems));
  }
}

const INVALID_JSON = Symbol("invalid JSON");

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return INVALID_JSON;
  }
}

function looksLikeJson(text: string): boolean {
  const t = text.trimStart();
  return t.startsWith("{") || t.startsWith("[");
}

function coerceScalar(raw: string, node: SchemaNode): unknown {
  const trimmed = raw.trim();
  if (node.kind === "number") {
    return trimmed !== "" && Number.isFinite(Number(trimmed)) ? Number(trimmed) : raw;
  }
  if (node.kind === "boolean") {
    const lower = trimmed.toLowerCase();
    return lower === "true" ? true : lower === "false" ? false : raw;
  }
  return raw;
}

/** Turns an environment string into the value the schema expects at that node. */
function coerceEnvValue(raw: string, schema: z.ZodType | undefined): unknown {
  const node = describeSchema(schema);
  switch (node.kind) {
    case "array": {
      if (looksLikeJson(raw)) return parseJson(raw);
      const element = node.element;
      return raw
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item !== "")
        .map((item) => coerceEnvValue(item, element));
    }
    case "object":
    case "record":
      return looksLikeJson(raw) ? parseJson(raw) : raw;
    case "union": {
      const kinds = node.options.map((o) => describeSchema(o).kind);
      if (
        looksLikeJson(raw) &&
        kinds.some((k) => k === "object" || k === "record" || k === "array")
      ) {
        const parsed = parseJson(raw);
        if (parsed !== INVALID_JSON || !kinds.includes("string")) return parsed;
      }
      if (kinds.includes("string")) return raw;
      for (const kind of ["number", "boolean"] as const) {
        if (kinds.includes(kind)) {
          const coerced = coerceScalar(raw, { kind });
          if (coerced !== raw) return coerced;
        }
      }
      return raw;
    }
    case "other":
      if (looksLikeJson(raw)) {
        const parsed = parseJson(raw);
        return parsed === INVALID_JSON ? raw : parsed;
      }
      return raw;
    default:
      return coerceScalar(raw, node);
  }
}

/** Maps `FOO__BAR_BAZ` to a key path using the schema's own key names. */
function resolveEnvPath(
  rest: string,
  schema: z.ZodType,
): { path: string[]; leaf: z.ZodType | undefined } | { error: string; path: string[] } {
  const segments = rest.split("__");
  const path: string[] = [];
  let current: z.ZodType | undefined = schema;
  for (const segment of segments) {
    if (segment === "") return { error: "has an empty key segment", path };
    const node = describeSchema(current);
    if (node.kind === "object") {
      const key = Object.keys(node.shape).find((k) => toEnvSegment(k) === segment);
      if (key !== undefined) {
        path.push(key);
        current = node.shape[key];
        continue;
      }
      path.push(fromEnvSegment(segment));
      if (!node.open) return { error: "does not match any setting", path };
      current = undefined;
    } else if (node.kind === "record") {
      path.push(fromEnvSegment(segment));
      current = node.valueType;
    } else if (node.kind === "other") {
      path.push(fromEnvSegment(segment));
      current = undefined;
    } else {
      path.push(fromEnvSegment(segment));
      return { error: "goes below a setting that has no sub-settings", path };
    }
  }
  return { path, leaf: current };
}

function setAtPath(root: PlainObject, path: readonly string[], value: unknown): void {
  let target = root;
  path.forEach((key, i) => {
    if (i === path.length - 1) {
      target[key] = value;
      return;
    }
    const next = target[key];
    if (!isPlainObject(next)) target[key] = {};
    target = target[key] as PlainObject;
  });
}

function valueAtPath(root: unknown, path: Path): unknown {
  let current = root;
  for (const seg of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string | number, unknown>)[seg];
  }
  return current;
}

interface Origin {
  path: Path;
  source: string;
}

function collectFileOrigins(value: unknown, path: Path, source: string, out: Origin[]): void {
  if (isPlainObject(value) && Object.keys(value).length > 0) {
    for (const [key, child] of Object.entries(value)) {
      collectFileOrigins(child, [...path, key], source, out);
    }
  } else {
    out.push({ path, source });
  }
}

function startsWith(path: Path, prefix: Path): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => path[i] === seg);
}

/**
 * Loads a service's configuration: the optional YAML `file`, then `MESHID_<SERVICE>_<KEY>`
 * environment variables on top (env > file > schema defaults), parsed by `schema`, returned
 * deeply frozen.
 *
 * Environment names map to keys by the schema's own key names: `MESHID_CA_SVID_TTL` →
 * `svidTtl`, and `__` separates nested keys (`MESHID_CA_DATASTORE__URL` → `datastore.url`).
 * Strings are coerced by the schema type at that key: numbers, `true`/`false`,
 * comma-separated lists (or JSON arrays) for arrays, JSON for objects.
 *
 * Unknown keys in the file and `MESHID_<SERVICE>_*` variables that match no key are errors,
 * whether or not the schema is strict (a `z.looseObject` opts out). Cross-field checks belong
 * in the schema (`.superRefine` on the object); zod runs them once every field parsed, so they
 * are reported together with field problems only if given zod's `when` option.
 *
 * @throws ConfigError (`config.invalid`) listing every problem: unreadable file, invalid YAML,
 *   unknown keys, bad values, missing settings and failed cross-field checks.
 */
export function loadConfig<S extends z.ZodType>(params: LoadConfigParams<S>): z.infer<S> {
  const { service, schema, file, env } = params;
  const problems: ConfigProblem[] = [];
  const origins: Origin[] = [];
  let input: PlainObject = {};
  let fileFailed = false;

  if (file !== undefined) {
    const fromFile = readYaml(file, problems);
    if (fromFile === undefined) {
      fileFailed = true;
    } else {
      dropUnknownKeys(fromFile, schema, [], file, problems);
      collectFileOrigins(fromFile, [], file, origins);
      input = fromFile;
    }
  }

  const prefix = envPrefix(service);
  const names = Object.keys(env)
    .filter(
      (name) =>
        name.startsWith(prefix) && env[name] !== undefined && name !== configFileEnvVar(service),
    )
    .sort();
  for (const name of names) {
    const raw = env[name] as string;
    const resolved = resolveEnvPath(name.slice(prefix.length), schema);
    if ("error" in resolved) {
      problems.push({
        source: name,
        path: formatPath(resolved.path),
        message: `${resolved.error} of service "${service}"`,
      });
      continue;
    }
    const value = coerceEnvValue(raw, resolved.leaf);
    if (value === INVALID_JSON) {
      problems.push({
        source: name,
        path: formatPath(resolved.path),
        message: "is not valid JSON",
      });
      continue;
    }
    dropUnknownKeys(value, resolved.leaf, resolved.path, name, problems);
    setAtPath(input, resolved.path, value);
    origins.push({ path: resolved.path, source: name });
  }

  const result = schema.safeParse(input);
  if (result.success && problems.length === 0) {
    return deepFreeze(result.data);
  }
  if (!result.success) {
    for (const issue of result.error.issues) {
      const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
      const covering = origins.filter((o) => startsWith(path, o.path));
      const value = valueAtPath(input, path);
      let source: string;
      let message = issue.message;
      if (covering.length > 0) {
        // Later origins (environment) override earlier ones (file).
        source = (covering[covering.length - 1] as Origin).source;
      } else {
        const below = [
          ...new Set(origins.filter((o) => startsWith(o.path, path)).map((o) => o.source)),
        ];
        if (below.length > 0) {
          source = below.join(", ");
        } else if (value === undefined) {
          // A broken file already explains missing settings.
          if (fileFailed) continue;
          source = "(not set)";
          const stringPath = path.filter((p): p is string => typeof p === "string");
          if (
            issue.code === "invalid_type" &&
            stringPath.length === path.length &&
            path.length > 0
          ) {
            message = `is required: set ${formatPath(path)}${file === undefined ? "" : ` in ${file}`} or ${envVarName(service, stringPath)}`;
          }
        } else {
          source = "defaults";
        }
      }
      problems.push({ source, path: formatPath(path), message });
    }
  }
  throw new ConfigError(service, problems);
}
