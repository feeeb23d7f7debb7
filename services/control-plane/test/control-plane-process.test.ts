// The meshid-control-plane process (dist/main.js) hosting the four services with a real
// nats-server and the Kubernetes API stand-in: one ops server for all, a pod registered by the
// hosted registrar at the hosted CA, the bundle written by the hosted bundle-notifier, a clean
// stop; and a configuration error naming the service it belongs to.
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createTempDir,
  createTestCa,
  getFreePort,
  meshidServiceMain,
  openCaAdmin,
  runCommand,
  startKubeApiServer,
  startMeshidService,
  startNatsServer,
  type KubeApiServer,
  type MeshidServiceProcess,
  type NatsServer,
  type TempDir,
  writeSvidFiles,
} from "@meshid/testkit";

jest.setTimeout(120_000);

const MAIN = meshidServiceMain("control-plane");
const TRUST_DOMAIN = "cp.test";

/** Environment without any MESHID_* or OTEL_* variable of ours. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("control-plane process", () => {
  let dir: TempDir;
  let nats: NatsServer | undefined;
  let kube: KubeApiServer | undefined;
  let cp: MeshidServiceProcess | undefined;

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build the control plane first`);
    dir = await createTempDir("control-plane-process");
  });

  afterAll(async () => {
    await cp?.stop();
    await kube?.stop();
    await nats?.stop();
    await dir?.cleanup();
  });

  it("control-plane process – a hosted service's config error exits 2 and names the service", async () => {
    const caFile = join(dir.path, "bad-ca.yaml");
    await writeFile(caFile, "trustDomain: Bad Domain\n");
    const result = await runCommand(process.execPath, [MAIN], {
      env: {
        ...cleanEnv(),
        MESHID_CONTROL_PLANE_CA__CONFIG_FILE: caFile,
        MESHID_CONTROL_PLANE_CA__ENABLED: "true",
      },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/invalid configuration for service "control-plane"/);
    expect(result.stderr).toMatch(/trustDomain: .*\(ca\)/);
  });

  it("control-plane process – hosts the four services behind one ops server and stops cleanly", async () => {
    nats = await startNatsServer();
    kube = await startKubeApiServer({ autoCreateNamespaces: true });
    const kubeconfigFile = join(dir.path, "kubeconfig.yaml");
    await writeFile(kubeconfigFile, kube.kubeConfigYaml(), { mode: 0o600 });
    kube.apply({
      apiVersion: "meshid.io/v1alpha1",
      kind: "MeshConfig",
      metadata: { name: "meshid" },
      spec: { mtlsMode: "strict", caTTL: "720h", svidTTL: "1h", caKeyType: "ec-p256" },
    });
    const base = join(dir.path, "cp");
    await mkdir(base, { recursive: true, mode: 0o700 });
    const adminSocketPath = join(base, "ca", "admin.sock");
    const bundleFile = join(base, "ca-bundle.pem");
    const tlsCa = await createTestCa({ trustDomain: TRUST_DOMAIN });
    const pcSvid = await tlsCa.issueSvid({
      spiffeId: `spiffe://${TRUST_DOMAIN}/meshid/proxy-config`,
    });
    const tls = await writeSvidFiles(base, pcSvid, tlsCa.bundlePem);
    const configs: Record<string, Record<string, unknown>> = {
      ca: {
        trustDomain: TRUST_DOMAIN,
        listen: `127.0.0.1:${await getFreePort()}`,
        dataDir: join(base, "ca", "data"),
        adminSocketPath,
        keyManager: "memory",
        natsUrl: nats.url,
        logLevel: "warn",
      },
      registrar: {
        trustDomain: TRUST_DOMAIN,
        clusterName: "cp",
        kubeconfigFile,
        ca: { adminSocketPath },
        natsUrl: nats.url,
        leaderElection: { enabled: false },
        logLevel: "warn",
      },
      bundleNotifier: {
        trustDomain: TRUST_DOMAIN,
        ca: { adminSocketPath },
        natsUrl: nats.url,
        targets: { file: { path: bundleFile } },
        logLevel: "warn",
      },
      proxyConfig: {
        trustDomain: TRUST_DOMAIN,
        listen: `127.0.0.1:${await getFreePort()}`,
        adminSocketPath: join(base, "proxy-config", "admin.sock"),
        tls,
        meshConfig: { source: "kubernetes", name: "meshid" },
        kubernetes: { enabled: true, kubeconfigFile },
        natsUrl: nats.url,
        logLevel: "warn",
      },
    };
    const hosted: Record<string, { configFile: string }> = {};
    for (const [key, config] of Object.entries(configs)) {
      const configFile = join(base, `${key}.yaml`);
      // JSON is YAML.
      await writeFile(configFile, JSON.stringify(config), { mode: 0o600 });
      hosted[key] = { configFile };
    }
    // Resolves once /readyz answers 200: every hosted service is ready.
    cp = await startMeshidService({
      service: "control-plane",
      workDir: base,
      config: hosted,
    });
    expect(cp.output()).toMatch(/control plane running/);
    expect(cp.output()).toMatch(/"services":\["ca","registrar","bundle-notifier","proxy-config"\]/);

    // The hosted bundle-notifier wrote the hosted CA's bundle.
    const bundle = await until("the bundle file", async () =>
      existsSync(bundleFile) ? readFile(bundleFile, "utf8") : undefined,
    );
    expect(bundle).toMatch(/BEGIN CERTIFICATE/);

    // The hosted registrar registers an injected pod (on a known node) at the hosted CA.
    kube.apply({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-1", uid: "5d6f3c1e-2b4a-4e8f-9a0b-7c6d5e4f3a2b" },
    });
    kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: "web-0",
        namespace: "shop",
        uid: "0b8c6a5e-6f1d-4c59-9d0e-1a2b3c4d5e6f",
        labels: { "meshid.io/inject": "true" },
      },
      spec: { nodeName: "node-1", serviceAccountName: "web", containers: [{ name: "app" }] },
    });
    const admin = openCaAdmin(adminSocketPath);
    try {
      const entry = await until("the pod's entry", async () => {
        const { entries } = await admin.entries.listEntries({ pageSize: 100 });
        return entries.find((e) => e.spiffeId?.path === "/ns/shop/sa/web");
      });
      expect(entry.spiffeId?.trustDomain).toBe(TRUST_DOMAIN);
    } finally {
      admin.close();
    }

    // One ops server answers for all four.
    const health = await cp.ops("/healthz");
    expect(health.status).toBe(200);
    const metrics = (await cp.ops("/metrics")).body;
    for (const name of [
      "meshid_registrar_entries_created_total",
      "meshid_bundle_notifier_ca_connected",
      "meshid_proxy_config_mtls_mode",
    ]) {
      expect(metrics).toContain(name);
    }

    const exit = await cp.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(cp.output()).toMatch(/control-plane stopped/);
    cp = undefined;
  });
});
