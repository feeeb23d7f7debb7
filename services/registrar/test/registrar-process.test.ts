// The meshid-registrar process (dist/main.js; build it first): config errors exit 2; no
// kubeconfig outside a pod exits 1 naming the cause; two replicas elect one leader through a
// Lease, only it writes; SIGKILL of the leader → the standby takes over and keeps
// reconciling; SIGTERM releases the Lease.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { KubeLease } from "@meshid/kube";
import {
  createTempDir,
  getFreePort,
  runCommand,
  spawnManaged,
  type ManagedProcess,
  type TempDir,
} from "@meshid/testkit";
import { CLUSTER, startRegistrarWorld, waitFor, type RegistrarWorld } from "./registrar-harness";

jest.setTimeout(180_000);

/** The built registrar; build with `npx turbo run build --filter=@meshid/registrar...`. */
const REGISTRAR_MAIN = join(__dirname, "..", "dist", "main.js");

/** Environment without any MESHID_REGISTRAR_* or OTEL_* variable of ours. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_REGISTRAR_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

interface Replica {
  readonly identity: string;
  readonly proc: ManagedProcess;
  readonly opsUrl: string;
}

let world: RegistrarWorld;
let dir: TempDir;
const replicas: Replica[] = [];

beforeAll(async () => {
  if (!existsSync(REGISTRAR_MAIN)) {
    throw new Error(`${REGISTRAR_MAIN} is missing: build the registrar first`);
  }
  dir = await createTempDir("registrar-process");
  world = await startRegistrarWorld();
});
afterAll(async () => {
  await Promise.allSettled(replicas.map((r) => r.proc.stop()));
  await world?.stop();
  await dir?.cleanup();
});

async function startReplica(identity: string): Promise<Replica> {
  const kubeconfig = join(dir.path, "kubeconfig.yaml");
  await writeFile(kubeconfig, world.kube.kubeConfigYaml(), { mode: 0o600 });
  const opsPort = await getFreePort();
  const configFile = join(dir.path, `${identity}.yaml`);
  // JSON is YAML.
  await writeFile(
    configFile,
    JSON.stringify({
      trustDomain: world.ca.trustDomain,
      clusterName: CLUSTER,
      kubeconfigFile: kubeconfig,
      ca: { adminSocketPath: world.ca.adminSocketPath },
      leaderElection: {
        identity,
        leaseDuration: "3s",
        renewDeadline: "2s",
        retryPeriod: "500ms",
      },
      ops: { listen: `127.0.0.1:${opsPort}` },
    }),
    { mode: 0o600 },
  );
  const proc = await spawnManaged(process.execPath, [REGISTRAR_MAIN, "--config", configFile], {
    name: `meshid-registrar-${identity}`,
    env: cleanEnv(),
    outputLimitChars: 200_000,
  });
  await proc.waitForOutput(/"msg":"registrar watching"/, { timeoutMs: 30_000 });
  const replica = { identity, proc, opsUrl: `http://127.0.0.1:${opsPort}` };
  replicas.push(replica);
  return replica;
}

function holder(): string | undefined {
  return world.kube.get<KubeLease>({ kind: "Lease", name: "meshid-registrar", namespace: "meshid" })
    ?.spec?.holderIdentity;
}

async function leaderGauge(replica: Replica): Promise<string | undefined> {
  const text = await (await fetch(`${replica.opsUrl}/metrics`)).text();
  return /^meshid_registrar_leader(?:\{[^}]*\})? (\d)/m.exec(text)?.[1];
}

async function podEntry(name: string): Promise<boolean> {
  return (await world.entries()).some((e) => e.dnsNames.includes(name));
}

describe("registrar process", () => {
  it("registrar process – a config error exits 2 and names every problem", async () => {
    const result = await runCommand(process.execPath, [REGISTRAR_MAIN], {
      env: { ...cleanEnv(), MESHID_REGISTRAR_RESYNC_INTERVAL: "soon" },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/clusterName/);
    expect(result.stderr).toMatch(/ca/);
    expect(result.stderr).toMatch(/resyncInterval/);
  });

  it("registrar process – without a kubeconfig outside a pod start-up fails and says why", async () => {
    const opsPort = await getFreePort();
    const configFile = join(dir.path, "no-kube.yaml");
    await writeFile(
      configFile,
      JSON.stringify({
        trustDomain: world.ca.trustDomain,
        clusterName: CLUSTER,
        ca: { adminSocketPath: world.ca.adminSocketPath },
        ops: { listen: `127.0.0.1:${opsPort}` },
      }),
      { mode: 0o600 },
    );
    const env = cleanEnv();
    delete env.KUBERNETES_SERVICE_HOST;
    delete env.KUBERNETES_SERVICE_PORT;
    const result = await runCommand(process.execPath, [REGISTRAR_MAIN, "--config", configFile], {
      env,
    });
    expect(result.code).toBe(1);
    expect(`${result.stdout}${result.stderr}`).toMatch(/KUBERNETES_SERVICE_HOST is unset/);
  });

  it("registrar process – one of two replicas writes; SIGKILL hands over; SIGTERM releases", async () => {
    world.addNode("node-p");
    const r1 = await startReplica("r1");
    await waitFor("r1 to hold the lease", () => holder() === "r1");
    const r2 = await startReplica("r2");
    for (const r of [r1, r2]) {
      await waitFor(
        `${r.identity} ready`,
        async () => (await fetch(`${r.opsUrl}/readyz`)).status === 200,
      );
      expect((await fetch(`${r.opsUrl}/healthz`)).status).toBe(200);
    }
    expect(await leaderGauge(r1)).toBe("1");
    expect(await leaderGauge(r2)).toBe("0");

    await world.createPod({ namespace: "proc", name: "one", node: "node-p" });
    await waitFor("one's entry", () => podEntry("one"));
    expect(r2.proc.output()).not.toContain("leading: reconciling entries");

    await r1.proc.stop({ signal: "SIGKILL" });
    await waitFor("r2 to take over", () => holder() === "r2");
    await waitFor("r2's leader gauge", async () => (await leaderGauge(r2)) === "1");
    await world.createPod({ namespace: "proc", name: "two", node: "node-p" });
    await waitFor("two's entry", () => podEntry("two"));
    await world.deletePod("proc", "one");
    await waitFor("one's entry gone", async () => !(await podEntry("one")));

    const exit = await r2.proc.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(holder()).toBe("");
  });
});
