// The configuration file and environment each chart gives its service parse with that
// service's own schema (loadConfig + the exported zod schema), so a renamed or removed
// setting, or a chart typo, fails here rather than at start-up in a cluster. Also: ports,
// paths and cross-chart wiring (addresses, socket, bundle, attestation) agree.
import { DEFAULT_PROXY_CONFIG_SERVER_ID_PATH } from "@meshid/sidecar/src/config";
import { helmTemplate } from "../src/helm";
import {
  SERVICE_CHARTS,
  VALUE_SETS,
  chartDir,
  renderChart,
  type ValueSetName,
} from "../src/charts";
import { findObject, mountFor, workloadsOf } from "../src/manifests";
import { TEST_NAMESPACE } from "../src/paths";
import {
  at,
  renderedServiceConfigs,
  stringLeaves,
  type RenderedServiceConfig,
} from "../src/rendered-configs";

const valueSets = Object.keys(VALUE_SETS) as ValueSetName[];
const cases = SERVICE_CHARTS.flatMap((chart) => valueSets.map((values) => ({ chart, values })));

/** Paths every pod has without a declared mount. */
const IMPLICIT_PREFIXES = ["/proc/", "/var/run/secrets/kubernetes.io/serviceaccount/"];

async function configsOf(chart: string, values: ValueSetName): Promise<RenderedServiceConfig[]> {
  return renderedServiceConfigs(await renderChart(chart, values));
}

function loadedOk(rendered: RenderedServiceConfig): Record<string, unknown> {
  if (!rendered.loaded.ok) {
    const problems = rendered.loaded.problems.map((p) => `${p.path}: ${p.message}`).join("; ");
    throw new Error(`${rendered.service} configuration rejected: ${problems}`);
  }
  return rendered.loaded.config;
}

/** The configuration of `service` in the default render of `chart`. */
async function defaultConfig(chart: string, service = chart): Promise<Record<string, unknown>> {
  const found = (await configsOf(chart, "default")).find((c) => c.service === service);
  if (found === undefined) throw new Error(`${chart} runs no ${service}`);
  return loadedOk(found);
}

describe("service config – schema", () => {
  test.each(cases)(
    "$chart.name – the rendered configuration loads with the service's schema ($values values)",
    async ({ chart, values }) => {
      const rendered = await configsOf(chart.name, values);
      expect(rendered.map((r) => r.service)).toContain(chart.name);
      for (const r of rendered) {
        if (r.service === "ca" && values === "ha") {
          // The CA has no PostgreSQL datastore adapter yet: its schema refuses exactly that
          // one setting; everything else in the HA configuration is accepted.
          expect(r.loaded.ok).toBe(false);
          const problems = r.loaded.ok ? [] : r.loaded.problems;
          expect(problems.map((p) => p.path)).toEqual(["datastore.type"]);
          expect(problems[0]?.message).toMatch(/postgres/);
          continue;
        }
        loadedOk(r);
      }
    },
  );

  test("service config – a setting the service does not know is caught", async () => {
    const objects = await helmTemplate({
      chart: chartDir("agent"),
      set: ["agent.config.reconcileEvery=10s"],
    });
    const [rendered] = renderedServiceConfigs(objects);
    expect(rendered?.loaded.ok).toBe(false);
    expect(rendered?.loaded.ok === false && rendered.loaded.problems.map((p) => p.path)).toEqual([
      "reconcileEvery",
    ]);
  });

  test("service config – <section>.config is merged over the chart's settings (false and 0 too)", async () => {
    const objects = await helmTemplate({
      chart: chartDir("registrar"),
      set: [
        "registrar.config.leaderElection.enabled=false",
        "registrar.config.batchSize=200",
        "registrar.config.injectLabels={mesh=on}",
      ],
    });
    const [rendered] = renderedServiceConfigs(objects);
    const config = loadedOk(rendered!);
    expect(at(config, "leaderElection.enabled")).toBe(false);
    expect(at(config, "leaderElection.leaseName")).toBe("meshid-registrar");
    expect(config.batchSize).toBe(200);
    expect(config.injectLabels).toEqual(["mesh=on"]);
  });

  test("service config – global.natsUrl empty leaves natsUrl out everywhere", async () => {
    for (const chart of SERVICE_CHARTS) {
      const objects = await helmTemplate({ chart: chartDir(chart.name), set: ["global.natsUrl="] });
      for (const r of renderedServiceConfigs(objects)) {
        expect(loadedOk(r).natsUrl).toBeUndefined();
      }
    }
  });
});

