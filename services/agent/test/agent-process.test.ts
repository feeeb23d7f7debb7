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

  it("agent process – attests, serves the Workload API and probes, then stops on SIGTERM", async () => {
    ca = await startMeshidCa();
    const opsPort = await getFreePort();
    const socketPath = join(dir.path, "run", "workload.sock");
    const configFile = join(dir.path, "agent.yaml");
    // JSON is YAML.
    await writeFile(
      configFile,
      JSON.stringify({
        trustDomain: ca.trustDomain,
        caAddress: ca.address,
        caServerId: ca.serverId,
        bundleFile: ca.bundleFile,
        dataDir: join(dir.path, "data"),
        attestation: { type: "join_token", joinToken: await ca.createJoinToken() },
        workloadApi: { socketPath },
        ops: { listen: `127.0.0.1:${opsPort}` },
      }),
    );
    agent = await spawnManaged(process.execPath, [AGENT_MAIN, "--config", configFile], {
      name: "meshid-agent",
      env: cleanEnv(),
    });
    await agent.waitForOutput(/agent serving the Workload API/, { timeoutMs: 60_000 });
    const base = `http://127.0.0.1:${opsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/meshid_agent_sync_lag_seconds/);
    expect(existsSync(socketPath)).toBe(true);

    const exit = await agent.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(agent.output()).toMatch(/agent stopped/);
    expect(existsSync(socketPath)).toBe(false);
  });

  it("agent process – gives freed memory back once a minting burst is over", async () => {
    ca ??= await startMeshidCa();
    const opsPort = await getFreePort();
    const configFile = join(dir.path, "agent-release.yaml");
    await writeFile(
      configFile,
      JSON.stringify({
        trustDomain: ca.trustDomain,
        caAddress: ca.address,
        caServerId: ca.serverId,
        bundleFile: ca.bundleFile,
        dataDir: join(dir.path, "data-release"),
        attestation: { type: "join_token", joinToken: await ca.createJoinToken() },
        workloadApi: { socketPath: join(dir.path, "run-release", "workload.sock") },
        ops: { listen: `127.0.0.1:${opsPort}` },
        // No NATS here: the reconcile picks the new entries up.
        reconcileInterval: "1s",
        memoryRelease: { afterMinted: 20, quiet: "100ms" },
        logLevel: "debug",
      }),
    );
    agent = await spawnManaged(process.execPath, [AGENT_MAIN, "--config", configFile], {
      name: "meshid-agent",
      env: cleanEnv(),
    });
    await agent.waitForOutput(/agent serving the Workload API/, { timeoutMs: 60_000 });
    const agentId = /"agentId":"(spiffe:\/\/[^"]+)"/.exec(agent.output())?.[1];
    expect(agentId).toBeDefined();
    const metricsUrl = `http://127.0.0.1:${opsPort}/metrics`;
    expect(await (await fetch(metricsUrl)).text()).not.toMatch(/meshid_agent_memory_releases/);

    const created = await ca.admin().entries.batchCreateEntry({
      entries: Array.from({ length: 50 }, (_, i) => ({
        spiffeId: { trustDomain: ca!.trustDomain, path: `/memory/${i}` },
        parentId: { trustDomain: ca!.trustDomain, path: new URL(agentId!).pathname },
        // A uid no process here runs as: minted and cached, never served.
        selectors: [{ type: "unix", value: "uid:2147483646" }],
        x509SvidTtlSeconds: 0,
      })),
    });
    expect(created.results.every((r) => r.status?.code === 0)).toBe(true);

    const release = await agent.waitForOutput(
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

    expect(await agent.stop()).toEqual({ code: 0, signal: null });
  });
});
