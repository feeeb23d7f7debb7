// Reads the structure of a zod 4 schema (objects, arrays, unions, wrappers) so the loader can
// map environment variables to keys, coerce strings and spot unknown keys before parsing.
import type { z } from "zod";

interface ZodDefLike {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  getter?: () => z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  element?: z.ZodType;
  options?: readonly z.ZodType[];
  valueType?: z.ZodType;
  values?: readonly unknown[];
}

const WRAPPERS = new Set([
  "optional",
  "nullable",
  "default",
  "prefault",
  "catch",
  "readonly",
  "nonoptional",
  "exact_optional",
]);

function defOf(schema: z.ZodType): ZodDefLike {
  return (schema as unknown as { _zod: { def: ZodDefLike } })._zod.def;
}

/** The input-side schema under wrappers (optional, default, pipe, lazy, …). */
export function unwrapSchema(schema: z.ZodType): { type: string; def: ZodDefLike } {
  let current = schema;
  for (let depth = 0; depth < 64; depth++) {
    const def = defOf(current);
    if (WRAPPERS.has(def.type) && def.innerType !== undefined) {
      current = def.innerType;
    } else if (def.type === "pipe" && def.in !== undefined && def.out !== undefined) {
      // z.preprocess puts a transform first: the real shape is on the output side.
      current = defOf(def.in).type === "transform" ? def.out : def.in;
    } else if (def.type === "lazy" && def.getter !== undefined) {
      current = def.getter();
    } else {
      return { type: def.type, def };
    }
  }
  return { type: "unknown", def: { type: "unknown" } };
}

/** How the loader sees one node of the schema. */
export type SchemaNode =
  | { kind: "object"; shape: Record<string, z.ZodType>; open: boolean }
  | { kind: "record"; valueType: z.ZodType | undefined }
  | { kind: "array"; element: z.ZodType | undefined }
  | { kind: "union"; options: readonly z.ZodType[] }
  | { kind: "number" }
  | { kind: "boolean" }
  | { kind: "string" }
  | { kind: "other" };

/** Describes `schema` (after unwrapping) as a {@link SchemaNode}. */
export function describeSchema(schema: z.ZodType | undefined): SchemaNode {
  if (schema === undefined) return { kind: "other" };
  const { type, def } = unwrapSchema(schema);
  switch (type) {
    case "object": {
      const catchall = def.catchall === undefined ? undefined : unwrapSchema(def.catchall).type;
      return {
        kind: "object",
        shape: def.shape ?? {},
        open: catchall !== undefined && catchall !== "never",
      };
    }
    case "record":
      return { kind: "record", valueType: def.valueType };
    case "array":
      return { kind: "array", element: def.element };
    case "union":
      return { kind: "union", options: def.options ?? [] };
    case "number":
      return { kind: "number" };
    case "boolean":
      return { kind: "boolean" };
    case "string":
    case "enum":
    case "template_literal":
      return { kind: "string" };
    case "literal":
      return (def.values ?? []).some((v) => typeof v === "string")
        ? { kind: "string" }
        : { kind: "other" };
    default:
      return { kind: "other" };
  }
}

/** `svidTtl` → `SVID_TTL`, `x509SvidKey` → `X509_SVID_KEY`, `caTTL` → `CA_TTL`. */
export function toEnvSegment(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/([A-Z])([A-Z][a-z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .toUpperCase();
}

/** `SVID_TTL` → `svidTtl` (used when the schema does not name the key). */
export function fromEnvSegment(segment: string): string {
  return segment.toLowerCase().replace(/_+([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
