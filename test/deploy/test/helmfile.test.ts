// deploy/helmfile.yaml (no helmfile binary exists here, so it is read as YAML): every release
// points at an existing chart and existing values files, `needs` name real releases, remote
// charts are pinned; each environment installs exactly its releases (the standalone services,
// or the control plane in one process in `small`); the values files only set keys the charts
// know; shared chart parts stay identical across charts.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { SERVICE_CHARTS, VALUE_SETS, chartDir, renderChart } from "../src/charts";
import { helmTemplate } from "../src/helm";
import { CHARTS_DIR, DEPLOY_DIR, VALUES_DIR } from "../src/paths";
import { FREE_FORM_KEYS } from "../src/values-schema";

interface Release {
  name: string;
  namespace: string;
  chart: string;
  version?: string;
  condition?: string;
  needs?: string[];
  values?: string[];
}
interface Helmfile {
  repositories: { name: string; url: string }[];
  environments: Record<string, { values: string[] }>;
  releases: Release[];
}

const helmfile = parse(readFileSync(join(DEPLOY_DIR, "helmfile.yaml"), "utf8")) as Helmfile;
const readYaml = (file: string): Record<string, unknown> =>
  parse(readFileSync(file, "utf8")) as Record<string, unknown>;

/** Top-level values only helmfile reads: the NATS release's values and the topology switch. */
const HELMFILE_ONLY_SECTIONS: ReadonlySet<string> = new Set(["nats", "standaloneServices"]);

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep merge of values files as helmfile layers them (later wins, maps merged). */
function mergeValues(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const current = out[key];
    out[key] = isMap(current) && isMap(value) ? mergeValues(current, value) : value;
  }
  return out;
}

/** The values of a helmfile environment. */
function environmentValues(env: string): Record<string, unknown> {
  const files = helmfile.environments[env]?.values ?? [];
  return files.reduce<Record<string, unknown>>(
    (acc, file) => mergeValues(acc, readYaml(join(DEPLOY_DIR, file))),
    {},
  );
}

/**
 * The releases helmfile installs in an environment: a `condition: <key>.enabled` release only
 * when that value is true (as helmfile's ConditionEnabled reads it).
 */
function installedReleases(env: string): string[] {
  const values = environmentValues(env);
  return helmfile.releases
    .filter((r) => {
      if (r.condition === undefined) return true;
      const [key] = r.condition.split(".");
      const section = values[key!];
      return isMap(section) && section.enabled === true;
    })
    .map((r) => r.name);
}

/** Dotted paths in `values` that the chart defaults `defaults` do not have. */
function unknownKeys(values: unknown, defaults: unknown, path: string): string[] {
  if (typeof values !== "object" || values === null || Array.isArray(values)) return [];
  if (typeof defaults !== "object" || defaults === null || Array.isArray(defaults)) {
    return [`${path} (not a map in the chart)`];
  }
  const out: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const here = path === "" ? key : `${path}.${key}`;
    if (!(key in defaults)) out.push(here);
    else if (!FREE_FORM_KEYS.has(key)) {
      out.push(...unknownKeys(value, (defaults as Record<string, unknown>)[key], here));
    }
  }
  return out;
}

describe("helmfile", () => {
  test("helmfile – every release names an existing local chart or a pinned chart of a declared repository", () => {
    const repos = new Set(helmfile.repositories.map((r) => r.name));
    const names = helmfile.releases.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    for (const release of helmfile.releases) {
      if (release.chart.startsWith("./")) {
        expect([release.name, existsSync(join(DEPLOY_DIR, release.chart, "Chart.yaml"))]).toEqual([
          release.name,
          true,
        ]);
      } else {
        const [repo] = release.chart.split("/");
        expect(repos.has(repo!)).toBe(true);
        expect(release.version).toMatch(/^\d+\.\d+\.\d+$/);
      }
      expect(release.namespace).toBe("meshid");
    }
  });

  test("helmfile – one release per service chart, plus the CRDs and NATS", () => {
    const local = helmfile.releases.filter((r) => r.chart.startsWith("./")).map((r) => r.chart);
    const charts = readdirSync(CHARTS_DIR).map((c) => `./charts/${c}`);
    expect([...local].sort()).toEqual([...charts].sort());
    expect(SERVICE_CHARTS.every((c) => local.includes(`./charts/${c.name}`))).toBe(true);
    expect(helmfile.releases.find((r) => r.name === "nats")?.condition).toBe("nats.enabled");
  });

  test("helmfile – values files exist and `needs` name releases of the file", () => {
    const known = new Set(helmfile.releases.map((r) => `${r.namespace}/${r.name}`));
    for (const release of helmfile.releases) {
      for (const file of release.values ?? [])
        expect([file, existsSync(join(DEPLOY_DIR, file))]).toEqual([file, true]);
      for (const need of release.needs ?? [])
        expect([release.name, need, known.has(need)]).toEqual([release.name, need, true]);
    }
    for (const [env, { values }] of Object.entries(helmfile.environments)) {
      for (const file of values)
        expect([env, file, existsSync(join(DEPLOY_DIR, file))]).toEqual([env, file, true]);
    }
    expect(helmfile.environments.default?.values).toEqual(["values/default.yaml"]);
    expect(helmfile.environments.ha?.values).toEqual(["values/default.yaml", "values/ha.yaml"]);
    expect(helmfile.environments.small?.values).toEqual([
      "values/default.yaml",
      "values/small.yaml",
    ]);
  });

  test("helmfile – meshid releases get the environment's values unchanged (the test renders them the same way)", () => {
    const text = readFileSync(join(VALUES_DIR, "meshid.yaml.gotmpl"), "utf8");
    const lines = text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("{{- /*"));
    expect(lines).toEqual(["{{ .Values | toYaml }}"]);
    for (const release of helmfile.releases.filter(
      (r) => r.chart.startsWith("./charts/") && r.name !== "meshid-crds",
    )) {
      expect(release.values).toEqual(["values/meshid.yaml.gotmpl"]);
    }
  });

  test("values – default.yaml, ha.yaml and small.yaml only set keys the charts define", () => {
    for (const file of ["default.yaml", "ha.yaml", "small.yaml"]) {
      const values = readYaml(join(VALUES_DIR, file));
      const problems: string[] = [];
      for (const [section, settings] of Object.entries(values)) {
        if (HELMFILE_ONLY_SECTIONS.has(section)) continue;
        if (section === "global") {
          problems.push(
            ...unknownKeys(
              settings,
              readYaml(join(chartDir("ca"), "values.yaml")).global,
              "global",
            ),
          );
          continue;
        }
        const chart = SERVICE_CHARTS.find((c) => c.section === section);
        if (chart === undefined) {
          problems.push(`${section} (no chart reads it)`);
          continue;
        }
        const defaults = readYaml(join(chartDir(chart.name), "values.yaml"))[section];
        problems.push(...unknownKeys(settings, defaults, section));
      }
      expect([file, problems]).toEqual([file, []]);
    }
  });
});

