// Starts, checks and stops the local mesh: nats-server, ca, agent, bundle-notifier and the two
// demo workloads behind NGINX sidecars, each its own OS process, state kept in `.meshid/`.
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { MeshidError } from "@meshid/errors";
import { meshidCaV1 } from "@meshid/proto";
import {
  meshidServiceMain,
  requireBinary,
  runCommand,
  spawnManaged,
  SERVICE_NODE_FLAGS,
  startMeshidService,
  waitForPort,
  type ManagedProcess,
  type MeshidServiceProcess,
} from "@meshid/testkit";
import { ChannelCredentials, createChannel, createClient } from "nice-grpc";
import { stringify } from "yaml";
import { runMeshChecks } from "./checks";
import { certificateFacts, derCertificatesToPem } from "./der";
import { renderDemoSidecarNginxConf } from "./nginx-conf";
import {
  loadOrCreateState,
  requirePortsFree,
  saveState,
  type LocalMeshPortName,
  type LocalMeshState,
} from "./state";

/** uids the demo workloads' sidecars run under when we are root (unix attestation tells them apart). */
export const DEMO_UIDS = { a: 10001, b: 10002 } as const;

/** A demo workload's name. */
export type DemoName = "a" | "b";

/** Parameters of {@link startLocalMesh}. */
export interface StartLocalMeshParams {
  /** Where the mesh keeps its state (`.meshid/` of the checkout). */
  readonly stateDir: string;
  /** Receives one human-readable line per step. */
  readonly progress: (line: string) => void;
}

/** One demo workload as the summary shows it. */
export interface DemoWorkloadSummary {
  readonly name: DemoName;
  readonly spiffeId: string;
  readonly uid: number;
  readonly appUrl: string;
  /** mTLS inbound listener of its sidecar. */
  readonly inboundAddress: string;
  /** Plaintext local outbound listener of its sidecar (to the other workload). */
  readonly outboundUrl: string;
  readonly serial: string;
  readonly notAfter: Date;
  /** When the agent re-mints the SVID: half its lifetime (± 10 % jitter). */
  readonly nextRotationApprox: Date;
  readonly svidDir: string;
  readonly nginxConf: string;
}

/** What is running and where its files are. */
export interface LocalMeshSummary {
  readonly stateDir: string;
  readonly reused: boolean;
  readonly trustDomain: string;
  readonly natsUrl: string;
  readonly caAddress: string;
  readonly agentId: string;
  readonly workloadSocket: string;
  /** ops URL of each service. */
  readonly services: Readonly<Record<string, string>>;
  /** `separate-uids` (root) or `shared-uid` (both sidecars pick their SVID by SPIFFE ID). */
  readonly attestation: "separate-uids" | "shared-uid";
  readonly workloads: readonly DemoWorkloadSummary[];
  /** Trust bundle file kept current by bundle-notifier (when it runs). */
  readonly bundleFile: string | undefined;
  readonly meshctlContext: string;
  /** Services that are not built yet and therefore not started. */
  readonly missing: readonly string[];
}

/** Result of one traffic check. */
export interface MeshCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** The running local mesh. */
export interface LocalMesh {
  readonly summary: LocalMeshSummary;
  /** Settles with a description when any process of the mesh exits by itself. */
  readonly failed: Promise<string>;
  /** Sends A → B over mTLS, then tries plaintext and a foreign certificate against B. */
  check(): Promise<MeshCheck[]>;
  /** Stops every process (sidecars and apps first, NATS last); keeps the state. */
  stop(): Promise<void>;
}

/** The repository root (tools/local-mesh/{src,dist}/ → ../../..). */
export const REPO_ROOT = join(__dirname, "..", "..", "..");

interface Stoppable {
  readonly name: string;
  stop(): Promise<unknown>;
}

