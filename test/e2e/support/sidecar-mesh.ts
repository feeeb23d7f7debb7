// proxy-config and sidecars on top of the Kubernetes mesh: proxy-config runs as a pod of the
// meshid namespace with its own SVID from the agent (Kubernetes MeshConfig resource, pod
// informer, Events); each workload pod runs an echo app and the meshid sidecar with real NGINX,
// configured by proxy-config over mTLS.
import { X509Certificate } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { connect as tlsConnect } from "node:tls";
import { join } from "node:path";
import { meshidProxyconfigV1 } from "@meshid/proto";
import { getFreePort, meshidServiceMain, type ManagedProcess } from "@meshid/testkit";
import { ChannelCredentials, createChannel, createClient, type Client } from "nice-grpc";
import { stringify } from "yaml";
import { TRUST_DOMAIN, WAIT_MS, waitFor, type K8sMesh, type MeshPod } from "./k8s-mesh";

/** The pod annotation that asks for a mesh mode. */
export const MTLS_MODE_ANNOTATION = "config.nsm.nginx.com/mtls-mode";
/** SPIFFE ID proxy-config serves with (the sidecars' default expectation). */
export const PROXY_CONFIG_ID = `spiffe://${TRUST_DOMAIN}/meshid/proxy-config`;
const ECHO_APP_JS = join(__dirname, "fixtures", "echo-app.js");

/** A running proxy-config. */
export interface ProxyConfigPod {
  readonly address: string;
  readonly adminSocket: string;
  readonly process: ManagedProcess;
  readonly meshConfig: Client<typeof meshidProxyconfigV1.MeshConfigServiceDefinition>;
  close(): void;
}

async function waitForReadyz(proc: ManagedProcess, url: string): Promise<void> {
  await waitFor(`${proc.name} ready (${url})`, async () => {
    if (proc.exitStatus() !== undefined) {
      throw new Error(`${proc.name} exited: ${proc.output().slice(-3000)}`);
    }
    try {
      return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).status === 200;
    } catch {
      return false;
    }
  }).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${proc.output().slice(-3000)}`);
  });
}

/**
 * Applies the MeshConfig resource (`globalMode`) and starts proxy-config as a pod of the meshid
 * namespace, with an entry for its SPIFFE ID on that pod.
 */
export async function startProxyConfigPod(
  mesh: K8sMesh,
  globalMode: "off" | "permissive" | "strict",
): Promise<ProxyConfigPod> {
  mesh.kube.apply({
    apiVersion: "meshid.io/v1alpha1",
    kind: "MeshConfig",
    metadata: { name: "meshid" },
    spec: { mtlsMode: globalMode, caTTL: "720h", svidTTL: "1h", caKeyType: "ec-p256" },
  });
  const pod = await mesh.createPod({
    namespace: "meshid",
    name: "proxy-config-0",
    serviceAccount: "meshid-proxy-config",
    labels: { app: "meshid-proxy-config" },
  });
  const res = await mesh.admin.entries.batchCreateEntry({
    entries: [
      {
        spiffeId: { trustDomain: TRUST_DOMAIN, path: "/meshid/proxy-config" },
        parentId: { trustDomain: TRUST_DOMAIN, path: new URL(mesh.agentId).pathname },
        selectors: [{ type: "k8s", value: `pod-uid:${pod.uid}` }],
      },
    ],
  });
  if (res.results[0]?.status?.code !== 0) {
    throw new Error(`proxy-config entry: ${JSON.stringify(res.results[0]?.status)}`);
  }
  const dir = join(mesh.dir, "proxy-config");
  await mkdir(dir, { recursive: true });
  const port = await getFreePort();
  const opsPort = await getFreePort();
  const adminSocket = join(dir, "admin", "admin.sock");
  const configFile = join(dir, "proxy-config.yaml");
  await writeFile(
    configFile,
    stringify({
      trustDomain: TRUST_DOMAIN,
      listen: `127.0.0.1:${port}`,
      adminSocketPath: adminSocket,
      tls: { workloadSocketPath: mesh.workloadSocket },
      meshConfig: { source: "kubernetes", name: "meshid" },
      kubernetes: { enabled: true, kubeconfigFile: mesh.kubeconfigFile },
      natsUrl: mesh.nats.url,
      ops: { listen: `127.0.0.1:${opsPort}` },
      logLevel: "info",
    }),
  );
  const proc = await mesh.spawnInPod(
    pod,
    process.execPath,
    [meshidServiceMain("proxy-config"), "--config", configFile],
    { name: "meshid-proxy-config", env: cleanEnv(), outputLimitChars: 200_000 },
  );
  await waitForReadyz(proc, `http://127.0.0.1:${opsPort}/readyz`);
  const channel = createChannel(`unix://${adminSocket}`, ChannelCredentials.createInsecure());
  return {
    address: `localhost:${port}`,
    adminSocket,
    process: proc,
    meshConfig: createClient(meshidProxyconfigV1.MeshConfigServiceDefinition, channel),
    close: () => channel.close(),
  };
}

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("MESHID_") && !k.startsWith("OTEL_")) env[k] = v;
  }
  return env;
}