describe("helmfile – environments", () => {
  const standalone = [
    "meshid-crds",
    "nats",
    "meshid-ca",
    "meshid-bundle-notifier",
    "meshid-agent",
    "meshid-registrar",
    "meshid-proxy-config",
  ];

  test.each([
    ["default", standalone],
    ["ha", standalone],
    ["small", ["meshid-crds", "nats", "meshid-agent", "meshid-control-plane"]],
  ] as const)("helmfile – the %s environment installs exactly its releases", (env, expected) => {
    expect(installedReleases(env)).toEqual(expected);
  });

  test("helmfile – a condition only names `<key>.enabled` booleans every environment sets", () => {
    for (const env of Object.keys(helmfile.environments)) {
      const values = environmentValues(env);
      for (const release of helmfile.releases.filter((r) => r.condition !== undefined)) {
        const [key, enabled, ...rest] = release.condition!.split(".");
        expect([release.name, enabled, rest]).toEqual([release.name, "enabled", []]);
        expect([
          env,
          release.name,
          typeof (values[key!] as Record<string, unknown>)?.enabled,
        ]).toEqual([env, release.name, "boolean"]);
      }
    }
  });

  test("helmfile – installed releases need installed releases, but for the agent's CA in small", () => {
    const dangling = (env: string): string[] => {
      const installed = new Set(installedReleases(env).map((n) => `meshid/${n}`));
      return helmfile.releases
        .filter((r) => installed.has(`${r.namespace}/${r.name}`))
        .flatMap((r) =>
          (r.needs ?? []).filter((n) => !installed.has(n)).map((n) => `${r.name} → ${n}`),
        );
    };
    expect(dangling("default")).toEqual([]);
    expect(dangling("ha")).toEqual([]);
    // helmfile leaves out a need on a release its condition disables; the agents' pods wait for
    // the bundle ConfigMap, which the control plane writes.
    expect(dangling("small")).toEqual(["meshid-agent → meshid/meshid-ca"]);
  });

  test.each(["default", "ha"] as const)(
    "helmfile – the switch between the topologies changes nothing the charts render (%s values)",
    async (env) => {
      // Every chart renders the same without the helmfile-only switch blocks.
      const dir = mkdtempSync(join(tmpdir(), "meshid-values-"));
      try {
        const files = VALUE_SETS[env].map((file, i) => {
          const values = readYaml(file);
          delete values.standaloneServices;
          delete values.controlPlane;
          const copy = join(dir, `${i}.yaml`);
          writeFileSync(copy, stringify(values));
          return copy;
        });
        for (const chart of SERVICE_CHARTS.filter((c) => c.valueSets.includes(env))) {
          const without = await helmTemplate({ chart: chartDir(chart.name), valuesFiles: files });
          expect([chart.name, without]).toEqual([chart.name, await renderChart(chart.name, env)]);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("charts – shared parts", () => {
  test("charts – the global block of values.yaml is the same in every chart", () => {
    const globals = SERVICE_CHARTS.map(
      (c) => readYaml(join(chartDir(c.name), "values.yaml")).global,
    );
    for (const g of globals) expect(g).toEqual(globals[0]);
  });

  test("charts – templates/_common.tpl is identical in every chart", () => {
    const texts = SERVICE_CHARTS.map((c) =>
      readFileSync(join(chartDir(c.name), "templates", "_common.tpl"), "utf8"),
    );
    for (const t of texts) expect(t).toBe(texts[0]);
  });

  test("charts – each chart's values.yaml holds global and its own section only", () => {
    for (const chart of SERVICE_CHARTS) {
      const values = readYaml(join(chartDir(chart.name), "values.yaml"));
      expect([chart.name, Object.keys(values)]).toEqual([chart.name, ["global", chart.section]]);
    }
  });

  test("charts – version and appVersion agree across charts", () => {
    const metas = readdirSync(CHARTS_DIR).map((c) => readYaml(join(CHARTS_DIR, c, "Chart.yaml")));
    for (const meta of metas) {
      expect(meta.apiVersion).toBe("v2");
      expect(meta.version).toBe(metas[0]!.version);
      expect(meta.appVersion).toBe(metas[0]!.appVersion);
    }
  });
});
