// `npm start` (tools/local-mesh) as a user runs it: a fresh start with --check, a second start
// on the same state, and Ctrl-C. Needs the local mesh and the services built (`npm test` and
// `npm start` build them first).
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createTempDir,
  listProcesses,
  runCommand,
  spawnManaged,
  type TempDir,
} from "@meshid/testkit";
import { parse } from "yaml";

jest.setTimeout(240_000);

const REPO_ROOT = join(__dirname, "..", "..", "..");
const LOCAL_MESH_MAIN = join(REPO_ROOT, "tools", "local-mesh", "dist", "main.js");

interface MeshctlContext {
  trustDomain: string;
  ca: { adminSocket: string; address: string };
  proxyConfig?: { adminSocket: string };
  workloadSocket: string;
  natsUrl: string;
  services: Record<string, string>;
}

/** Processes whose command line names the state dir (services, nginx masters, sidecars). */
async function processesUsing(stateDir: string): Promise<string[]> {
  return (await listProcesses())
    .filter((p) => p.commandLine.includes(stateDir) && p.pid !== process.pid)
    .map((p) => `${p.pid} ${p.commandLine}`);
}

describe("local mesh (npm start)", () => {
  let dir: TempDir;
  let stateDir: string;

  beforeAll(async () => {
    if (!existsSync(LOCAL_MESH_MAIN)) {
      throw new Error(
        `${LOCAL_MESH_MAIN} is missing: build it first (npx turbo run build --filter=@meshid/local-mesh... --filter=@meshid/ca... --filter=@meshid/agent...)`,
      );
    }
    dir = await createTempDir("local-mesh");
    // The demo sidecars run under their own uids: they must traverse to the state dir.
    await chmod(dir.path, 0o711);
    stateDir = join(dir.path, "state");
  });

  afterAll(async () => {
    await dir?.cleanup();
  });

  it("local mesh – --check starts everything, A → B over mTLS works, plaintext and a foreign certificate are refused, and it stops cleanly", async () => {
    const result = await runCommand(
      process.execPath,
      [LOCAL_MESH_MAIN, "--check", "--state-dir", stateDir],
      { timeoutMs: 180_000 },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0) throw new Error(`exit ${String(result.code)}:\n${output}`);
    // Progress while starting, then the summary.
    expect(result.stderr).toMatch(/new state in/);
    expect(result.stderr).toMatch(/starting ca/);
    expect(result.stdout).toMatch(
      /✔ A → B over mTLS: HTTP 200 from B, which saw the caller as spiffe:\/\/meshid\.local\/demo\/a/,
    );
    expect(result.stdout).toMatch(/✔ plaintext to B: refused/);
    expect(result.stdout).toMatch(/✔ certificate of foreign\.example to B: refused/);
    expect(result.stdout).not.toMatch(/✘/);
    expect(result.stdout).toMatch(/spiffe:\/\/meshid\.local\/demo\/b/);
    expect(result.stdout).toMatch(/next rotation/);
    expect(result.stdout).toMatch(/meshctl entry list/);

    const context = parse(await readFile(join(stateDir, "meshctl.yaml"), "utf8")) as MeshctlContext;
    expect(context.trustDomain).toBe("meshid.local");
    expect(context.ca.adminSocket).toBe("ca/data/admin/admin.sock");
    expect(context.workloadSocket).toBe("agent/run/workload.sock");
    expect(context.natsUrl).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(Object.keys(context.services)).toEqual(
      expect.arrayContaining(["ca", "agent", "bundle-notifier", "proxy-config", "sidecar-a"]),
    );
    expect(context.proxyConfig?.adminSocket).toBe("proxy-config/admin/admin.sock");
    expect(await processesUsing(stateDir)).toEqual([]);
  });

  it("local mesh – a second start reuses the state (ports, agent identity, entries) and Ctrl-C stops every process", async () => {
    const before = JSON.parse(await readFile(join(stateDir, "state.json"), "utf8")) as {
      ports: Record<string, number>;
      joinToken: string;
    };
    const mesh = await spawnManaged(process.execPath, [LOCAL_MESH_MAIN, "--state-dir", stateDir], {
      name: "local-mesh",
      orphanSignal: "SIGINT",
      outputLimitChars: 200_000,
    });
    try {
      await mesh.waitForOutput(/Ctrl-C stops every process/, { timeoutMs: 180_000 });
      expect(mesh.output()).toMatch(/reusing the state in/);
      expect(mesh.output()).toMatch(/entry spiffe:\/\/meshid\.local\/demo\/a already registered/);
      expect(mesh.output()).toContain(`/meshid/agent/join_token/${before.joinToken}`);
      expect(mesh.output()).toContain(`local out http://127.0.0.1:${before.ports.outboundA}`);
      // The mesh serves while it is up.
      const res = await fetch(`http://127.0.0.1:${before.ports.outboundA}/hello`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { workload: string }).workload).toBe("b");
      expect((await processesUsing(stateDir)).length).toBeGreaterThan(5);

      const exit = await mesh.stop({ signal: "SIGINT", timeoutMs: 60_000 });
      if (exit.code !== 0) throw new Error(`exit ${JSON.stringify(exit)}:\n${mesh.output()}`);
      expect(mesh.output()).toMatch(/Ctrl-C: stopping every process[\s\S]*stopped; state kept/);
      expect(await processesUsing(stateDir)).toEqual([]);
    } finally {
      await mesh.stop({ signal: "SIGKILL" });
    }
  });

  it("local mesh – not root: both workloads share one uid, each sidecar picks its SVID by SPIFFE ID, and the checks pass", async () => {
    // As root the mesh is started as `nobody`; otherwise it already runs as a plain user.
    const asRoot = process.getuid?.() === 0;
    const userDir = join(dir.path, "user");
    await mkdir(userDir, { mode: 0o755 });
    if (asRoot) await chown(userDir, 65534, 65534);
    const command = asRoot
      ? [
          "setpriv",
          ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, LOCAL_MESH_MAIN],
        ]
      : [process.execPath, [LOCAL_MESH_MAIN]];
    const result = await runCommand(
      command[0] as string,
      [...(command[1] as string[]), "--check", "--state-dir", join(userDir, "state")],
      { timeoutMs: 180_000, env: { ...process.env, HOME: userDir } },
    );
    const output = `${result.stdout}\n${result.stderr}`;
    if (result.code !== 0) throw new Error(`exit ${String(result.code)}:\n${output}`);
    expect(result.stdout).toMatch(/not root, so both sidecars share one uid/);
    expect(result.stdout).toMatch(
      /✔ A → B over mTLS: HTTP 200 from B, which saw the caller as spiffe:\/\/meshid\.local\/demo\/a/,
    );
    expect(result.stdout).not.toMatch(/✘/);
    expect(await processesUsing(userDir)).toEqual([]);
  });
});
