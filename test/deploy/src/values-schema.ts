// values.schema.json of each chart, derived from its values.yaml: every map the chart defines
// is closed (a misspelt key fails `helm install/template/lint`), free-form settings stay open,
// and scalars are not typed (a tag like 1.2 arrives as a number from --set). The top level
// stays open: helmfile hands every release the sections of the other charts too.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";

/** Keys whose values are free-form maps or lists (Kubernetes objects, service settings). */
export const FREE_FORM_KEYS: ReadonlySet<string> = new Set([
  "config",
  "resources",
  "podAnnotations",
  "nodeSelector",
  "tolerations",
  "affinity",
  "topologySpreadConstraints",
  "extraEnv",
  "imagePullSecrets",
  "adminIds",
  "psatAllowedServiceAccounts",
  "podSecurityContext",
  "securityContext",
  "updateStrategy",
  "accessModes",
  "requests",
  "limits",
]);

type JsonSchema = Record<string, unknown>;

function schemaOf(value: unknown, key: string): JsonSchema {
  if (FREE_FORM_KEYS.has(key)) {
    return Array.isArray(value) ? { type: "array" } : { type: ["object", "array", "null"] };
  }
  if (Array.isArray(value)) return { type: "array" };
  if (typeof value === "object" && value !== null) {
    const properties: Record<string, JsonSchema> = {};
    for (const [k, v] of Object.entries(value)) properties[k] = schemaOf(v, k);
    return { type: "object", additionalProperties: false, properties };
  }
  return {};
}

/** The values.schema.json document for a chart's parsed values.yaml. */
export function valuesSchema(values: Record<string, unknown>): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  for (const [k, v] of Object.entries(values)) properties[k] = schemaOf(v, k);
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "meshid chart values (generated from values.yaml by test/deploy)",
    type: "object",
    properties,
  };
}

/**
 * The schema as written to `file` (values.schema.json): JSON formatted by the repository's
 * Prettier (run as a process: Prettier 3 loads its plugins with import(), which jest's CJS
 * runtime cannot do).
 */
export function formatValuesSchema(values: Record<string, unknown>, file: string): string {
  const prettier = join(dirname(require.resolve("prettier/package.json")), "bin", "prettier.cjs");
  return execFileSync(process.execPath, [prettier, "--stdin-filepath", file], {
    input: JSON.stringify(valuesSchema(values)),
    encoding: "utf8",
  });
}
