// The headline: a burst of injected pods on one node, each service its own OS process (ca,
// agent with k8s_psat and the k8s attestor, registrar, bundle-notifier, proxy-config, a real
// nats-server; the Kubernetes API and kubelet stand-ins in this process). Every pod is a tiny
// C Workload API client (fixtures/workload-probe.c, built with `cc`) whose cgroup file in the
// agent's fixture /proc root names the pod; it connects right after the pod is created and
// reports when the first SVID arrives on its stream. Per pod: creation request sent → SVID on
// the pod's stream. Then the control plane's memory: summed RSS of the five services.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import {
  createTempDir,
  createTestCa,
  getFreePort,
  meshidServiceMain,
  requireBinary,
  runCommand,
  startKubeApiServer,
  startKubeletStandIn,
  startMeshidService,
  startNatsServer,
  type KubeApiServer,
  type KubeletStandIn,
  type MeshidServiceProcess,
  type NatsServer,
  type TempDir,
  writeSvidFiles,
} from "@meshid/testkit";
import type { Benchmark, BenchmarkContext } from "../benchmark";
import { percentile } from "./ca";

/** Pods in the burst. */
export const E2E_BURST_PODS = 1000;
/** Pods in quick (smoke-test) mode. */
export const E2E_QUICK_PODS = 20;
/** Wait after the burst before the steady-state memory reading. */
export const E2E_SETTLE_MS = 15_000;
/** Pod creations in flight at once (client-node requests). */
export const E2E_CREATE_CONCURRENCY = 50;
/** Generous bound for the whole burst (never a timing assertion). */
export const E2E_BURST_TIMEOUT_MS = 300_000;
/** The probe's C source (the benchmark compiles it into its temp dir). */
export const WORKLOAD_PROBE_SOURCE = join(
  __dirname,
  "..",
  "..",
  "src",
  "benchmarks",
  "fixtures",
  "workload-probe.c",
);

const TRUST_DOMAIN = "bench.test";
const CLUSTER = "bench";
const NODE = "node-1";
const NAMESPACE = "burst";
const SERVICES = ["ca", "agent", "registrar", "bundle-notifier", "proxy-config"] as const;

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Memory of one process in MiB. */
interface ProcessMemory {
  /** VmRSS: every resident page, shared ones (the node binary's code) counted in full. */
  readonly rss: number;
  /** RssAnon: the process's own heap, stacks and buffers. */
  readonly anon: number;
  /** Pss: resident pages with each shared page divided among the processes mapping it. */
  readonly pss: number;
}

