// The registrar end to end: a real nats-server, the built CA and the built registrar as child
// processes, against the Kubernetes API server stand-in in this process. A burst of injected
// pods is created through client-node; each pod's entry is seen at the CA through the CA's own
// entry.created event (published right after the store commit). Per pod: creation request
// sent → entry.created received.
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
import { CoreV1Api } from "@kubernetes/client-node";
import {
  createTempDir,
  meshidServiceMain,
  startKubeApiServer,
  startMeshidCa,
  startMeshidService,
  startNatsServer,
  type KubeApiServer,
  type MeshidCaProcess,
  type MeshidServiceProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import type { Benchmark, BenchmarkContext } from "../benchmark";
import { percentile, processCpuSeconds } from "./ca";

/** The built registrar (`npm run bench` builds it: @meshid/registrar is a dev dependency). */
export const REGISTRAR_MAIN = meshidServiceMain("registrar");
/** Pods in the burst. */
export const BURST_PODS = 1000;
/** Pod creations in flight at once (client-node requests). */
export const CREATE_CONCURRENCY = 50;
/** Generous bound on anything that must happen (never a timing assertion). */
export const EVENT_TIMEOUT_MS = 120_000;

const ENTRY_CREATED_SUBJECT = "meshid.v1.entry.created";
const NAMESPACE = "bench";
const TRUST_DOMAIN = "example.org";

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

async function run(ctx: BenchmarkContext): Promise<Record<string, number | string | boolean>> {
  const pods = ctx.quick ? 20 : BURST_PODS;
  let dir: TempDir | undefined;
  let nats: NatsServer | undefined;
  let ca: MeshidCaProcess | undefined;
  let kube: KubeApiServer | undefined;
  let registrar: MeshidServiceProcess | undefined;
  try {
    dir = await createTempDir("bench-registrar");
    nats = await startNatsServer();
    ca = await startMeshidCa({ trustDomain: TRUST_DOMAIN, natsUrl: nats.url });
    kube = await startKubeApiServer({
      autoCreateNamespaces: true,
      objects: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } },
        { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } },
        { apiVersion: "v1", kind: "Node", metadata: { name: "node-1", uid: "node-uid-1" } },
      ],
    });
    const kubeconfig = join(dir.path, "kubeconfig.yaml");
    await writeFile(kubeconfig, kube.kubeConfigYaml(), { mode: 0o600 });

    // entry.created arrival per SPIFFE ID path (one service account per pod → one ID per pod).
    const arrivals = new Map<string, number>();
    const nc = await nats.connect();
    const subscription = nc.subscribe(ENTRY_CREATED_SUBJECT, {
      callback: (_err, msg) => {
        const at = performance.now();
        const body = JSON.parse(new TextDecoder().decode(msg.data)) as {
          spiffeId?: { path?: string };
          owner?: string;
        };
        const path = body.spiffeId?.path;
        if (body.owner === "registrar" && path !== undefined && !arrivals.has(path)) {
          arrivals.set(path, at);
        }
      },
    });
    await nc.flush();

    registrar = await startMeshidService({
      service: "registrar",
      workDir: join(dir.path, "registrar"),
      config: {
        trustDomain: TRUST_DOMAIN,
        clusterName: "bench",
        kubeconfigFile: kubeconfig,
        ca: { adminSocketPath: ca.adminSocketPath },
        natsUrl: nats.url,
        leaderElection: { enabled: true, identity: "bench-0" },
        logLevel: "warn",
      },
    });
    ctx.progress(`registrar ready; creating ${pods} pods (${CREATE_CONCURRENCY} in flight)`);

    const core = kube.kubeConfig().makeApiClient(CoreV1Api);
    const registrarPid = registrar.pid();
    const caPid = ca.pid();
    const cpuBefore = {
      registrar: processCpuSeconds(registrarPid),
      ca: processCpuSeconds(caPid),
      bench: process.cpuUsage(),
    };
    const sentAt = new Array<number>(pods);
    const createdAt = new Array<number>(pods);
    let next = 0;
    const burstStart = performance.now();
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next;
        next += 1;
        if (i >= pods) return;
        sentAt[i] = performance.now();
        await core.createNamespacedPod({
          namespace: NAMESPACE,
          body: {
            metadata: { name: `pod-${i}`, labels: { "meshid.io/inject": "true" } },
            spec: {
              nodeName: "node-1",
              serviceAccountName: `sa-${i}`,
              containers: [{ name: "app", image: "example/app:1" }],
            },
          },
        });
        createdAt[i] = performance.now();
      }
    };
    await Promise.all(Array.from({ length: CREATE_CONCURRENCY }, () => worker()));
    const lastCreatedAt = performance.now();
    const createdMs = lastCreatedAt - burstStart;
    ctx.progress(`${pods} pods created in ${round(createdMs)} ms; waiting for their entries`);

    const pathOf = (i: number): string => `/ns/${NAMESPACE}/sa/sa-${i}`;
    const deadline = Date.now() + EVENT_TIMEOUT_MS;
    while (arrivals.size < pods) {
      if (Date.now() > deadline) {
        throw new Error(`only ${arrivals.size} of ${pods} entries appeared at the CA`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    // Pod creation = the API server answered the create (the pod exists); the entry may even
    // be created before that answer reaches us (then 0). Request-to-entry also counts the wait
    // of the request itself behind the other creations in flight.
    const benchCpu = process.cpuUsage(cpuBefore.bench);
    const cpu = {
      registrar: processCpuSeconds(registrarPid) - cpuBefore.registrar,
      ca: processCpuSeconds(caPid) - cpuBefore.ca,
      // The stand-in API server and the creating client share this process.
      bench: (benchCpu.user + benchCpu.system) / 1e6,
    };
    const latencies: number[] = [];
    const fromRequest: number[] = [];
    let lastArrival = 0;
    for (let i = 0; i < pods; i += 1) {
      const at = arrivals.get(pathOf(i));
      const sent = sentAt[i];
      const created = createdAt[i];
      if (at === undefined || sent === undefined || created === undefined) {
        throw new Error(`no entry for pod-${i}`);
      }
      latencies.push(Math.max(0, at - created));
      fromRequest.push(at - sent);
      lastArrival = Math.max(lastArrival, at);
    }
    // Cross-check at the CA itself: exactly one entry per pod.
    const admin = ca.admin();
    let listed = 0;
    let pageToken = "";
    do {
      const page = await admin.entries.listEntries({
        byOwner: "registrar",
        pageSize: 1000,
        pageToken,
      });
      listed += page.entries.length;
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    subscription.unsubscribe();

    return {
      pods,
      createConcurrency: CREATE_CONCURRENCY,
      podsCreatedMs: round(createdMs),
      burstRegisteredMs: round(lastArrival - burstStart),
      // How far the registrar trails the burst: last entry after the last pod was created.
      lastEntryAfterLastPodMs: round(lastArrival - lastCreatedAt),
      podToEntryP50Ms: round(percentile(latencies, 50)),
      podToEntryP99Ms: round(percentile(latencies, 99)),
      podToEntryMaxMs: round(Math.max(...latencies)),
      requestToEntryP50Ms: round(percentile(fromRequest, 50)),
      requestToEntryP99Ms: round(percentile(fromRequest, 99)),
      entriesAtCa: listed,
      registrarCpuMs: Math.round(cpu.registrar * 1000),
      caCpuMs: Math.round(cpu.ca * 1000),
      standInAndClientCpuMs: Math.round(cpu.bench * 1000),
      loadAverage1m: Math.round(loadavg()[0]! * 100) / 100,
    };
  } finally {
    await registrar?.stop().catch(() => undefined);
    await kube?.stop().catch(() => undefined);
    await ca?.stop().catch(() => undefined);
    await nats?.stop().catch(() => undefined);
    await dir?.cleanup().catch(() => undefined);
  }
}

/** The registrar benchmark (`npm run bench -- registrar`): pod burst → entries at the CA. */
export const benchmark: Benchmark = { name: "registrar", run };
