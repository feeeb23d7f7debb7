// The configuration file and environment each chart gives its service parse with that
// service's own schema (loadConfig + the exported zod schema), so a renamed or removed
// setting, or a chart typo, fails here rather than at start-up in a cluster. Also: ports,
// paths and cross-chart wiring (addresses, socket, bundle, attestation) agree.
import { DEFAULT_PROXY_CONFIG_SERVER_ID_PATH } from "@meshid/sidecar/src/config";
import { helmTemplate, type KubeObject } from "../src/helm";
import {
  CHART_CASES,
  SERVICE_CHARTS,
  STANDALONE_SERVICES,
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

const cases = CHART_CASES;

/** Container port names of the gRPC listeners of the services the control plane hosts. */
const HOSTED_GRPC_PORT_NAMES: Readonly<Record<string, string>> = {
  ca: "grpc",
  "proxy-config": "proxy-config",
};

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
        if (r.hostedBy === undefined) {
          expect(portOf(at(r.file, "ops.listen"))).toBe(ports.get(opsPortName));
        } else {
          // The control plane's one ops server answers for every service it hosts.
          expect([r.service, r.file.ops]).toEqual([r.service, undefined]);
        }
        // The control plane listens for its hosted services (checked with each of them).
        if (r.service === "control-plane") continue;
        const grpcPortName =
          r.hostedBy === undefined ? "grpc" : (HOSTED_GRPC_PORT_NAMES[r.service] ?? "none");
        if (r.file.listen !== undefined) {
          expect([r.service, portOf(r.file.listen)]).toEqual([r.service, ports.get(grpcPortName)]);
        } else if (r.hostedBy === undefined) expect(ports.has("grpc")).toBe(false);
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

describe("service config – the control plane in one process", () => {
  const small = async (): Promise<RenderedServiceConfig[]> => configsOf("control-plane", "small");
  const hosted = async (service: string): Promise<RenderedServiceConfig> => {
    const found = (await small()).find((r) => r.service === service);
    if (found === undefined) throw new Error(`the control plane hosts no ${service}`);
    return found;
  };

  test("control plane – its own file loads with its schema and hosts the four services", async () => {
    const rendered = await small();
    expect(rendered.map((r) => [r.service, r.hostedBy])).toEqual([
      ["control-plane", undefined],
      ...STANDALONE_SERVICES.map((s) => [s, "control-plane"]),
    ]);
    const own = loadedOk(rendered[0]!);
    expect(own.ops).toEqual({ listen: { host: "0.0.0.0", port: 9090 } });
    for (const r of rendered.slice(1)) expect(r.configPath).toBe(`/etc/meshid/${r.service}.yaml`);
  });

  test("control plane – a setting its schema does not know is caught, in its file and a hosted one", async () => {
    const objects = await helmTemplate({
      chart: chartDir("control-plane"),
      set: ["controlPlane.config.opsListen=x", "controlPlane.registrar.config.batchSiz=1"],
    });
    const rendered = renderedServiceConfigs(objects);
    const problems = (service: string): string[] => {
      const r = rendered.find((c) => c.service === service)!;
      return r.loaded.ok ? [] : r.loaded.problems.map((p) => p.path);
    };
    expect(problems("control-plane")).toEqual(["opsListen"]);
    expect(problems("registrar")).toEqual(["batchSiz"]);
  });

  test("control plane – each hosted file is the standalone chart's, but for ops and how the CA is reached", async () => {
    // What differs on purpose: one ops server; the registrar and the bundle-notifier on the
    // CA's admin socket; no CA admin IDs (nothing calls its admin APIs over mTLS).
    const differs: Record<string, readonly string[]> = {
      ca: ["ops", "adminIds"],
      registrar: ["ops", "ca"],
      "bundle-notifier": ["ops", "ca"],
      "proxy-config": ["ops"],
    };
    for (const service of STANDALONE_SERVICES) {
      const standalone = (await configsOf(service, "default")).find((r) => r.service === service)!;
      const combined = await hosted(service);
      const without = (file: Record<string, unknown>): Record<string, unknown> =>
        Object.fromEntries(Object.entries(file).filter(([k]) => !differs[service]!.includes(k)));
      expect([service, without(combined.file)]).toEqual([service, without(standalone.file)]);
    }
    expect((await hosted("ca")).file.adminIds).toEqual([]);
  });

  test("control plane – the registrar and the bundle-notifier call the CA on its admin socket in the pod", async () => {
    const caSocket = at(loadedOk(await hosted("ca")), "adminSocketPath");
    for (const service of ["registrar", "bundle-notifier"]) {
      const r = await hosted(service);
      expect(r.file.ca).toEqual({ adminSocketPath: caSocket });
      expect(at(loadedOk(r), "ca.address")).toBeUndefined();
      expect(mountFor(r.container, String(caSocket))?.name).toBe("ca-admin");
    }
  });

  test("control plane – Services keep the standalone charts' names and ports, for agents and sidecars", async () => {
    const objects = await renderChart("control-plane", "small");
    const [workload] = workloadsOf(objects);
    const containerPorts = new Map(
      (workload!.pod.containers[0]!.ports ?? []).map((p) => [p.name, p.containerPort]),
    );
    const portsOf = (o: KubeObject): { name: string; port: number; targetPort: string }[] =>
      (o.spec as { ports: { name: string; port: number; targetPort: string }[] }).ports;
    for (const [chart, service] of [
      ["ca", "meshid-ca"],
      ["proxy-config", "meshid-proxy-config"],
    ] as const) {
      const standalone = findObject(await renderChart(chart, "default"), "Service", service);
      const combined = findObject(objects, "Service", service);
      const grpc = portsOf(combined).find((p) => p.name === "grpc")!;
      expect(grpc.port).toBe(portsOf(standalone).find((p) => p.name === "grpc")?.port);
      // The Service reaches the hosted service's listener, and selects the control-plane pod.
      const listen = String((await hosted(chart)).file.listen);
      expect(containerPorts.get(grpc.targetPort)).toBe(Number(listen.split(":").pop()));
      expect(workload!.podLabels).toMatchObject(
        (combined.spec as { selector: Record<string, string> }).selector,
      );
      // Ready only once every hosted service is; proxy-config's SVID needs an agent, which needs
      // the CA first: the one pod's address is published before.
      expect(
        (combined.spec as { publishNotReadyAddresses?: boolean }).publishNotReadyAddresses,
      ).toBe(true);
    }
  });

  test("control plane – wiring with the agents of the small environment", async () => {
    const agentObjects = await renderChart("agent", "small");
    const [agentRendered] = renderedServiceConfigs(agentObjects);
    const agent = loadedOk(agentRendered!);
    const [agentWorkload] = workloadsOf(agentObjects);
    const ca = loadedOk(await hosted("ca"));
    const [cluster] = ca.psatClusters as { name: string; allowedServiceAccounts: string[] }[];
    expect(cluster?.name).toBe(at(agent, "attestation.cluster"));
    expect(cluster?.allowedServiceAccounts).toEqual([
      `${TEST_NAMESPACE}:${agentWorkload!.pod.serviceAccountName}`,
    ]);
    expect(agent.caAddress).toBe(`meshid-ca.${TEST_NAMESPACE}.svc:8443`);
    const proxyConfig = loadedOk(await hosted("proxy-config"));
    expect(at(proxyConfig, "tls.workloadSocketPath")).toBe(at(agent, "workloadApi.socketPath"));
    const bundleVolume = agentWorkload!.pod.volumes?.find((v) => v.name === "bundle");
    expect(at(loadedOk(await hosted("bundle-notifier")), "targets.configMap")).toMatchObject({
      enabled: true,
      namespace: TEST_NAMESPACE,
      name: bundleVolume?.configMap?.name,
    });
  });
});