describe("service config – ports and paths", () => {
  test.each(cases)(
    "$chart.name – ops and gRPC ports of the config are the container's named ports ($values values)",
    async ({ chart, values }) => {
      for (const r of await configsOf(chart.name, values)) {
        const ports = new Map((r.container.ports ?? []).map((p) => [p.name, p.containerPort]));
        const portOf = (address: unknown): number =>
          typeof address === "string" ? Number(address.split(":").pop()) : NaN;
        // The ops port is the one the liveness probe uses (the CA pod's notifier has its own).
        const opsPortName = String(r.container.livenessProbe?.httpGet?.port);
        expect(portOf(at(r.file, "ops.listen"))).toBe(ports.get(opsPortName));
        if (r.file.listen !== undefined) expect(portOf(r.file.listen)).toBe(ports.get("grpc"));
        else expect(ports.has("grpc")).toBe(false);
      }
    },
  );

  test.each(cases)(
    "$chart.name – every path in the config is on a volume, state on writable ones ($values values)",
    async ({ chart, values }) => {
      for (const r of await configsOf(chart.name, values)) {
        const leaves = [
          ...stringLeaves(r.file),
          ...Object.entries(r.env).map(([path, value]) => ({ path, value })),
        ].filter((l) => l.value.startsWith("/"));
        expect(leaves.length).toBeGreaterThan(0);
        for (const leaf of leaves) {
          if (IMPLICIT_PREFIXES.some((p) => `${leaf.value}/`.startsWith(p))) {
            if (leaf.value.startsWith("/var/run/secrets/kubernetes.io/")) {
              expect(r.pod.automountServiceAccountToken).toBe(true);
            }
            continue;
          }
          const mount = mountFor(r.container, leaf.value);
          if (mount === undefined)
            throw new Error(`${r.service}: ${leaf.path}=${leaf.value} is on no volume`);
          const stateful = /dataDir|adminSocketPath|workloadApi\.socketPath/.test(leaf.path);
          if (stateful) expect([leaf.path, mount.readOnly === true]).toEqual([leaf.path, false]);
        }
      }
    },
  );

  test.each(cases)(
    "$chart.name – admin socket directories are made by the service, not volume roots ($values values)",
    async ({ chart, values }) => {
      // The CA and proxy-config create the socket's directory 0700 and refuse an existing one
      // that group or others can enter, which every emptyDir root is (0777).
      for (const r of await configsOf(chart.name, values)) {
        const socket = at(r.file, "adminSocketPath") ?? at(r.file, "ca.adminSocketPath");
        if (typeof socket !== "string") continue;
        const mount = mountFor(r.container, socket);
        expect(mount).toBeDefined();
        expect(socket.slice(0, socket.lastIndexOf("/"))).not.toBe(mount?.mountPath);
      }
    },
  );

  test.each(cases)(
    "$chart.name – probes and Prometheus annotations use the ops port ($values values)",
    async ({ chart, values }) => {
      const [workload] = workloadsOf(await renderChart(chart.name, values));
      const main = workload!.pod.containers.find((c) => c.name === chart.name)!;
      expect(main.livenessProbe?.httpGet).toEqual({ path: "/healthz", port: "ops" });
      expect(main.readinessProbe?.httpGet).toEqual({ path: "/readyz", port: "ops" });
      const ops = main.ports?.find((p) => p.name === "ops")?.containerPort;
      expect(workload!.podAnnotations).toMatchObject({
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(ops),
        "prometheus.io/path": "/metrics",
      });
    },
  );
});

