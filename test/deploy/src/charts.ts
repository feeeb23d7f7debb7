// The charts under test and cached renders of each with the default and the HA values.
import { join } from "node:path";
import { helmTemplate, type KubeObject } from "./helm";
import { CHARTS_DIR, DEFAULT_VALUES, HA_VALUES, SMALL_VALUES } from "./paths";

/** The values sets charts are rendered with, as helmfile's environments pass them. */
export const VALUE_SETS: Readonly<Record<"default" | "ha" | "small", readonly string[]>> =
  Object.freeze({
    default: DEFAULT_VALUES,
    ha: HA_VALUES,
    small: SMALL_VALUES,
  });

/** Name of a values set (= helmfile environment). */
export type ValueSetName = keyof typeof VALUE_SETS;

/** One service chart: its directory name, values section and workload. */
export interface ServiceChart {
  /** Directory under deploy/charts and the service name (`bundle-notifier`). */
  readonly name: string;
  /** Top-level values key of the chart (`bundleNotifier`). */
  readonly section: string;
  /** Kind of its workload. */
  readonly workloadKind: "Deployment" | "StatefulSet" | "DaemonSet";
  /** The helmfile environments that install it (the ones it is rendered with). */
  readonly valueSets: readonly ValueSetName[];
}

/** The four services the control-plane chart runs in one process, as charts of their own. */
export const STANDALONE_SERVICES: readonly string[] = Object.freeze([
  "ca",
  "registrar",
  "bundle-notifier",
  "proxy-config",
]);

/** Every service chart (the CRD chart is separate). */
export const SERVICE_CHARTS: readonly ServiceChart[] = Object.freeze([
  { name: "ca", section: "ca", workloadKind: "StatefulSet", valueSets: ["default", "ha"] },
  {
    name: "agent",
    section: "agent",
    workloadKind: "DaemonSet",
    valueSets: ["default", "ha", "small"],
  },
  {
    name: "registrar",
    section: "registrar",
    workloadKind: "Deployment",
    valueSets: ["default", "ha"],
  },
  {
    name: "bundle-notifier",
    section: "bundleNotifier",
    workloadKind: "Deployment",
    valueSets: ["default", "ha"],
  },
  {
    name: "proxy-config",
    section: "proxyConfig",
    workloadKind: "Deployment",
    valueSets: ["default", "ha"],
  },
  {
    name: "control-plane",
    section: "controlPlane",
    workloadKind: "StatefulSet",
    valueSets: ["small"],
  },
]);

/** One chart with one values set it is installed with. */
export interface ChartCase {
  readonly chart: ServiceChart;
  readonly values: ValueSetName;
}

/** Every chart with every values set of the environments that install it. */
export const CHART_CASES: readonly ChartCase[] = Object.freeze(
  SERVICE_CHARTS.flatMap((chart) => chart.valueSets.map((values) => ({ chart, values }))),
);

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
