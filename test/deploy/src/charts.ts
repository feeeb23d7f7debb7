// The charts under test and cached renders of each with the default and the HA values.
import { join } from "node:path";
import { helmTemplate, type KubeObject } from "./helm";
import { CHARTS_DIR, DEFAULT_VALUES, HA_VALUES } from "./paths";

/** One service chart: its directory name, values section and workload. */
export interface ServiceChart {
  /** Directory under deploy/charts and the service name (`bundle-notifier`). */
  readonly name: string;
  /** Top-level values key of the chart (`bundleNotifier`). */
  readonly section: string;
  /** Kind of its workload. */
  readonly workloadKind: "Deployment" | "StatefulSet" | "DaemonSet";
}

/** Every service chart (the CRD chart is separate). */
export const SERVICE_CHARTS: readonly ServiceChart[] = Object.freeze([
  { name: "ca", section: "ca", workloadKind: "StatefulSet" },
  { name: "agent", section: "agent", workloadKind: "DaemonSet" },
  { name: "registrar", section: "registrar", workloadKind: "Deployment" },
  { name: "bundle-notifier", section: "bundleNotifier", workloadKind: "Deployment" },
  { name: "proxy-config", section: "proxyConfig", workloadKind: "Deployment" },
]);

/** The values sets every chart is rendered with, as helmfile's environments pass them. */
export const VALUE_SETS: Readonly<Record<"default" | "ha", readonly string[]>> = Object.freeze({
  default: DEFAULT_VALUES,
  ha: HA_VALUES,
});

/** Name of a values set. */
export type ValueSetName = keyof typeof VALUE_SETS;

/** Directory of a chart. */
export function chartDir(name: string): string {
  return join(CHARTS_DIR, name);
}

const cache = new Map<string, Promise<KubeObject[]>>();

/** Renders a service chart with a values set (cached per test file). */
export function renderChart(name: string, values: ValueSetName): Promise<KubeObject[]> {
  const key = `${name}/${values}`;
  let pending = cache.get(key);
  if (pending === undefined) {
    pending = helmTemplate({ chart: chartDir(name), valuesFiles: VALUE_SETS[values] });
    cache.set(key, pending);
  }
  return pending;
}
