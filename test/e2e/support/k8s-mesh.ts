// The whole mesh as deployed on one Kubernetes node, each service its own OS process: the
// Kubernetes API and kubelet stand-ins, a real nats-server (JetStream), the ca, an agent that
// attests its node with k8s_psat and its workloads with the k8s attestor (a fixture /proc root
// whose cgroup files name the pods), the registrar and the bundle-notifier. Pods are fixture
// child processes: a pod's process waits until its cgroup file exists, so the agent always
// finds it.
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { meshidCaV1 } from "@meshid/proto";
import {
  createTempDir,
  getFreePort,
  meshidServiceMain,
  requireBinary,
  spawnManaged,
  startKubeApiServer,
  startKubeletStandIn,
  startMeshidService,
  waitForPort,
  type KubeApiServer,
  type KubeletStandIn,
  type ManagedProcess,
  type MeshidServiceProcess,
  type SpawnManagedParams,
  type TempDir,
} from "@meshid/testkit";
import { ChannelCredentials, createChannel, createClient, type Client } from "nice-grpc";

/** Every wait of the e2e suites: a generous bound on something that must happen. */
export const WAIT_MS = 90_000;
export const TRUST_DOMAIN = "e2e.test";
export const CLUSTER = "e2e-cluster";
export const NODE_NAME = "node-a";
/** The label that makes the registrar give a pod an identity. */
export const INJECT_LABELS = { "meshid.io/inject": "true" } as const;

