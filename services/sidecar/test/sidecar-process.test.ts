// The meshid-sidecar process (dist/main.js): config errors, probes and metrics, SIGTERM
// stopping its NGINX too.
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  getFreePort,
  isProcessAlive,
  runCommand,
  spawnManaged,
  type ManagedProcess,
} from "@meshid/testkit";
import {
  eventually,
  startSidecarStack,
  strictTemplate,
  tlsPeer,
  type SidecarStack,
} from "./sidecar-harness";

jest.setTimeout(300_000);

/** `nobody`: the unprivileged sidecar's uid (the tests run as root). */
const NOBODY_UID = 65534;

/** The built sidecar; build with `npx turbo run build --filter=@meshid/sidecar...`. */
const SIDECAR_MAIN = join(__dirname, "..", "dist", "main.js");

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (
      !name.startsWith("MESHID_SIDECAR_") &&
      !name.startsWith("OTEL_") &&
      name !== "SPIFFE_ENDPOINT_SOCKET"
    ) {
      env[name] = value;
    }
  }
  return env;
}

describe("sidecar process", () => {
  let stack: SidecarStack | undefined;
  let proc: ManagedProcess | undefined;

  beforeAll(() => {
    if (!existsSync(SIDECAR_MAIN))
      throw new Error(`${SIDECAR_MAIN} is missing: build the sidecar first`);
  });

  afterAll(async () => {
    await proc?.stop();
    await stack?.stop();
  });

  it("sidecar process – a config error exits 2 and names every problem", async () => {
    const result = await runCommand(process.execPath, [SIDECAR_MAIN], {
      env: {
        ...cleanEnv(),
        SPIFFE_ENDPOINT_SOCKET: "tcp://x:1",
        MESHID_SIDECAR_NGINX__MANAGE: "fork",
      },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/proxyConfig/);
    expect(result.stderr).toMatch(/nginx\.manage/);
    expect(result.stderr).toMatch(/SPIFFE_ENDPOINT_SOCKET/);
  });

  it("sidecar process – serves NGINX with the agent SVID, answers probes and metrics, and stops NGINX on SIGTERM", async () => {
    stack ??= await startSidecarStack();
    await stack.createEntry("/process/web");
    const client = await stack.fetchSvid("spiffe://example.org/process/web");
    const base = join(stack.dir.path, "process");
    const port = await getFreePort();
    const opsPort = await getFreePort();
    const template = `${base}-nginx.conf.tmpl`;
    await writeFile(template, strictTemplate(port));
    const configFile = `${base}-sidecar.yaml`;
    await writeFile(
      configFile,
      JSON.stringify({
        svidDir: join(base, "run", "svid"),
        proxyConfig: { file: template, filePollInterval: "200ms" },
        nginx: { prefix: join(base, "nginx"), user: "root" },
        ops: { listen: `127.0.0.1:${opsPort}` },
      }),
    );
    proc = await spawnManaged(process.execPath, [SIDECAR_MAIN, "--config", configFile], {
      name: "meshid-sidecar",
      env: { ...cleanEnv(), SPIFFE_ENDPOINT_SOCKET: `unix://${stack.agent.workloadSocketPath}` },
      outputLimitChars: 100_000,
    });
    await proc.waitForOutput(/"msg":"sidecar started"/, { timeoutMs: 60_000 });
    const ops = `http://127.0.0.1:${opsPort}`;
    await eventually("readyz 200", async () =>
      (await fetch(`${ops}/readyz`)).status === 200 ? true : undefined,
    );
    const health = await fetch(`${ops}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe("ok\n");
    const peer = await tlsPeer(port, client);
    expect(peer.uri).toBe("spiffe://example.org/process/web");

    const metrics = await (await fetch(`${ops}/metrics`)).text();
    expect(metrics).toMatch(/meshid_sidecar_svid_expiry_seconds\S* \d/);
    expect(metrics).toMatch(/meshid_sidecar_config_generation\S* 1/);
    expect(metrics).toMatch(/meshid_sidecar_degraded\S* 0/);
    expect(metrics).toMatch(/meshid_sidecar_last_reload_success\S* 1/);
    expect(metrics).toMatch(/meshid_sidecar_reloads_total\{[^}]*kind="start"[^}]*\} 1/);

    const nginxPid = Number((await readFile(join(base, "nginx", "nginx.pid"), "utf8")).trim());
    expect(isProcessAlive(nginxPid)).toBe(true);
    const exit = await proc.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(proc.output()).toMatch(/sidecar stopped/);
    expect(proc.output()).not.toMatch(/PRIVATE KEY/);
    await eventually("NGINX gone", () => (isProcessAlive(nginxPid) ? undefined : true));
  });

  it("sidecar process – runs unprivileged (its own uid, NGINX without a user directive), retrying PERMISSION_DENIED until its entry exists", async () => {
    stack ??= await startSidecarStack();
    const uid = NOBODY_UID;
    await stack.createEntry("/process/probe");
    const client = await stack.fetchSvid("spiffe://example.org/process/probe");
    // Other uids must traverse the suite's directory to their own home.
    await chmod(stack.dir.path, 0o711);
    const home = join(stack.dir.path, "unprivileged");
    await mkdir(home, { mode: 0o700 });
    const port = await getFreePort();
    const opsPort = await getFreePort();
    const template = join(home, "nginx.conf.tmpl");
    await writeFile(template, strictTemplate(port));
    const configFile = join(home, "sidecar.yaml");
    await writeFile(
      configFile,
      JSON.stringify({
        svidDir: join(home, "svid"),
        proxyConfig: { file: template },
        nginx: { prefix: join(home, "nginx") },
        ops: { listen: `127.0.0.1:${opsPort}` },
      }),
    );
    await runCommand("chown", ["-R", `${uid}:${uid}`, home]);
    const unprivileged = await spawnManaged(
      process.execPath,
      [SIDECAR_MAIN, "--config", configFile],
      {
        name: "meshid-sidecar-unprivileged",
        env: { ...cleanEnv(), SPIFFE_ENDPOINT_SOCKET: `unix://${stack.agent.workloadSocketPath}` },
        runAs: String(uid),
        outputLimitChars: 100_000,
      },
    );
    try {
      // No entry for this uid yet: the agent answers PERMISSION_DENIED and the sidecar retries.
      await unprivileged.waitForOutput(
        /"reason":"PERMISSION_DENIED"[^\n]*Workload API watch failed/,
        {
          timeoutMs: 60_000,
        },
      );
      await stack.createEntry("/process/unprivileged", 3_600, uid);
      const ops = `http://127.0.0.1:${opsPort}`;
      await eventually("readyz 200", async () =>
        (await fetch(`${ops}/readyz`)).status === 200 ? true : undefined,
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${unprivileged.output()}`);
      });
      expect((await tlsPeer(port, client)).uri).toBe("spiffe://example.org/process/unprivileged");
      const key = await stat(join(home, "svid", "svid.key"));
      expect({ uid: key.uid, mode: (key.mode & 0o777).toString(8) }).toEqual({ uid, mode: "600" });
      const nginxPid = Number((await readFile(join(home, "nginx", "nginx.pid"), "utf8")).trim());
      const status = await readFile(`/proc/${nginxPid}/status`, "utf8");
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).toBe(String(uid));
      expect(await unprivileged.stop()).toEqual({ code: 0, signal: null });
      await eventually("NGINX gone", () => (isProcessAlive(nginxPid) ? undefined : true));
    } finally {
      await unprivileged.stop();
    }
  });
});