function openCaAdmin(socketPath: string): {
  entries: ReturnType<typeof createClient<typeof meshidCaV1.EntryServiceDefinition>>;
  agents: ReturnType<typeof createClient<typeof meshidCaV1.AgentServiceDefinition>>;
  bundle: ReturnType<typeof createClient<typeof meshidCaV1.BundleServiceDefinition>>;
  svids: ReturnType<typeof createClient<typeof meshidCaV1.SvidServiceDefinition>>;
  close(): void;
} {
  const channel = createChannel(`unix://${socketPath}`, ChannelCredentials.createInsecure());
  return {
    entries: createClient(meshidCaV1.EntryServiceDefinition, channel),
    agents: createClient(meshidCaV1.AgentServiceDefinition, channel),
    bundle: createClient(meshidCaV1.BundleServiceDefinition, channel),
    svids: createClient(meshidCaV1.SvidServiceDefinition, channel),
    close: () => channel.close(),
  };
}

/** Creates a directory with `mode` (also when it exists). */
async function dir(path: string, mode: number): Promise<string> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
  return path;
}

/** Validity of proxy-config's minted SVID when not root (a restart mints a new one). */
const PROXY_CONFIG_FILE_SVID_TTL_SECONDS = 7 * 24 * 3600;

/**
 * Mints proxy-config's SVID (key made by openssl, CSR signed over the CA's admin socket) into
 * `<dir>/tls/` and returns the file settings of proxy-config's `tls`.
 */
async function mintProxyConfigFiles(
  admin: ReturnType<typeof openCaAdmin>,
  td: string,
  dir: string,
): Promise<{ certFile: string; keyFile: string; bundleFile: string }> {
  const tlsDir = join(dir, "tls");
  await mkdir(tlsDir, { recursive: true, mode: 0o700 });
  const keyFile = join(tlsDir, "svid.key");
  const csrFile = join(tlsDir, "svid.csr");
  const made = await runCommand("openssl", [
    "req",
    "-new",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    csrFile,
    "-outform",
    "DER",
    "-subj",
    "/O=meshid",
  ]);
  if (made.code !== 0) throw new Error(`openssl could not make a CSR: ${made.stderr}`);
  await chmod(keyFile, 0o600);
  const minted = await admin.svids.mintX509SVID({
    csr: await readFile(csrFile),
    spiffeId: { trustDomain: td, path: "/meshid/proxy-config" },
    dnsNames: [],
    ttlSeconds: PROXY_CONFIG_FILE_SVID_TTL_SECONDS,
  });
  const chain = (minted.svid?.certChain ?? []).map((der) => derCertificatesToPem(der)).join("");
  const certFile = join(tlsDir, "svid.pem");
  const bundleFile = join(tlsDir, "bundle.pem");
  await writeFile(certFile, chain, { mode: 0o644 });
  await writeFile(bundleFile, (await admin.bundle.getBundle({})).pem, { mode: 0o644 });
  return { certFile, keyFile, bundleFile };
}