/** Polls `check` until it returns something other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new Error(`timed out waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A nats-server on a fixed port with a JetStream store, which can be restarted in place. */
export interface RestartableNats {
  readonly url: string;
  readonly port: number;
  /** Stops the server, runs `during` (the outage), and starts it again on the same port and store. */
  restart(during?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

async function startRestartableNats(storeDir: string): Promise<RestartableNats> {
  const binary = requireBinary("nats-server", "nats-server");
  const port = await getFreePort();
  let proc: ManagedProcess | undefined;
  const launch = async (): Promise<void> => {
    proc = await spawnManaged(
      binary,
      ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", storeDir],
      { name: "nats-server" },
    );
    await waitForPort(port, { timeoutMs: 20_000 });
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async restart(during) {
      await proc?.stop();
      await during?.();
      await launch();
    },
    async stop() {
      await proc?.stop();
    },
  };
}

/** A pod of the world: the object in the API server and its container id. */
export interface MeshPod {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly serviceAccount: string;
  /** The container whose process is the pod's Workload API caller. */
  readonly containerId: string;
  /** `spiffe://<td>/ns/<ns>/sa/<sa>`: the registrar's default template. */
  readonly spiffeId: string;
}

/** Parameters of {@link K8sMesh.createPod}. */
export interface CreateMeshPodParams {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount?: string;
  /** Default {@link INJECT_LABELS}. */
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** Which optional services {@link startK8sMesh} starts. */
export interface StartK8sMeshParams {
  /** Default true. */
  readonly registrar?: boolean;
  /** Default true: ConfigMap `meshid/meshid-bundle` and a PEM file. */
  readonly bundleNotifier?: boolean;
  /** More CA settings. */
  readonly caConfig?: Record<string, unknown>;
  /** More agent settings. */
  readonly agentConfig?: Record<string, unknown>;
  /** Environment of every service (e.g. OTEL_* for the trace suite). */
  readonly serviceEnv?: Readonly<Record<string, string>>;
  /** Log level of every service. Default `info`. */
  readonly logLevel?: string;
}

/** The running world. */
export interface K8sMesh {
  readonly dir: string;
  readonly kube: KubeApiServer;
  readonly core: CoreV1Api;
  readonly kubelet: KubeletStandIn;
  readonly nats: RestartableNats;
  readonly ca: MeshidServiceProcess;
  readonly caAddress: string;
  readonly caAdminSocket: string;
  readonly agent: MeshidServiceProcess;
  readonly registrar: MeshidServiceProcess | undefined;
  readonly bundleNotifier: MeshidServiceProcess | undefined;
  /** The agent's Workload API socket. */
  readonly workloadSocket: string;
  /** The kubeconfig file of the stand-in (for services). */
  readonly kubeconfigFile: string;
  /** The PEM file the bundle-notifier keeps current. */
  readonly bundleFile: string;
  readonly nodeUid: string;
  /** The agent's SPIFFE ID (k8s_psat). */
  readonly agentId: string;
  /** CA admin clients over its Unix socket. */
  readonly admin: {
    readonly entries: Client<typeof meshidCaV1.EntryServiceDefinition>;
    readonly agents: Client<typeof meshidCaV1.AgentServiceDefinition>;
    readonly bundle: Client<typeof meshidCaV1.BundleServiceDefinition>;
    readonly authorities: Client<typeof meshidCaV1.AuthorityServiceDefinition>;
  };
  /** Creates an (injected, by default) pod on the node, as the API server and kubelet see it. */
  createPod(params: CreateMeshPodParams): Promise<MeshPod>;
  /** Deletes the pod from the API server and the kubelet. */
  deletePod(pod: MeshPod): Promise<void>;
  /**
   * Starts `command args…` as the pod's container process: it waits until its cgroup file in
   * the fixture /proc root names the pod, then execs the command (same pid).
   */
  spawnInPod(
    pod: MeshPod,
    command: string,
    args: readonly string[],
    params?: SpawnManagedParams,
  ): Promise<ManagedProcess>;
  /** The PEM in the bundle ConfigMap, or undefined when it does not exist yet. */
  configMapBundle(): Promise<string | undefined>;
  /** The CA's current bundle as PEM. */
  caBundlePem(): Promise<string>;
  /** The registrar's entry for the pod (SPIFFE ID), once it exists. */
  waitForEntry(pod: MeshPod): Promise<void>;
  stop(): Promise<void>;
}

function pemCount(pem: string): number {
  return (pem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
}
export { pemCount };

/**
 * Starts the world. Needs the services built (`npx turbo run build --filter=@meshid/<svc>...`).
 *
 * @throws Error naming the service to build when one is missing.
 */
export async function startK8sMesh(params: StartK8sMeshParams = {}): Promise<K8sMesh> {
  const wantRegistrar = params.registrar ?? true;
  const wantNotifier = params.bundleNotifier ?? true;
  for (const svc of [
    "ca",
    "agent",
    ...(wantRegistrar ? ["registrar"] : []),
    ...(wantNotifier ? ["bundle-notifier"] : []),
  ]) {
    if (!existsSync(meshidServiceMain(svc))) {
      throw new Error(
        `${meshidServiceMain(svc)} is missing: build it first (npx turbo run build --filter=@meshid/${svc}...)`,
      );
    }
  }
  const logLevel = params.logLevel ?? "info";
  const env = params.serviceEnv ?? {};
  const tmp: TempDir = await createTempDir("e2e-mesh");
  const dir = tmp.path;
  await chmod(dir, 0o755);
  const stops: (() => Promise<unknown>)[] = [];
  // Stopped in reverse order of start: pods' callers first, nats-server and the stand-ins last.
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.splice(0).reverse()) {
      try {
        await stop();
      } catch {
        // keep going
      }
    }
  };
  try {
    const kube = await startKubeApiServer({ autoCreateNamespaces: true });
    stops.push(() => kube.stop());
    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    const kubeconfigFile = join(dir, "kubeconfig.yaml");
    await writeFile(kubeconfigFile, kube.kubeConfigYaml(), { mode: 0o600 });
    kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } });
    const nodeUid = randomUUID();
    kube.apply({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: NODE_NAME, uid: nodeUid, labels: { "kubernetes.io/hostname": NODE_NAME } },
    });
    const kubelet = await startKubeletStandIn();
    stops.push(() => kubelet.stop());

    const nats = await startRestartableNats(await mkdirp(join(dir, "nats")));
    stops.push(() => nats.stop());

    // CA: disk keys (a restart keeps the authority), psat for our cluster's agent SA.
    const caPort = await getFreePort();
    const caDataDir = join(dir, "ca", "data");
    const caAdminSocket = join(caDataDir, "admin", "admin.sock");
    const ca = await startMeshidService({
      service: "ca",
      workDir: await mkdirp(join(dir, "ca")),
      env,
      config: {
        trustDomain: TRUST_DOMAIN,
        listen: `127.0.0.1:${caPort}`,
        dataDir: caDataDir,
        adminSocketPath: caAdminSocket,
        keyManager: "disk",
        natsUrl: nats.url,
        psatClusters: [
          {
            name: CLUSTER,
            audience: "meshid-ca",
            allowedServiceAccounts: ["meshid:meshid-agent"],
            kubeconfigFile,
          },
        ],
        logLevel,
        ...params.caConfig,
      },
    });
    stops.push(() => ca.stop());
    const channel = createChannel(`unix://${caAdminSocket}`, ChannelCredentials.createInsecure());
    stops.push(() => Promise.resolve(channel.close()));
    const admin = {
      entries: createClient(meshidCaV1.EntryServiceDefinition, channel),
      agents: createClient(meshidCaV1.AgentServiceDefinition, channel),
      bundle: createClient(meshidCaV1.BundleServiceDefinition, channel),
      authorities: createClient(meshidCaV1.AuthorityServiceDefinition, channel),
    };
    const caBundlePem = async (): Promise<string> => (await admin.bundle.getBundle({})).pem;
    const bootstrapBundle = join(dir, "ca", "bootstrap-bundle.pem");
    await writeFile(bootstrapBundle, await caBundlePem());

    // Agent: k8s_psat node attestation, k8s workload attestor over the fixture /proc root.
    const agentPodUid = randomUUID();
    kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "meshid-agent-x1", namespace: "meshid", uid: agentPodUid },
      spec: {
        nodeName: NODE_NAME,
        serviceAccountName: "meshid-agent",
        containers: [{ name: "agent", image: "meshid/agent:dev" }],
      },
      status: { phase: "Running" },
    });
    const tokenPath = join(dir, "agent", "token");
    await mkdirp(join(dir, "agent"));
    await writeFile(
      tokenPath,
      kube.issueServiceAccountToken({
        namespace: "meshid",
        serviceAccount: "meshid-agent",
        podName: "meshid-agent-x1",
        podUid: agentPodUid,
        nodeName: NODE_NAME,
        nodeUid,
        audiences: ["meshid-ca"],
        expiresAt: new Date(Date.now() + 24 * 3600 * 1000),
      }),
      { mode: 0o600 },
    );
    const procRoot = await mkdirp(join(dir, "proc"));
    const runDir = await mkdirp(join(dir, "agent", "run"));
    await chmod(runDir, 0o755);
    const workloadSocket = join(runDir, "workload.sock");
    const agent = await startMeshidService({
      service: "agent",
      workDir: join(dir, "agent"),
      env,
      config: {
        trustDomain: TRUST_DOMAIN,
        caAddress: `localhost:${caPort}`,
        bundleFile: bootstrapBundle,
        dataDir: join(dir, "agent", "data"),
        attestation: { type: "k8s_psat", cluster: CLUSTER, tokenPath },
        workloadApi: { socketPath: workloadSocket },
        natsUrl: nats.url,
        attestors: {
          unix: { enabled: false },
          k8s: { enabled: true, nodeName: NODE_NAME, kubeletUrl: kubelet.url },
        },
        procRoot,
        logLevel,
        ...params.agentConfig,
      },
    });
    stops.push(() => agent.stop());
    const serving = await agent.waitForOutput(/^.*"msg":"agent serving the Workload API".*$/m, {
      timeoutMs: WAIT_MS,
    });
    const agentId = (JSON.parse(serving[0]) as { agentId?: string }).agentId ?? "";

    let registrar: MeshidServiceProcess | undefined;
    if (wantRegistrar) {
      registrar = await startMeshidService({
        service: "registrar",
        workDir: await mkdirp(join(dir, "registrar")),
        env,
        config: {
          trustDomain: TRUST_DOMAIN,
          clusterName: CLUSTER,
          kubeconfigFile,
          ca: { adminSocketPath: caAdminSocket },
          natsUrl: nats.url,
          leaderElection: { enabled: false },
          logLevel,
        },
      });
      const r = registrar;
      stops.push(() => r.stop());
    }

    const bundleFile = join(dir, "bundle", "bundle.pem");
    let bundleNotifier: MeshidServiceProcess | undefined;
    if (wantNotifier) {
      await mkdirp(join(dir, "bundle"));
      bundleNotifier = await startMeshidService({
        service: "bundle-notifier",
        workDir: await mkdirp(join(dir, "bundle-notifier")),
        env,
        config: {
          trustDomain: TRUST_DOMAIN,
          ca: { adminSocketPath: caAdminSocket },
          natsUrl: nats.url,
          targets: {
            configMap: {
              enabled: true,
              namespace: "meshid",
              name: "meshid-bundle",
              kubeconfigFile,
            },
            file: { path: bundleFile, format: "pem" },
          },
          logLevel,
        },
      });
      const b = bundleNotifier;
      stops.push(() => b.stop());
    }

    const pods = new Map<string, V1Pod>();
    const publishKubeletPods = (): void => kubelet.setPods([...pods.values()]);
    const containerOf = new Map<string, string>();

    return {
      dir,
      kube,
      core,
      kubelet,
      nats,
      ca,
      caAddress: `localhost:${caPort}`,
      caAdminSocket,
      agent,
      registrar,
      bundleNotifier,
      workloadSocket,
      kubeconfigFile,
      bundleFile,
      nodeUid,
      agentId,
      admin,
      async createPod(p) {
        const serviceAccount = p.serviceAccount ?? p.name;
        const containerId = randomBytes(32).toString("hex");
        const created = await core.createNamespacedPod({
          namespace: p.namespace,
          body: {
            apiVersion: "v1",
            kind: "Pod",
            metadata: {
              name: p.name,
              namespace: p.namespace,
              labels: p.labels ?? { ...INJECT_LABELS },
              ...(p.annotations === undefined ? {} : { annotations: p.annotations }),
            },
            spec: {
              nodeName: NODE_NAME,
              serviceAccountName: serviceAccount,
              containers: [
                { name: "app", image: "example/app:1" },
                { name: "meshid-sidecar", image: "meshid/sidecar:dev" },
              ],
            },
          },
        });
        const uid = created.metadata?.uid ?? "";
        const running: V1Pod = {
          ...created,
          status: {
            phase: "Running",
            podIP: "127.0.0.1",
            containerStatuses: [
              {
                name: "meshid-sidecar",
                image: "meshid/sidecar:dev",
                imageID: "",
                containerID: `containerd://${containerId}`,
                ready: true,
                restartCount: 0,
              },
            ],
          },
        };
        kube.apply(running);
        pods.set(uid, running);
        containerOf.set(uid, containerId);
        publishKubeletPods();
        return {
          namespace: p.namespace,
          name: p.name,
          uid,
          serviceAccount,
          containerId,
          spiffeId: `spiffe://${TRUST_DOMAIN}/ns/${p.namespace}/sa/${serviceAccount}`,
        };
      },
      async deletePod(pod) {
        await core.deleteNamespacedPod({ namespace: pod.namespace, name: pod.name });
        pods.delete(pod.uid);
        publishKubeletPods();
      },
      async spawnInPod(pod, command, args, spawnParams = {}) {
        // sh keeps its pid through exec: the pid we are given is the pid that calls the agent.
        const proc = await spawnManaged(
          "/bin/sh",
          [
            "-c",
            'while [ ! -e "$0/$$/cgroup" ]; do sleep 0.02; done; exec "$@"',
            procRoot,
            command,
            ...args,
          ],
          { name: `${pod.name}:${command.split("/").pop() ?? command}`, ...spawnParams },
        );
        stops.push(() => proc.stop());
        const pidDir = join(procRoot, String(proc.pid));
        await mkdir(pidDir, { recursive: true });
        await symlink(`/proc/${proc.pid}/stat`, join(pidDir, "stat"));
        await writeFile(
          join(pidDir, "cgroup"),
          `0::/kubepods/burstable/pod${pod.uid}/${pod.containerId}\n`,
        );
        return proc;
      },
      configMapBundle() {
        const cm = kube.get<{ data?: Record<string, string> }>({
          apiVersion: "v1",
          kind: "ConfigMap",
          namespace: "meshid",
          name: "meshid-bundle",
        });
        return Promise.resolve(cm?.data?.["bundle.crt"]);
      },
      caBundlePem,
      async waitForEntry(pod) {
        await waitFor(`the registrar's entry for ${pod.spiffeId}`, async () => {
          const listed = await admin.entries.listEntries({
            bySelectors: [{ type: "k8s", value: `pod-uid:${pod.uid}` }],
          });
          return listed.entries.length > 0;
        });
      },
      async stop() {
        await stopAll();
        await rm(procRoot, { recursive: true, force: true });
        await tmp.cleanup();
      },
    };
  } catch (err) {
    await stopAll();
    await tmp.cleanup();
    throw err;
  }
}

async function mkdirp(path: string): Promise<string> {
  await mkdir(path, { recursive: true, mode: 0o755 });
  return path;
}