/** A workload pod: echo app + meshid sidecar + NGINX. */
export interface MeshWorkload {
  readonly pod: MeshPod;
  /** mTLS (or, by mode, plaintext) inbound port of the sidecar. */
  readonly inboundPort: number;
  /** Plaintext local port whose requests the sidecar sends to the peer. */
  readonly outboundPort: number | undefined;
  readonly svidDir: string;
  readonly sidecar: ManagedProcess;
  readonly app: ManagedProcess;
  readonly opsUrl: string;
  /** Serial (hex, upper case) of the SVID the sidecar wrote last. */
  svidSerial(): Promise<string>;
  /** Serial of the certificate the sidecar's NGINX presents on the inbound port now. */
  servedSerial(): Promise<string>;
}

/** Parameters of {@link startMeshWorkload}. */
export interface StartMeshWorkloadParams {
  readonly namespace: string;
  readonly name: string;
  readonly serviceAccount: string;
  readonly annotations?: Record<string, string>;
  /** The peer this workload talks to through its outbound port. */
  readonly peer?: MeshWorkload;
}

/** Creates an injected pod running an echo app behind the meshid sidecar. */
export async function startMeshWorkload(
  mesh: K8sMesh,
  pc: ProxyConfigPod,
  p: StartMeshWorkloadParams,
): Promise<MeshWorkload> {
  const pod = await mesh.createPod({
    namespace: p.namespace,
    name: p.name,
    serviceAccount: p.serviceAccount,
    ...(p.annotations === undefined ? {} : { annotations: p.annotations }),
  });
  await mesh.waitForEntry(pod);
  const [appPort, inboundPort, opsPort] = [
    await getFreePort(),
    await getFreePort(),
    await getFreePort(),
  ];
  const outboundPort = p.peer === undefined ? undefined : await getFreePort();
  const home = join(mesh.dir, "pods", p.name);
  const nginxPrefix = join(home, "nginx");
  for (const sub of ["logs", "tmp"]) await mkdir(join(nginxPrefix, sub), { recursive: true });
  const svidDir = join(home, "svid");
  const configFile = join(home, "sidecar.yaml");
  await writeFile(
    configFile,
    stringify({
      workloadSocket: mesh.workloadSocket,
      svidDir,
      proxyConfig: { address: pc.address, serverId: PROXY_CONFIG_ID },
      pod: { namespace: p.namespace, name: p.name },
      inbound: [{ name: "http", listenPort: inboundPort, appPort, protocol: "http" }],
      outbound:
        p.peer === undefined || outboundPort === undefined
          ? []
          : [
              {
                name: p.peer.pod.name,
                listenPort: outboundPort,
                destinationHost: "127.0.0.1",
                destinationPort: p.peer.inboundPort,
                protocol: "http",
                serverSpiffeId: p.peer.pod.spiffeId,
                serverName: `${p.peer.pod.serviceAccount}.${p.peer.pod.namespace}.svc`,
              },
            ],
      nginx: { prefix: nginxPrefix, user: "root", reloadTimeout: "20s" },
      ops: { listen: `127.0.0.1:${opsPort}` },
      logLevel: "info",
    }),
  );
  const app = await mesh.spawnInPod(pod, process.execPath, [ECHO_APP_JS, p.name, String(appPort)]);
  await app.waitForOutput(/echo app listening/);
  const sidecar = await mesh.spawnInPod(
    pod,
    process.execPath,
    [meshidServiceMain("sidecar"), "--config", configFile],
    { name: `${p.name}:sidecar`, env: cleanEnv(), outputLimitChars: 200_000 },
  );
  const opsUrl = `http://127.0.0.1:${opsPort}`;
  await waitForReadyz(sidecar, `${opsUrl}/readyz`);
  return {
    pod,
    inboundPort,
    outboundPort,
    svidDir,
    sidecar,
    app,
    opsUrl,
    svidSerial: async () =>
      new X509Certificate(await readFile(join(svidDir, "svid.pem"), "utf8")).serialNumber,
    servedSerial: () => servedSerial(inboundPort),
  };
}

/** Serial of the certificate presented on 127.0.0.1:`port` (no client certificate sent). */
export function servedSerial(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      rejectUnauthorized: false,
    });
    socket.once("secureConnect", () => {
      const serial = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(serial.toUpperCase());
    });
    socket.once("error", reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error("TLS handshake timed out")));
  });
}

export { WAIT_MS };
