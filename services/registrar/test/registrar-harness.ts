// Shared set-up of the registrar integration suites: the Kubernetes API server stand-in, the
// built CA as a child process (entries read back over its admin socket) and registrars started
// in-process with startRegistrar.
import { randomUUID } from "node:crypto";
import { CoreV1Api, CustomObjectsApi, type V1Pod } from "@kubernetes/client-node";
import { createKubeClient, type KubeClient } from "@meshid/kube";
import type { meshidTypesV1 } from "@meshid/proto";
import { createMemoryLogger, type MemoryLogger } from "@meshid/telemetry";
import {
  startKubeApiServer,
  startMeshidCa,
  type KubeApiServer,
  type KubeApiServerOptions,
  type MeshidCaAdminClients,
  type MeshidCaProcess,
} from "@meshid/testkit";
import { buildRegistrarConfig, type RegistrarConfig } from "../src/config";
import { startRegistrar, type RunningRegistrar } from "../src/registrar";

/** Every wait in these suites: a generous bound on something that must happen. */
export const WAIT_MS = 60_000;
export const TRUST_DOMAIN = "example.org";
export const CLUSTER = "test-cluster";
export const INJECT_LABELS = { "meshid.io/inject": "true" } as const;

/** Polls `check` until it returns a value other than undefined/false. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A registrar's entry at the CA in a comparable form. */
export interface SeenEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  readonly selectors: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ttlSeconds: number;
  readonly hint: string;
}

function idString(id: meshidTypesV1.SpiffeId | undefined): string {
  return id === undefined ? "" : `spiffe://${id.trustDomain}${id.path}`;
}

/** The test world: stand-in API server, CA and helpers. */
export interface RegistrarWorld {
  readonly kube: KubeApiServer;
  readonly ca: MeshidCaProcess;
  readonly admin: MeshidCaAdminClients;
  /** client-node, as an independent client to set up and read objects (cross-checks ours). */
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;
  /** The @meshid/kube client the in-process registrars use. */
  readonly kubeClient: KubeClient;
  /** Node name → UID of the nodes created by {@link RegistrarWorld.addNode}. */
  readonly nodeUids: Map<string, string>;
  addNode(name: string): string;
  createPod(params: CreatePodParams): Promise<V1Pod>;
  deletePod(namespace: string, name: string): Promise<void>;
  /** The registrar's entries at the CA (owner `registrar`), sorted by SPIFFE ID then pod. */
  entries(): Promise<SeenEntry[]>;
  startRegistrar(
    overrides?: Partial<Parameters<typeof buildRegistrarConfig>[0]>,
  ): Promise<TestRegistrar>;
  stop(): Promise<void>;
}

/** A registrar started by the harness, with its in-memory log. */
export interface TestRegistrar {
  readonly registrar: RunningRegistrar;
  readonly config: RegistrarConfig;
  readonly log: MemoryLogger;
}

/** Parameters of {@link RegistrarWorld.createPod}. */
export interface CreatePodParams {
  readonly namespace: string;
  readonly name: string;
  readonly node?: string;
  readonly serviceAccount?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** Starts the stand-in and the CA; `stop()` tears down everything started through it. */
export async function startRegistrarWorld(
  kubeOptions: KubeApiServerOptions = {},
  caExtraConfig: Record<string, unknown> = {},
): Promise<RegistrarWorld> {
  const kube = await startKubeApiServer({ autoCreateNamespaces: true, ...kubeOptions });
  let ca: MeshidCaProcess;
  try {
    ca = await startMeshidCa({ trustDomain: TRUST_DOMAIN, extraConfig: caExtraConfig });
  } catch (err) {
    await kube.stop();
    throw err;
  }
  const admin = ca.admin();
  const kc = kube.kubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const kubeClient = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
  const nodeUids = new Map<string, string>();
  const registrars: RunningRegistrar[] = [];
  kube.apply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "meshid" } });

  return {
    kube,
    ca,
    admin,
    core,
    custom,
    kubeClient,
    nodeUids,
    addNode(name) {
      const uid = randomUUID();
      kube.apply({ apiVersion: "v1", kind: "Node", metadata: { name, uid } });
      nodeUids.set(name, uid);
      return uid;
    },
    async createPod(p) {
      return core.createNamespacedPod({
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
            ...(p.node === undefined ? {} : { nodeName: p.node }),
            serviceAccountName: p.serviceAccount ?? "default",
            containers: [{ name: "app", image: "example/app:1" }],
          },
        },
      });
    },
    async deletePod(namespace, name) {
      await core.deleteNamespacedPod({ namespace, name });
    },
    async entries() {
      const out: SeenEntry[] = [];
      let pageToken = "";
      do {
        const page = await admin.entries.listEntries({
          byOwner: "registrar",
          pageSize: 1000,
          pageToken,
        });
        for (const e of page.entries) {
          out.push({
            id: e.id,
            spiffeId: idString(e.spiffeId),
            parentId: idString(e.parentId),
            selectors: e.selectors.map((s) => `${s.type}:${s.value}`).sort(),
            dnsNames: [...e.dnsNames].sort(),
            ttlSeconds: e.x509SvidTtlSeconds,
            hint: e.hint,
          });
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return out.sort((a, b) =>
        a.spiffeId === b.spiffeId
          ? a.selectors.join() < b.selectors.join()
            ? -1
            : 1
          : a.spiffeId < b.spiffeId
            ? -1
            : 1,
      );
    },
    async startRegistrar(overrides = {}) {
      const config = buildRegistrarConfig({
        trustDomain: TRUST_DOMAIN,
        clusterName: CLUSTER,
        ca: { adminSocketPath: ca.adminSocketPath },
        leaderElection: { enabled: false },
        ...overrides,
      });
      const log = createMemoryLogger({ service: "registrar", level: "debug" });
      const registrar = await startRegistrar({ config, logger: log.logger, kubeClient });
      registrars.push(registrar);
      return { registrar, config, log };
    },
    async stop() {
      await Promise.allSettled(registrars.map((r) => r.stop()));
      kubeClient.close();
      admin.close();
      await Promise.allSettled([ca.stop(), kube.stop()]);
    },
  };
}

/** The agent ID the registrar must give as parent for pods on `nodeUid`. */
export function agentId(nodeUid: string): string {
  return `spiffe://${TRUST_DOMAIN}/meshid/agent/k8s_psat/${CLUSTER}/${nodeUid}`;
}