describe("service config – wiring between charts", () => {
  test("wiring – agents, registrar and bundle-notifier reach the CA's Service with its SPIFFE ID", async () => {
    const caObjects = await renderChart("ca", "default");
    const service = findObject(caObjects, "Service", "meshid-ca");
    const grpc = (service.spec as { ports: { name: string; port: number }[] }).ports.find(
      (p) => p.name === "grpc",
    );
    const address = `meshid-ca.${TEST_NAMESPACE}.svc:${grpc?.port}`;
    const agent = await defaultConfig("agent");
    expect(agent.caAddress).toBe(address);
    expect(agent.caServerId).toBe("spiffe://example.org/meshid/ca");
    for (const chart of ["registrar", "bundle-notifier"]) {
      const config = await defaultConfig(chart);
      expect(at(config, "ca.address")).toBe(address);
      expect(at(config, "ca.serverId")).toBe("spiffe://example.org/meshid/ca");
      expect(at(config, "ca.workloadSocketPath")).toBe(at(agent, "workloadApi.socketPath"));
    }
    const proxyConfig = await defaultConfig("proxy-config");
    expect(at(proxyConfig, "tls.workloadSocketPath")).toBe(at(agent, "workloadApi.socketPath"));
  });

  test("wiring – k8s_psat: the CA accepts the agents' cluster, service account and token audience", async () => {
    const ca = await defaultConfig("ca");
    const agent = await defaultConfig("agent");
    const [cluster] = ca.psatClusters as {
      name: string;
      audience: string;
      allowedServiceAccounts: string[];
    }[];
    expect(cluster?.name).toBe(at(agent, "attestation.cluster"));
    const [agentWorkload] = workloadsOf(await renderChart("agent", "default"));
    expect(cluster?.allowedServiceAccounts).toEqual([
      `${TEST_NAMESPACE}:${agentWorkload!.pod.serviceAccountName}`,
    ]);
    const token = agentWorkload!.pod.volumes?.find((v) => v.name === "psat-token");
    expect(token?.projected?.sources[0]?.serviceAccountToken?.audience).toBe(cluster?.audience);
    const tokenMount = mountFor(
      agentWorkload!.pod.containers[0]!,
      String(at(agent, "attestation.tokenPath")),
    );
    expect(tokenMount?.name).toBe("psat-token");
  });

  test("wiring – the bundle ConfigMap the notifiers write is the one agents mount", async () => {
    const agentObjects = await renderChart("agent", "default");
    const [agentWorkload] = workloadsOf(agentObjects);
    const bundleVolume = agentWorkload!.pod.volumes?.find((v) => v.name === "bundle");
    const agent = await defaultConfig("agent");
    expect(String(agent.bundleFile).startsWith("/run/meshid/bundle/")).toBe(true);
    for (const [chart, service] of [
      ["bundle-notifier", "bundle-notifier"],
      ["ca", "bundle-notifier"],
    ] as const) {
      const config = await defaultConfig(chart, service);
      expect(at(config, "targets.configMap")).toMatchObject({
        enabled: true,
        namespace: TEST_NAMESPACE,
        name: bundleVolume?.configMap?.name,
      });
    }
    // The CA pod's notifier reaches the CA on its admin socket, in the volume both share.
    const [caRendered] = (await configsOf("ca", "default")).filter(
      (r) => r.service === "bundle-notifier",
    );
    const socket = String(at(loadedOk(caRendered!), "ca.adminSocketPath"));
    expect(socket).toBe(at(await defaultConfig("ca"), "adminSocketPath"));
    expect(mountFor(caRendered!.container, socket)?.name).toBe("admin");
  });

  test("wiring – the CA's admin IDs are the control plane's IDs, the one sidecars expect of proxy-config", async () => {
    const ca = await defaultConfig("ca");
    expect(ca.adminIds).toEqual([
      "spiffe://example.org/meshid/registrar",
      "spiffe://example.org/meshid/bundle-notifier",
      "spiffe://example.org/meshid/proxy-config",
    ]);
    // A sidecar checks proxy-config's SVID against spiffe://<td>/meshid/proxy-config by default.
    expect(DEFAULT_PROXY_CONFIG_SERVER_ID_PATH).toBe("/meshid/proxy-config");
  });

  test("wiring – the registrar elects its leader through a Lease in the release namespace", async () => {
    const registrar = await defaultConfig("registrar");
    expect(registrar.leaderElection).toMatchObject({
      enabled: true,
      leaseName: "meshid-registrar",
      leaseNamespace: TEST_NAMESPACE,
    });
    expect(registrar.ownNamespace).toBe(TEST_NAMESPACE);
  });
});
