// Starts, checks and stops the local mesh: nats-server, ca, agent, bundle-notifier and the two
// demo workloads behind NGINX sidecars, each its own OS process, state kept in `.meshid/`.
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, readdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { MeshidError } from "@meshid/errors";
import { meshidCaV1 } from "@meshid/proto";
import {
  meshidServiceMain,
  requireBinary,
  spawnManaged,
  startMeshidService,
  waitForPort,
  type ManagedProcess,
  type MeshidServiceProcess,
} from "@meshid/testkit";
import { ChannelCredentials, createChannel, createClient } from "nice-grpc";
import { stringify } from "yaml";
import { runMeshChecks } from "./checks";
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
  close(): void;
} {
  const channel = createChannel(`unix://${socketPath}`, ChannelCredentials.createInsecure());
  return {
    entries: createClient(meshidCaV1.EntryServiceDefinition, channel),
    agents: createClient(meshidCaV1.AgentServiceDefinition, channel),
    bundle: createClient(meshidCaV1.BundleServiceDefinition, channel),
    close: () => channel.close(),
  };
}

/** Creates a directory with `mode` (also when it exists). */
async function dir(path: string, mode: number): Promise<string> {
  await mkdir(path, { recursive: true, mode });
  await chmod(path, mode);
  return path;
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
    for (const later of ["proxy-config", "sidecar"]) built(later);

    // Registration entries for both demo workloads.
    const asRoot = process.getuid?.() === 0;
    const ownUid = process.getuid?.() ?? 0;
    const ownGid = process.getgid?.() ?? 0;
    const uidOf = (name: DemoName): number => (asRoot ? DEMO_UIDS[name] : ownUid);
    const parentPath = agentId === "" ? "" : new URL(agentId).pathname;
    for (const name of ["a", "b"] as const) {
      const path = `/demo/${name}`;
      const listed = await admin.entries.listEntries({ bySpiffeId: { trustDomain: td, path } });
      const current = listed.entries.find((e) => e.parentId?.path === parentPath);
      const stale = listed.entries.filter((e) => e !== current).map((e) => e.id);
      if (stale.length > 0) await admin.entries.batchDeleteEntry({ ids: stale });
      if (current === undefined) {
        const res = await admin.entries.batchCreateEntry({
          entries: [
            {
              spiffeId: { trustDomain: td, path },
              parentId: { trustDomain: td, path: parentPath },
              selectors: [{ type: "unix", value: `uid:${uidOf(name)}` }],
              dnsNames: [`${name}.demo.${td}`],
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
        progress(`registered spiffe://${td}${path} (unix:uid:${uidOf(name)})`);
      } else {
        progress(`entry spiffe://${td}${path} already registered`);
      }
    }

    // Demo apps and their sidecars.
    const nodeBin = process.execPath;
    const nginxBin = requireBinary("nginx", "nginx");
    const setpriv = asRoot ? requireBinary("setpriv", "util-linux") : undefined;
    const workloads: DemoWorkloadSummary[] = [];
    for (const name of ["a", "b"] as const) {
      const peer: DemoName = name === "a" ? "b" : "a";
      const appPort = port(name === "a" ? "appA" : "appB");
      const app = await spawnManaged(
        nodeBin,
        [join(__dirname, "demo-app.js"), name, String(appPort)],
        {
          name: `demo-app-${name}`,
        },
      );
      started.push(app);
      watch(app.name, app.exited);
      await app.waitForOutput(/demo app listening/);

      const uid = uidOf(name);
      const gid = asRoot ? uid : ownGid;
      await dir(join(stateDir, "sidecars"), 0o711);
      const home = await dir(join(stateDir, "sidecars", name), 0o700);
      for (const sub of ["logs", "tmp", "svid"]) await dir(join(home, sub), 0o700);
      const svidDir = join(home, "svid");
      const nginxConf = join(home, "nginx.conf");
      const inbound = port(name === "a" ? "inboundA" : "inboundB");
      const outbound = port(name === "a" ? "outboundA" : "outboundB");
      await writeFile(
        nginxConf,
        renderDemoSidecarNginxConf({
          prefix: home,
          svidDir,
          appPort,
          inboundPort: inbound,
          outboundPort: outbound,
          peerInboundPort: port(peer === "a" ? "inboundA" : "inboundB"),
          peerServerName: `${peer}.demo.${td}`,
        }),
        { mode: 0o600 },
      );
      const spiffeId = `spiffe://${td}/demo/${name}`;
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
      progress(
        `starting sidecar ${name} (uid ${uid}, NGINX on ${inbound} mTLS / ${outbound} local) …`,
      );
      const command = [join(__dirname, "demo-sidecar.js"), sidecarConfig];
      const sidecar: ManagedProcess =
        setpriv === undefined
          ? await spawnManaged(nodeBin, command, { name: `sidecar-${name}` })
          : await spawnManaged(
              setpriv,
              [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", nodeBin, ...command],
              { name: `sidecar-${name}`, orphanSignal: "SIGTERM" },
            );
      started.push({ name: sidecar.name, stop: () => sidecar.stop({ timeoutMs: 5_000 }) });
      watch(sidecar.name, sidecar.exited);
      const written = await sidecar.waitForOutput(/^.*"msg":"svid written".*$/m, {
        timeoutMs: 60_000,
      });
      await waitForPort(inbound, { timeoutMs: 20_000 });
      await waitForPort(outbound, { timeoutMs: 20_000 });
      const line = JSON.parse(written[0]) as {
        serial: string;
        notBefore: string;
        notAfter: string;
      };
      const notBefore = new Date(line.notBefore);
      const notAfter = new Date(line.notAfter);
      workloads.push({
        name,
        spiffeId,
        uid,
        appUrl: `http://127.0.0.1:${appPort}`,
        inboundAddress: `127.0.0.1:${inbound}`,
        outboundUrl: `http://127.0.0.1:${outbound}`,
        serial: line.serial,
        notAfter,
        nextRotationApprox: new Date((notBefore.getTime() + notAfter.getTime()) / 2),
        svidDir: join(svidDir, "current"),
        nginxConf,
      });
      progress(`sidecar ${name} serving ${spiffeId} (serial ${line.serial})`);
    }

    const meshctlContext = join(stateDir, "meshctl.yaml");
    const rel = (path: string): string => relative(stateDir, path);
    await writeFile(
      meshctlContext,
      `# Written by \`npm start\` (the local mesh) for meshctl; paths are relative to this file.\n${stringify(
        {
          trustDomain: td,
          ca: { adminSocket: rel(adminSocket), address: caAddress },
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