/** Polls `url` until it answers 200; fails when `proc` exits first or after `timeoutMs`. */
async function waitForReadyz(proc: ManagedProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exitStatus() !== undefined) {
      throw new MeshidError(
        "unavailable",
        "local_mesh.process.exited",
        `${proc.name} exited before it was ready; output:\n${proc.output()}`,
      );
    }
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2_000) })).status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new MeshidError(
        "deadline_exceeded",
        "local_mesh.process.not_ready",
        `${proc.name}: ${url} did not answer 200 within ${timeoutMs} ms; output:\n${proc.output()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await chown(path, uid, gid);
  for (const entry of await readdir(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await chown(child, uid, gid);
  }
}

/**
 * Starts the local mesh from `stateDir` (created at the first start, reused afterwards) and
 * resolves once both demo workloads serve with their SVIDs. On a failure everything started so
 * far is stopped before the error is thrown.
 *
 * @throws MeshidError `local_mesh.ports.taken` when a persisted port is in use, or the error of
 *   the step that failed (with the process output).
 */
export async function startLocalMesh(params: StartLocalMeshParams): Promise<LocalMesh> {
  const { progress } = params;
  const stateDir = params.stateDir;
  // 0711: the sidecars (other uids) must traverse to the Workload API socket and their files.
  await dir(stateDir, 0o711);
  const loaded = await loadOrCreateState(stateDir);
  let state: LocalMeshState = loaded.state;
  await requirePortsFree(stateDir, state);
  const port = (name: LocalMeshPortName): number => state.ports[name];
  const td = state.trustDomain;
  progress(
    loaded.reused
      ? `reusing the state in ${stateDir} (trust domain ${td})`
      : `new state in ${stateDir} (trust domain ${td}, ports picked and saved)`,
  );

  const started: Stoppable[] = [];
  let failedReason: ((reason: string) => void) | undefined;
  const failed = new Promise<string>((resolve) => (failedReason = resolve));
  let stopping = false;
  const watch = (name: string, exited: Promise<{ code: number | null; signal: string | null }>) => {
    void exited.then((exit) => {
      if (!stopping) {
        failedReason?.(
          `${name} exited by itself (code ${String(exit.code)}, signal ${String(exit.signal)})`,
        );
      }
    });
  };
  const stopAll = async (): Promise<void> => {
    stopping = true;
    for (const s of started.splice(0).reverse()) {
      try {
        await s.stop();
      } catch {
        // keep stopping the others
      }
    }
  };

  const missing: string[] = [];
  const built = (service: string): boolean => {
    if (existsSync(meshidServiceMain(service))) return true;
    missing.push(service);
    return false;
  };
  const service = async (
    name: string,
    config: Record<string, unknown>,
    opsPort: number,
    extra: { args?: readonly string[] } = {},
  ): Promise<MeshidServiceProcess> => {
    const svc = await startMeshidService({
      service: name,
      workDir: await dir(join(stateDir, name), 0o711),
      config,
      opsListen: `127.0.0.1:${opsPort}`,
      ...(extra.args === undefined ? {} : { args: extra.args }),
    });
    started.push(svc);
    watch(svc.name, svc.exited());
    return svc;
  };

  try {
    // NATS with JetStream, its store in the state dir.
    const natsUrl = `nats://127.0.0.1:${port("nats")}`;
    progress(`starting nats-server on ${natsUrl} …`);
    const nats = await spawnManaged(
      requireBinary("nats-server", "nats-server"),
      [
        "-a",
        "127.0.0.1",
        "-p",
        String(port("nats")),
        "-js",
        "-sd",
        await dir(join(stateDir, "nats"), 0o700),
      ],
      { name: "nats-server", outputLimitChars: 50_000 },
    );
    started.push(nats);
    watch("nats-server", nats.exited);
    await waitForPort(port("nats"), { timeoutMs: 20_000 });

    // CA: SQLite store and disk key manager in .meshid/ca/data.
    progress("starting ca (SQLite, disk key manager) …");
    const caDataDir = join(stateDir, "ca", "data");
    const adminSocket = join(caDataDir, "admin", "admin.sock");
    const ca = await service(
      "ca",
      {
        trustDomain: td,
        listen: `127.0.0.1:${port("ca")}`,
        dataDir: caDataDir,
        adminSocketPath: adminSocket,
        keyManager: "disk",
        natsUrl,
        logLevel: "info",
      },
      port("caOps"),
    );
    const caAddress = `localhost:${port("ca")}`;
    const admin = openCaAdmin(adminSocket);
    started.push({ name: "ca admin", stop: () => Promise.resolve(admin.close()) });
    const bootstrapBundle = join(stateDir, "ca", "bootstrap-bundle.pem");
    await writeFile(bootstrapBundle, (await admin.bundle.getBundle({})).pem, { mode: 0o644 });
    progress(`ca ready on ${caAddress} (ops ${ca.opsUrl ?? ""})`);

    // Agent: join token at the first start; afterwards it keeps its persisted identity.
    const agentDir = await dir(join(stateDir, "agent"), 0o711);
    const runDir = await dir(join(agentDir, "run"), 0o755);
    const workloadSocket = join(runDir, "workload.sock");
    const agentConfig = (joinToken: string): Record<string, unknown> => ({
      trustDomain: td,
      caAddress,
      bundleFile: bootstrapBundle,
      dataDir: join(agentDir, "data"),
      attestation: { type: "join_token", joinToken },
      workloadApi: { socketPath: workloadSocket },
      natsUrl,
      attestors: { unix: { enabled: true } },
      logLevel: "info",
    });
    const newToken = async (): Promise<string> => {
      const token = (await admin.agents.createJoinToken({ ttlSeconds: 600, token: "" })).token;
      state = { ...state, joinToken: token };
      await saveState(stateDir, state);
      return token;
    };
    progress("starting agent (join token, unix attestor) …");
    let agent: MeshidServiceProcess;
    try {
      agent = await service(
        "agent",
        agentConfig(state.joinToken ?? (await newToken())),
        port("agentOps"),
      );
    } catch (err) {
      // The persisted agent identity expired while the mesh was down: attest anew.
      if (state.joinToken === undefined) throw err;
      progress("the agent's saved identity could not be used; attesting with a new join token …");
      agent = await service("agent", agentConfig(await newToken()), port("agentOps"));
    }
    const serving = await agent.waitForOutput(/^.*"msg":"agent serving the Workload API".*$/m, {
      timeoutMs: 30_000,
    });
    const agentId = /"agentId":"([^"]+)"/.exec(serving[0])?.[1] ?? "";
    progress(`agent ready: ${agentId}`);

    // bundle-notifier: keeps a PEM bundle file current.
    let bundleFile: string | undefined;
    const services: Record<string, string> = { ca: ca.opsUrl ?? "", agent: agent.opsUrl ?? "" };
    if (built("bundle-notifier")) {
      progress("starting bundle-notifier (file target) …");
      bundleFile = join(stateDir, "bundle", "bundle.pem");
      await dir(join(stateDir, "bundle"), 0o755);
      const bn = await service(
        "bundle-notifier",
        {
          trustDomain: td,
          ca: { adminSocketPath: adminSocket },
          natsUrl,
          targets: { file: { path: bundleFile, format: "pem" } },
          logLevel: "info",
        },
        port("bundleNotifierOps"),
      );
      services["bundle-notifier"] = bn.opsUrl ?? "";
    }
    // Registration entries: both demo workloads, and proxy-config's own identity.
    const asRoot = process.getuid?.() === 0;
    const ownUid = process.getuid?.() ?? 0;
    const ownGid = process.getgid?.() ?? 0;
    const uidOf = (name: DemoName): number => (asRoot ? DEMO_UIDS[name] : ownUid);
    const parentPath = agentId === "" ? "" : new URL(agentId).pathname;
    const register = async (path: string, uid: number, dnsNames: string[]): Promise<void> => {
      const listed = await admin.entries.listEntries({ bySpiffeId: { trustDomain: td, path } });
      const current = listed.entries.find(
        (e) =>
          e.parentId?.path === parentPath &&
          e.selectors.length === 1 &&
          e.selectors[0]?.value === `uid:${uid}`,
      );
      const stale = listed.entries.filter((e) => e !== current).map((e) => e.id);
      if (stale.length > 0) await admin.entries.batchDeleteEntry({ ids: stale });
      if (current !== undefined) {
        progress(`entry spiffe://${td}${path} already registered`);
        return;
      }
      const res = await admin.entries.batchCreateEntry({
        entries: [
          {
            spiffeId: { trustDomain: td, path },
            parentId: { trustDomain: td, path: parentPath },
            selectors: [{ type: "unix", value: `uid:${uid}` }],
            dnsNames,
          },
        ],
      });
      const status = res.results[0]?.status;
      if (status !== undefined && status.code !== 0) {
        throw new MeshidError(
          "internal",
          "local_mesh.entry.not_created",
          `entry spiffe://${td}${path} not created: ${status.message}`,
        );
      }
      progress(`registered spiffe://${td}${path} (unix:uid:${uid})`);
    };
    for (const name of ["a", "b"] as const) {
      await register(`/demo/${name}`, uidOf(name), [`${name}.demo.${td}`]);
    }

    // proxy-config (file MeshConfig, strict) serving the sidecars over mTLS with its own SVID.
    const useRealSidecars = built("proxy-config") && built("sidecar");
    let proxyConfigAdminSocket: string | undefined;
    const proxyConfigId = `spiffe://${td}/meshid/proxy-config`;
    if (useRealSidecars) {
      // As root proxy-config has a uid of its own (ours) and takes its SVID from the agent, so it
      // rotates. Otherwise every process shares one uid and the Workload API would offer
      // proxy-config the demo workloads' SVIDs too: it gets files minted over the admin socket.
      if (asRoot) await register("/meshid/proxy-config", ownUid, []);
      const pcDir = await dir(join(stateDir, "proxy-config"), 0o711);
      const meshConfigFile = join(pcDir, "meshconfig.yaml");
      if (!existsSync(meshConfigFile)) {
        await writeFile(
          meshConfigFile,
          stringify({
            apiVersion: "meshid.io/v1alpha1",
            kind: "MeshConfig",
            metadata: { name: "meshid" },
            spec: { mtlsMode: "strict" },
          }),
          { mode: 0o600 },
        );
      }
      proxyConfigAdminSocket = join(pcDir, "admin", "admin.sock");
      progress("starting proxy-config (file MeshConfig, strict) …");
      const pc = await service(
        "proxy-config",
        {
          trustDomain: td,
          listen: `127.0.0.1:${port("proxyConfig")}`,
          adminSocketPath: proxyConfigAdminSocket,
          tls: asRoot
            ? { workloadSocketPath: workloadSocket }
            : await mintProxyConfigFiles(admin, td, pcDir),
          meshConfig: { source: "file", path: meshConfigFile },
          natsUrl,
          logLevel: "info",
        },
        port("proxyConfigOps"),
      );
      services["proxy-config"] = pc.opsUrl ?? "";
    }

    // Demo apps and their sidecars.
    const nodeBin = process.execPath;
    const nginxBin = requireBinary("nginx", "nginx");
    const setpriv = asRoot ? requireBinary("setpriv", "util-linux") : undefined;
    const workloads: DemoWorkloadSummary[] = [];
    const spawnAs = async (
      name: string,
      uid: number,
      gid: number,
      args: readonly string[],
    ): Promise<ManagedProcess> => {
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (!k.startsWith("MESHID_") && !k.startsWith("OTEL_")) env[k] = v;
      }
      const proc =
        setpriv === undefined
          ? await spawnManaged(nodeBin, args, { name, env, outputLimitChars: 100_000 })
          : await spawnManaged(
              setpriv,
              [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", nodeBin, ...args],
              { name, env, orphanSignal: "SIGTERM", outputLimitChars: 100_000 },
            );
      started.push({ name, stop: () => proc.stop({ timeoutMs: 10_000 }) });
      watch(name, proc.exited);
      return proc;
    };
    for (const name of ["a", "b"] as const) {
      const peer: DemoName = name === "a" ? "b" : "a";
      const appPort = port(name === "a" ? "appA" : "appB");
      const app = await spawnManaged(
        nodeBin,
        [join(__dirname, "demo-app.js"), name, String(appPort)],
        { name: `demo-app-${name}` },
      );
      started.push(app);
      watch(app.name, app.exited);
      await app.waitForOutput(/demo app listening/);

      const uid = uidOf(name);
      const gid = asRoot ? uid : ownGid;
      await dir(join(stateDir, "sidecars"), 0o711);
      const home = await dir(join(stateDir, "sidecars", name), 0o700);
      const inbound = port(name === "a" ? "inboundA" : "inboundB");
      const outbound = port(name === "a" ? "outboundA" : "outboundB");
      const peerInbound = port(peer === "a" ? "inboundA" : "inboundB");
      const spiffeId = `spiffe://${td}/demo/${name}`;
      const peerId = `spiffe://${td}/demo/${peer}`;
      const peerServerName = `${peer}.demo.${td}`;
      let svidLink: string;
      let nginxConf: string;
      let sidecar: ManagedProcess;
      progress(
        `starting sidecar ${name} (uid ${uid}, NGINX on ${inbound} mTLS / ${outbound} local) …`,
      );
      if (useRealSidecars) {
        const nginxPrefix = await dir(join(home, "nginx"), 0o700);
        for (const sub of ["logs", "tmp"]) await dir(join(nginxPrefix, sub), 0o700);
        svidLink = join(home, "svid");
        nginxConf = join(nginxPrefix, "nginx.conf");
        const opsPort = port(name === "a" ? "sidecarOpsA" : "sidecarOpsB");
        const configFile = join(home, "sidecar.yaml");
        await writeFile(
          configFile,
          stringify({
            workloadSocket,
            spiffeId,
            svidDir: svidLink,
            proxyConfig: { address: `localhost:${port("proxyConfig")}`, serverId: proxyConfigId },
            pod: { namespace: "demo", name },
            inbound: [{ name: "http", listenPort: inbound, appPort, protocol: "http" }],
            outbound: [
              {
                name: peer,
                listenPort: outbound,
                destinationHost: "127.0.0.1",
                destinationPort: peerInbound,
                protocol: "http",
                serverSpiffeId: peerId,
                serverName: peerServerName,
              },
            ],
            nginx: { binary: nginxBin, prefix: nginxPrefix },
            ops: { listen: `127.0.0.1:${opsPort}` },
            logLevel: "info",
          }),
          { mode: 0o600 },
        );
        if (asRoot) await chownTree(home, uid, gid);
        sidecar = await spawnAs(`sidecar-${name}`, uid, gid, [
          ...SERVICE_NODE_FLAGS,
          meshidServiceMain("sidecar"),
          "--config",
          configFile,
        ]);
        services[`sidecar-${name}`] = `http://127.0.0.1:${opsPort}`;
        await waitForReadyz(sidecar, `http://127.0.0.1:${opsPort}/readyz`, 90_000);
      } else {
        for (const sub of ["logs", "tmp", "svid"]) await dir(join(home, sub), 0o700);
        const svidDir = join(home, "svid");
        svidLink = join(svidDir, "current");
        nginxConf = join(home, "nginx.conf");
        await writeFile(
          nginxConf,
          renderDemoSidecarNginxConf({
            prefix: home,
            svidDir,
            appPort,
            inboundPort: inbound,
            outboundPort: outbound,
            peerInboundPort: peerInbound,
            peerServerName,
          }),
          { mode: 0o600 },
        );
        const sidecarConfig = join(home, "sidecar.json");
        await writeFile(
          sidecarConfig,
          JSON.stringify({
            socketPath: workloadSocket,
            spiffeId,
            svidDir,
            nginx: { binary: nginxBin, prefix: home, conf: nginxConf },
          }),
          { mode: 0o600 },
        );
        if (asRoot) await chownTree(home, uid, gid);
        sidecar = await spawnAs(`sidecar-${name}`, uid, gid, [
          join(__dirname, "demo-sidecar.js"),
          sidecarConfig,
        ]);
        await sidecar.waitForOutput(/^.*"msg":"svid written".*$/m, { timeoutMs: 60_000 });
      }
      await waitForPort(inbound, { timeoutMs: 30_000 });
      await waitForPort(outbound, { timeoutMs: 30_000 });
      const facts = certificateFacts(await readFile(join(svidLink, "svid.pem"), "utf8"));
      workloads.push({
        name,
        spiffeId,
        uid,
        appUrl: `http://127.0.0.1:${appPort}`,
        inboundAddress: `127.0.0.1:${inbound}`,
        outboundUrl: `http://127.0.0.1:${outbound}`,
        serial: facts.serial,
        notAfter: facts.notAfter,
        nextRotationApprox: new Date((facts.notBefore.getTime() + facts.notAfter.getTime()) / 2),
        svidDir: svidLink,
        nginxConf,
      });
      progress(`sidecar ${name} serving ${spiffeId} (serial ${facts.serial})`);
    }

    const meshctlContext = join(stateDir, "meshctl.yaml");
    const rel = (path: string): string => relative(stateDir, path);
    await writeFile(
      meshctlContext,
      `# Written by \`npm start\` (the local mesh) for meshctl; paths are relative to this file.\n${stringify(
        {
          trustDomain: td,
          ca: { adminSocket: rel(adminSocket), address: caAddress },
          ...(proxyConfigAdminSocket === undefined
            ? {}
            : { proxyConfig: { adminSocket: rel(proxyConfigAdminSocket) } }),
          workloadSocket: rel(workloadSocket),
          natsUrl,
          services,
        },
      )}`,
      { mode: 0o600 },
    );

    const summary: LocalMeshSummary = {
      stateDir,
      reused: loaded.reused,
      trustDomain: td,
      natsUrl,
      caAddress,
      agentId,
      workloadSocket,
      services,
      attestation: asRoot ? "separate-uids" : "shared-uid",
      workloads,
      bundleFile,
      meshctlContext,
      missing,
    };
    return {
      summary,
      failed,
      check: () => runMeshChecks(summary, stateDir),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