/** Memory of `pid` from /proc/<pid>/status and /proc/<pid>/smaps_rollup. */
async function processMemory(pid: number): Promise<ProcessMemory> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, "utf8");
  const kb = (text: string, key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB$`, "m").exec(text)?.[1] ?? "0") / 1024;
  return { rss: kb(status, "VmRSS"), anon: kb(status, "RssAnon"), pss: kb(rollup, "Pss") };
}

/** CPU time (user + system) of `pid` so far, in ms (/proc/<pid>/stat, 100 ticks a second). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may contain spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function sumMemory(pids: readonly number[]): Promise<ProcessMemory> {
  const all = await Promise.all(pids.map(processMemory));
  return {
    rss: all.reduce((a, m) => a + m.rss, 0),
    anon: all.reduce((a, m) => a + m.anon, 0),
    pss: all.reduce((a, m) => a + m.pss, 0),
  };
}

interface Probe {
  readonly child: ChildProcess;
  /** The create request was sent. */
  readonly requestedAt: number;
  /** The API server answered the create: the pod exists. */
  readonly createdAt: number;
  svidAt?: number;
  error?: string;
}

/**
 * How the control plane runs: `separate` = each service its own process (the default
 * deployment); `combined` = ca, registrar, bundle-notifier and proxy-config hosted by one
 * `meshid-control-plane` process (the agent is always its own, one per node).
 */
export type E2eTopology = "separate" | "combined";

/** The benchmark's metric key of a process: `caRssMb`, `bundleNotifierCpuMs`, … */
function processKey(service: string, suffix: string): string {
  if (service === "control-plane") return `controlPlaneProcess${suffix}`;
  return service.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) + suffix;
}

/** Runs the burst with the control plane deployed as `topology` says. */
export async function runE2e(
  ctx: BenchmarkContext,
  topology: E2eTopology,
): Promise<Record<string, number | string | boolean>> {
  const pods = ctx.quick ? E2E_QUICK_PODS : E2E_BURST_PODS;
  const needed = topology === "combined" ? ["control-plane", "agent"] : SERVICES;
  for (const svc of needed) {
    const main = meshidServiceMain(svc);
    if (
      !(await readFile(main).then(
        () => true,
        () => false,
      ))
    ) {
      throw new Error(`${main} is missing: build it (npm run bench builds every service)`);
    }
  }
  const cc = requireBinary("cc", "gcc");
  let dir: TempDir | undefined;
  let nats: NatsServer | undefined;
  let kube: KubeApiServer | undefined;
  let kubelet: KubeletStandIn | undefined;
  const services: MeshidServiceProcess[] = [];
  const probes: Probe[] = [];
  try {
    dir = await createTempDir("bench-e2e");
    const base = dir.path;
    const probeBin = join(base, "workload-probe");
    const built = await runCommand(cc, ["-O2", "-o", probeBin, WORKLOAD_PROBE_SOURCE]);
    if (built.code !== 0) throw new Error(`cc failed: ${built.stderr}`);

    ctx.progress(
      "e2e: starting nats-server, stand-ins, ca, agent, registrar, bundle-notifier, proxy-config",
    );
    nats = await startNatsServer();
    kube = await startKubeApiServer({ autoCreateNamespaces: true });
    const kubeconfigFile = join(base, "kubeconfig.yaml");
    await writeFile(kubeconfigFile, kube.kubeConfigYaml(), { mode: 0o600 });
    const nodeUid = randomUUID();
    kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } });
    kube.apply({ apiVersion: "v1", kind: "Node", metadata: { name: NODE, uid: nodeUid } });
    kube.apply({
      apiVersion: "meshid.io/v1alpha1",
      kind: "MeshConfig",
      metadata: { name: "meshid" },
      spec: { mtlsMode: "strict", caTTL: "720h", svidTTL: "1h", caKeyType: "ec-p256" },
    });
    kubelet = await startKubeletStandIn();

    const caPort = await getFreePort();
    const caAdminSocket = join(base, "ca", "data", "admin", "admin.sock");
    const caConfig = {
      trustDomain: TRUST_DOMAIN,
      listen: `127.0.0.1:${caPort}`,
      dataDir: join(base, "ca", "data"),
      adminSocketPath: caAdminSocket,
      keyManager: "memory",
      natsUrl: nats.url,
      psatClusters: [
        {
          name: CLUSTER,
          allowedServiceAccounts: ["meshid:meshid-agent"],
          kubeconfigFile,
        },
      ],
      logLevel: "warn",
    };
    const registrarConfig = {
      trustDomain: TRUST_DOMAIN,
      clusterName: CLUSTER,
      kubeconfigFile,
      ca: { adminSocketPath: caAdminSocket },
      natsUrl: nats.url,
      leaderElection: { enabled: false },
      logLevel: "warn",
    };
    const bundleNotifierConfig = {
      trustDomain: TRUST_DOMAIN,
      ca: { adminSocketPath: caAdminSocket },
      natsUrl: nats.url,
      targets: {
        configMap: { enabled: true, kubeconfigFile },
        file: { path: join(base, "bundle.pem") },
      },
      logLevel: "warn",
    };
    // proxy-config serves no sidecar here; it watches the pods like in a cluster.
    const pcCa = await createTestCa({ trustDomain: TRUST_DOMAIN });
    const pcSvid = await pcCa.issueSvid({
      spiffeId: `spiffe://${TRUST_DOMAIN}/meshid/proxy-config`,
    });
    const pcDir = join(base, "proxy-config");
    await mkdir(pcDir, { recursive: true });
    const proxyConfigConfig = {
      trustDomain: TRUST_DOMAIN,
      listen: `127.0.0.1:${await getFreePort()}`,
      adminSocketPath: join(pcDir, "admin", "admin.sock"),
      tls: await writeSvidFiles(pcDir, pcSvid, pcCa.bundlePem),
      meshConfig: { source: "kubernetes", name: "meshid" },
      kubernetes: { enabled: true, kubeconfigFile },
      natsUrl: nats.url,
      logLevel: "warn",
    };

    if (topology === "combined") {
      // One process hosts the four; each reads its own file, as when it runs on its own.
      const cpDir = join(base, "control-plane");
      await mkdir(cpDir, { recursive: true, mode: 0o700 });
      const hosted: Record<string, { configFile: string }> = {};
      for (const [key, config] of [
        ["ca", caConfig],
        ["registrar", registrarConfig],
        ["bundleNotifier", bundleNotifierConfig],
        ["proxyConfig", proxyConfigConfig],
      ] as const) {
        const configFile = join(cpDir, `${key}.yaml`);
        // JSON is YAML.
        await writeFile(configFile, JSON.stringify(config), { mode: 0o600 });
        hosted[key] = { configFile };
      }
      services.push(
        await startMeshidService({
          service: "control-plane",
          workDir: cpDir,
          config: { ...hosted, logLevel: "warn" },
        }),
      );
    } else {
      services.push(
        await startMeshidService({ service: "ca", workDir: join(base, "ca"), config: caConfig }),
      );
    }
    const bundle = join(base, "ca", "bootstrap.pem");
    const { createChannel, createClient, ChannelCredentials } = await import("nice-grpc");
    const { meshidCaV1 } = await import("@meshid/proto");
    const channel = createChannel(`unix://${caAdminSocket}`, ChannelCredentials.createInsecure());
    try {
      const client = createClient(meshidCaV1.BundleServiceDefinition, channel);
      await writeFile(bundle, (await client.getBundle({})).pem);
    } finally {
      channel.close();
    }

    const agentPodUid = randomUUID();
    kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "meshid-agent-0", namespace: "meshid", uid: agentPodUid },
      spec: { nodeName: NODE, serviceAccountName: "meshid-agent", containers: [{ name: "a" }] },
    });
    await mkdir(join(base, "agent", "run"), { recursive: true });
    const tokenPath = join(base, "agent", "token");
    await writeFile(
      tokenPath,
      kube.issueServiceAccountToken({
        namespace: "meshid",
        serviceAccount: "meshid-agent",
        podName: "meshid-agent-0",
        podUid: agentPodUid,
        nodeName: NODE,
        nodeUid,
        audiences: ["meshid-ca"],
        expiresAt: new Date(Date.now() + 3600_000),
      }),
    );
    const procRoot = join(base, "proc");
    await mkdir(procRoot);
    const workloadSocket = join(base, "agent", "run", "workload.sock");
    services.push(
      await startMeshidService({
        service: "agent",
        workDir: join(base, "agent"),
        config: {
          trustDomain: TRUST_DOMAIN,
          caAddress: `localhost:${caPort}`,
          bundleFile: bundle,
          dataDir: join(base, "agent", "data"),
          attestation: { type: "k8s_psat", cluster: CLUSTER, tokenPath },
          workloadApi: { socketPath: workloadSocket, mintWaitMs: E2E_BURST_TIMEOUT_MS },
          natsUrl: nats.url,
          attestors: {
            unix: { enabled: false },
            k8s: { enabled: true, nodeName: NODE, kubeletUrl: kubelet.url },
          },
          procRoot,
          logLevel: "warn",
        },
      }),
    );
    if (topology === "separate") {
      for (const [service, config] of [
        ["registrar", registrarConfig],
        ["bundle-notifier", bundleNotifierConfig],
        ["proxy-config", proxyConfigConfig],
      ] as const) {
        const workDir = service === "proxy-config" ? pcDir : join(base, service);
        services.push(await startMeshidService({ service, workDir, config }));
      }
    }

    // Memory before the burst, for the per-pod growth.
    const idle = await sumMemory(services.map((s) => s.pid()));
    const cpuBefore: Record<string, number> = {};
    for (const s of services) cpuBefore[s.service] = await cpuMs(s.pid());
    const idleEach: string[] = [];
    for (const s of services)
      idleEach.push(`${s.service} ${round((await processMemory(s.pid())).rss)}`);
    ctx.progress(`e2e: idle RSS MiB: ${idleEach.join(", ")}`);
    const idleRssMb = idle.rss;
    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    const kubeletPods: V1Pod[] = [];
    const k = kube;
    const kl = kubelet;
    let done = 0;
    let allDone: () => void = () => undefined;
    const finished = new Promise<void>((resolve) => (allDone = resolve));
    const settle = (): void => {
      done++;
      if (done === pods) allDone();
    };

    const launch = async (i: number): Promise<void> => {
      const name = `pod-${i}`;
      const containerId = randomBytes(32).toString("hex");
      const requestedAt = Date.now();
      const created = await core.createNamespacedPod({
        namespace: NAMESPACE,
        body: {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name, namespace: NAMESPACE, labels: { "meshid.io/inject": "true" } },
          spec: {
            nodeName: NODE,
            serviceAccountName: `sa-${i % 50}`,
            containers: [{ name: "app", image: "example/app:1" }],
          },
        },
      });
      const createdAt = Date.now();
      // The kubelet starts the container: status with its id, seen by the kubelet's /pods.
      const running: V1Pod = {
        ...created,
        status: {
          phase: "Running",
          containerStatuses: [
            {
              name: "app",
              image: "example/app:1",
              imageID: "",
              containerID: `containerd://${containerId}`,
              ready: true,
              restartCount: 0,
            },
          ],
        },
      };
      k.apply(running);
      kubeletPods.push(running);
      kl.setPods(kubeletPods);
      const child = spawn(probeBin, [workloadSocket], { stdio: ["pipe", "pipe", "ignore"] });
      const probe: Probe = { child, requestedAt, createdAt };
      probes.push(probe);
      let out = "";
      child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
        const m = /^(svid (\d+)|error (.*))$/m.exec(out);
        if (m === null || probe.svidAt !== undefined || probe.error !== undefined) return;
        if (m[2] !== undefined) probe.svidAt = Number(m[2]);
        else probe.error = m[3] ?? "error";
        settle();
      });
      child.once("exit", () => {
        if (probe.svidAt === undefined && probe.error === undefined) {
          probe.error = `exited: ${out.trim()}`;
          settle();
        }
      });
      const pidDir = join(procRoot, String(child.pid));
      await mkdir(pidDir);
      await symlink(`/proc/${String(child.pid)}/stat`, join(pidDir, "stat"));
      await writeFile(
        join(pidDir, "cgroup"),
        `0::/kubepods/besteffort/pod${created.metadata?.uid ?? ""}/${containerId}\n`,
      );
      child.stdin?.write("go\n");
    };

    ctx.progress(
      `e2e: burst of ${pods} injected pods (${E2E_CREATE_CONCURRENCY} creations in flight)`,
    );
    const startedAt = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(E2E_CREATE_CONCURRENCY, pods) }, async () => {
        while (next < pods) await launch(next++);
      }),
    );
    const timeout = new Promise<"timeout">((resolve) =>
      setTimeout(() => resolve("timeout"), E2E_BURST_TIMEOUT_MS).unref(),
    );
    if ((await Promise.race([finished, timeout])) === "timeout") {
      throw new Error(
        `only ${done} of ${pods} pods got an answer within ${E2E_BURST_TIMEOUT_MS} ms`,
      );
    }
    const burstMs = Date.now() - startedAt;
    const errors = probes.filter((p) => p.error !== undefined);
    if (errors.length > 0) {
      throw new Error(`${errors.length} pods got no SVID, e.g. ${errors[0]?.error ?? ""}`);
    }
    const latencies = probes.map((p) => Math.max(0, (p.svidAt ?? 0) - p.createdAt));
    const fromRequest = probes.map((p) => (p.svidAt ?? 0) - p.requestedAt);
    const podsCreatedMs = Math.max(...probes.map((p) => p.createdAt)) - startedAt;
    // Memory once every pod holds its SVID (and its stream stays open).
    // CPU each service spent on the burst.
    const cpu: Record<string, number> = {};
    for (const s of services) cpu[s.service] = (await cpuMs(s.pid())) - (cpuBefore[s.service] ?? 0);
    const rss: Record<string, number> = {};
    for (const s of services) rss[s.service] = (await processMemory(s.pid())).rss;
    const controlPlaneRssMb = Object.values(rss).reduce((a, b) => a + b, 0);
    const loaded = await sumMemory(services.map((s) => s.pid()));
    // And once the burst's garbage had time to go (the pods and their streams stay): the
    // steady state at 1,000 pods, beside the figure taken the moment the last SVID arrived.
    ctx.progress(`e2e: waiting ${E2E_SETTLE_MS / 1000} s for the steady state at ${pods} pods`);
    await new Promise((resolve) => setTimeout(resolve, ctx.quick ? 0 : E2E_SETTLE_MS));
    const settled = await sumMemory(services.map((s) => s.pid()));
    return {
      pods,
      burstMs,
      podToSvidP50Ms: round(percentile(latencies, 50)),
      podToSvidP99Ms: round(percentile(latencies, 99)),
      podToSvidMaxMs: round(Math.max(...latencies)),
      requestToSvidP50Ms: round(percentile(fromRequest, 50)),
      requestToSvidP99Ms: round(percentile(fromRequest, 99)),
      podsCreatedMs,
      controlPlaneRssMb: round(controlPlaneRssMb),
      controlPlaneRssIdleMb: round(idleRssMb),
      // The same five processes without double-counting shared pages (PSS), and their own
      // memory only (RssAnon): the node binary's code is ≈ 31 MiB of each process's RSS.
      controlPlanePssMb: round(loaded.pss),
      controlPlaneAnonMb: round(loaded.anon),
      controlPlaneAnonIdleMb: round(idle.anon),
      controlPlaneRssSettledMb: round(settled.rss),
      controlPlanePssSettledMb: round(settled.pss),
      controlPlaneKbPerPod: round(((controlPlaneRssMb - idleRssMb) * 1024) / pods),
      topology,
      processes: services.length,
      ...Object.fromEntries(
        services.flatMap((p) => [
          [processKey(p.service, "RssMb"), round(rss[p.service] ?? 0)],
          [processKey(p.service, "CpuMs"), cpu[p.service] ?? 0],
        ]),
      ),
      targetP99Ms: 250,
      targetRssMb: 300,
      loadAvg1m: round(loadavg()[0] ?? 0),
    };
  } finally {
    for (const p of probes) {
      p.child.stdin?.end();
      p.child.kill("SIGKILL");
    }
    for (const s of services.reverse()) await s.stop().catch(() => undefined);
    await kubelet?.stop();
    await kube?.stop();
    await nats?.stop();
    await dir?.cleanup();
  }
}

/** See the file comment (each service its own process; `e2e-combined` hosts four in one). */
export const benchmark: Benchmark = { name: "e2e", run: (ctx) => runE2e(ctx, "separate") };
