// The meshid-agent process (dist/main.js) against the built CA: config errors, probes, SIGTERM.
import { existsSync } from "node:fs";
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createTempDir,
  getFreePort,
  runCommand,
  spawnManaged,
  startMeshidCa,
  type ManagedProcess,
  type MeshidCaProcess,
  type TempDir,
} from "@meshid/testkit";

jest.setTimeout(120_000);

/** The built agent; build with `npx turbo run build --filter=@meshid/agent...`. */
const AGENT_MAIN = join(__dirname, "..", "dist", "main.js");

/** Environment without any MESHID_AGENT_* or OTEL_* variable of ours. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_AGENT_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

describe("agent process", () => {
  let dir: TempDir;
  let ca: MeshidCaProcess | undefined;
  let agent: ManagedProcess | undefined;

  beforeAll(async () => {
    if (!existsSync(AGENT_MAIN)) {
      throw new Error(`${AGENT_MAIN} is missing: build the agent first`);
    }
    dir = await createTempDir("agent-process");
    await chmod(dir.path, 0o755);
  });

  afterAll(async () => {
    await agent?.stop();
    await ca?.stop();
    await dir?.cleanup();
  });

  it("agent process – a config error exits 2 and names every problem", async () => {
    const result = await runCommand(process.execPath, [AGENT_MAIN], {
      env: { ...cleanEnv(), MESHID_AGENT_RECONCILE_INTERVAL: "soon" },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/caAddress/);
    expect(result.stderr).toMatch(/reconcileInterval/);
  });

  /**
   * Starts the built agent joined to `ca` with `name`'s own data dir, socket and ops port
   * (plus `extra` settings); resolves once it serves the Workload API.
   */
  async function startAgent(
    name: string,
    extra: Record<string, unknown> = {},
  ): Promise<{ socketPath: string; opsUrl: string }> {
    const c = (ca ??= await startMeshidCa());
    const opsPort = await getFreePort();
    const socketPath = join(dir.path, `run-${name}`, "workload.sock");
    const configFile = join(dir.path, `agent-${name}.yaml`);
    // JSON is YAML.
    await writeFile(
      configFile,
      JSON.stringify({
        trustDomain: c.trustDomain,
        caAddress: c.address,
        caServerId: c.serverId,
        bundleFile: c.bundleFile,
        dataDir: join(dir.path, `data-${name}`),
        attestation: { type: "join_token", joinToken: await c.createJoinToken() },
        workloadApi: { socketPath },
        ops: { listen: `127.0.0.1:${opsPort}` },
        ...extra,
      }),
    );
    agent = await spawnManaged(process.execPath, [AGENT_MAIN, "--config", configFile], {
      name: "meshid-agent",
      env: cleanEnv(),
    });
    await agent.waitForOutput(/agent serving the Workload API/, { timeoutMs: 60_000 });
    return { socketPath, opsUrl: `http://127.0.0.1:${opsPort}` };
  }

  it("agent process – attests, serves the Workload API and probes, then stops on SIGTERM", async () => {
    const { socketPath, opsUrl: base } = await startAgent("probes");
    const running = agent!;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/meshid_agent_sync_lag_seconds/);
    expect(existsSync(socketPath)).toBe(true);

    const exit = await running.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(running.output()).toMatch(/agent stopped/);
    expect(existsSync(socketPath)).toBe(false);
  });

  it("agent process – gives freed memory back once a minting burst is over", async () => {
    const { opsUrl } = await startAgent("release", {
      // No NATS here: the reconcile picks the new entries up.
      reconcileInterval: "1s",
      memoryRelease: { afterMinted: 20, quiet: "100ms" },
      logLevel: "debug",
    });
    const running = agent!;
    const c = ca!;
    const agentId = /"agentId":"(spiffe:\/\/[^"]+)"/.exec(running.output())?.[1];
    expect(agentId).toBeDefined();
    const metricsUrl = `${opsUrl}/metrics`;
    expect(await (await fetch(metricsUrl)).text()).not.toMatch(/meshid_agent_memory_releases/);

    const created = await c.admin().entries.batchCreateEntry({
      entries: Array.from({ length: 50 }, (_, i) => ({
        spiffeId: { trustDomain: c.trustDomain, path: `/memory/${i}` },
        parentId: { trustDomain: c.trustDomain, path: new URL(agentId!).pathname },
        // A uid no process here runs as: minted and cached, never served.
        selectors: [{ type: "unix", value: "uid:2147483646" }],
        x509SvidTtlSeconds: 0,
      })),
    });
    expect(created.results.every((r) => r.status?.code === 0)).toBe(true);

    const release = await running.waitForOutput(
      /"minted":(\d+)[^\n]*memory given back after minting/,
      {
        timeoutMs: 30_000,
      },
    );
    expect(Number(release[1])).toBeGreaterThanOrEqual(20);
    const metrics = await (await fetch(metricsUrl)).text();
    expect(metrics).toMatch(/meshid_agent_memory_releases_total(\{[^}]*\})? [1-9]/);
    expect(metrics).toMatch(/meshid_agent_memory_released_bytes_total(\{[^}]*\})? \d/);
    expect(metrics).toMatch(/meshid_agent_svids_cached(\{[^}]*\})? 50\b/);

    expect(await running.stop()).toEqual({ code: 0, signal: null });
  });
});
