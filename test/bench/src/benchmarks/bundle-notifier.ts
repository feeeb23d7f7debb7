// The bundle-notifier end to end: a real nats-server, the built CA and two replicas of the built
// bundle-notifier as child processes, against the Kubernetes API server stand-in in this
// process. Forces CA rotations (AuthorityService.PrepareX509Authority, then activation) and
// measures how long each new bundle takes to reach the ConfigMap, the labelled webhook
// configuration and the file target, and how many ConfigMap writes the two replicas make per
// bundle (1 = no fighting).
import { writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join } from "node:path";
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
import { percentile } from "./ca";

/** The built notifier (`npm run bench` builds it: @meshid/bundle-notifier is a dependency). */
export const BUNDLE_NOTIFIER_MAIN = meshidServiceMain("bundle-notifier");
/** Forced rotations measured (each: prepare, wait, activate, wait). */
export const ROTATIONS = 20;
/** Generous bound on anything that must happen (never a timing assertion). */
export const EVENT_TIMEOUT_MS = 60_000;

const CONFIGMAP_TARGET = "configmap/meshid/meshid-bundle";
const WEBHOOK_TARGET = "webhook/validating/meshid-validate";
const PUBLISHED_SUBJECT = "meshid.v1.bundle.published";

/** bundle.published events seen so far: first arrival time per `<target>@<sequence>`. */
type Arrivals = Map<string, number>;

function key(target: string, sequence: number): string {
  return `${target}@${sequence}`;
}

async function waitForArrival(
  arrivals: Arrivals,
  target: string,
  sequence: number,
): Promise<number> {
  const deadline = Date.now() + EVENT_TIMEOUT_MS;
  for (;;) {
    const at = arrivals.get(key(target, sequence));
    if (at !== undefined) return at;
    if (Date.now() > deadline) {
      throw new Error(`no bundle.published for ${target} at sequence ${sequence}`);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

async function run(ctx: BenchmarkContext): Promise<Record<string, number | string | boolean>> {
  const rotations = ctx.quick ? 2 : ROTATIONS;
  let dir: TempDir | undefined;
  let nats: NatsServer | undefined;
  let ca: MeshidCaProcess | undefined;
  let kube: KubeApiServer | undefined;
  const replicas: MeshidServiceProcess[] = [];
  try {
    dir = await createTempDir("bench-bundle-notifier");
    nats = await startNatsServer();
    ca = await startMeshidCa({ natsUrl: nats.url });
    kube = await startKubeApiServer({
      objects: [
        { apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } },
        {
          apiVersion: "admissionregistration.k8s.io/v1",
          kind: "ValidatingWebhookConfiguration",
          metadata: { name: "meshid-validate", labels: { "meshid.io/webhook": "true" } },
          webhooks: [
            {
              name: "validate.meshid.io",
              clientConfig: { service: { namespace: "meshid", name: "hooks" } },
              admissionReviewVersions: ["v1"],
              sideEffects: "None",
            },
          ],
        },
      ],
    });
    const kubeconfigFile = join(dir.path, "kubeconfig.yaml");
    await writeFile(kubeconfigFile, kube.kubeConfigYaml(), { mode: 0o600 });

    const nc = await nats.connect();
    const arrivals: Arrivals = new Map();
    const decoder = new TextDecoder();
    const subscription = nc.subscribe(PUBLISHED_SUBJECT, {
      callback: (err, msg) => {
        if (err !== null) return;
        const body = JSON.parse(decoder.decode(msg.data)) as {
          sequenceNumber?: string | number;
          target?: string;
        };
        const k = key(body.target ?? "", Number(body.sequenceNumber ?? 0));
        if (!arrivals.has(k)) arrivals.set(k, Date.now());
      },
    });

    ctx.progress("starting two bundle-notifier replicas");
    for (const replica of ["a", "b"]) {
      replicas.push(
        await startMeshidService({
          service: "bundle-notifier",
          name: `bundle-notifier-${replica}`,
          workDir: join(dir.path, `notifier-${replica}`),
          config: {
            trustDomain: ca.trustDomain,
            ca: { adminSocketPath: ca.adminSocketPath },
            natsUrl: nats.url,
            targets: {
              configMap: { enabled: true, kubeconfigFile },
              webhooks: { enabled: true, kubeconfigFile },
              file: { path: join(dir.path, `bundle-${replica}.pem`) },
            },
            logLevel: "warn",
          },
        }),
      );
    }

    const admin = ca.admin();
    const toConfigMap: number[] = [];
    const toWebhook: number[] = [];
    const toAllTargets: number[] = [];
    let bundles = 0;
    const configMapWrites = (): number =>
      (kube?.requests ?? []).filter(
        (r) =>
          r.resource === "configmaps" &&
          (r.verb === "update" || r.verb === "create") &&
          r.status < 300,
      ).length;
    const conflicts = (): number =>
      (kube?.requests ?? []).filter((r) => r.resource === "configmaps" && r.status === 409).length;
    const writesBefore = configMapWrites();
    const conflictsBefore = conflicts();

    /** Runs one bundle change and records its delays to every target. */
    const measure = async (change: () => Promise<unknown>): Promise<void> => {
      const before = (await admin.bundle.getBundle({})).bundle?.sequenceNumber ?? 0;
      const start = Date.now();
      await change();
      const sequence = (await admin.bundle.getBundle({})).bundle?.sequenceNumber ?? 0;
      if (sequence === before) return;
      bundles++;
      const fileTargets = ["a", "b"].map((r) => `file:${join(dir?.path ?? "", `bundle-${r}.pem`)}`);
      const cm = await waitForArrival(arrivals, CONFIGMAP_TARGET, sequence);
      const hook = await waitForArrival(arrivals, WEBHOOK_TARGET, sequence);
      const files = await Promise.all(
        fileTargets.map((t) => waitForArrival(arrivals, t, sequence)),
      );
      toConfigMap.push(cm - start);
      toWebhook.push(hook - start);
      toAllTargets.push(Math.max(cm, hook, ...files) - start);
    };

    for (let i = 0; i < rotations; i++) {
      let preparedId = "";
      await measure(async () => {
        preparedId = (await admin.authorities.prepareX509Authority({})).authorityId;
      });
      await measure(() => admin.authorities.activateX509Authority({ authorityId: preparedId }));
      ctx.progress(`rotation ${i + 1}/${rotations}: ConfigMap after ${toConfigMap.at(-1)} ms`);
    }
    const writes = configMapWrites() - writesBefore;
    const conflictCount = conflicts() - conflictsBefore;
    await subscription.drain();

    return {
      replicas: replicas.length,
      rotations,
      bundleChanges: bundles,
      rotationToConfigMapP50Ms: round(percentile(toConfigMap, 50)),
      rotationToConfigMapP99Ms: round(percentile(toConfigMap, 99)),
      rotationToConfigMapMaxMs: round(Math.max(0, ...toConfigMap)),
      rotationToWebhookP50Ms: round(percentile(toWebhook, 50)),
      rotationToAllTargetsP99Ms: round(percentile(toAllTargets, 99)),
      configMapWritesPerBundle: bundles === 0 ? 0 : round(writes / bundles),
      configMapConflicts: conflictCount,
      loadAverage1m: round(loadavg()[0] ?? 0),
    };
  } finally {
    for (const r of replicas) await r.stop().catch(() => undefined);
    await kube?.stop();
    await ca?.stop();
    await nats?.stop();
    await dir?.cleanup();
  }
}

/** The bundle-notifier benchmark (`npm run bench -- bundle-notifier`). */
export const benchmark: Benchmark = { name: "bundle-notifier", run };
