// The meshid-proxy-config process (dist/main.js): config errors, probes, metrics, the admin
// socket, SIGTERM.
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createGrpcChannel, createGrpcClient } from "@meshid/grpc-kit";
import { meshidProxyconfigV1 as pb } from "@meshid/proto";
import {
  createTempDir,
  createTestCa,
  getFreePort,
  runCommand,
  spawnManaged,
  type ManagedProcess,
  type TempDir,
} from "@meshid/testkit";

jest.setTimeout(120_000);

/** The built service; build with `npx turbo run build --filter=@meshid/proxy-config...`. */
const MAIN = join(__dirname, "..", "dist", "main.js");

/** Environment without any MESHID_PROXY_CONFIG_* or OTEL_* variable of ours. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_PROXY_CONFIG_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

describe("proxy-config process", () => {
  let dir: TempDir;
  let proc: ManagedProcess | undefined;

  beforeAll(async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: build proxy-config first`);
    dir = await createTempDir("proxy-config-process");
  });

  afterAll(async () => {
    await proc?.stop();
    await dir?.cleanup();
  });

  it("proxy-config process – a config error exits 2 and names every problem", async () => {
    const result = await runCommand(process.execPath, [MAIN], {
      env: { ...cleanEnv(), MESHID_PROXY_CONFIG_MESH_CONFIG__SOURCE: "etcd" },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/meshConfig\.source/);
    expect(result.stderr).toMatch(/tls\.certFile/);
  });

  it("proxy-config process – serves probes, metrics and the admin socket, then stops on SIGTERM", async () => {
    const ca = await createTestCa();
    const svid = await ca.issueSvid({
      spiffeId: "spiffe://example.org/meshid/proxy-config",
      dnsNames: ["localhost"],
    });
    const tls = {
      certFile: join(dir.path, "svid.pem"),
      keyFile: join(dir.path, "svid.key"),
      bundleFile: join(dir.path, "bundle.pem"),
    };
    await writeFile(tls.certFile, svid.certChainPem, { mode: 0o600 });
    await writeFile(tls.keyFile, svid.keyPem, { mode: 0o600 });
    await writeFile(tls.bundleFile, ca.bundlePem, { mode: 0o600 });
    const opsPort = await getFreePort();
    const adminSocketPath = join(dir.path, "admin", "admin.sock");
    const configFile = join(dir.path, "proxy-config.yaml");
    await writeFile(
      configFile,
      JSON.stringify({
        listen: "127.0.0.1:0",
        adminSocketPath,
        tls,
        meshConfig: { source: "file", path: join(dir.path, "state", "meshconfig.yaml") },
        ops: { listen: `127.0.0.1:${opsPort}` },
      }),
    );
    proc = await spawnManaged(process.execPath, [MAIN, "--config", configFile], {
      name: "meshid-proxy-config",
      env: cleanEnv(),
    });
    await proc.waitForOutput(/proxy-config listening/, { timeoutMs: 60_000 });
    const base = `http://127.0.0.1:${opsPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);

    const channel = createGrpcChannel({ target: `unix://${adminSocketPath}` });
    try {
      const client = createGrpcClient(pb.MeshConfigServiceDefinition, channel, {
        deadlineMs: 20_000,
      });
      const res = await client.updateMeshConfig({
        mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT,
        rotateNow: false,
      });
      expect(res.config).toMatchObject({ mtlsMode: pb.MtlsMode.MTLS_MODE_STRICT, generation: 2 });
    } finally {
      channel.close();
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/meshid_proxy_config_mtls_mode\{[^}]*mode="strict"[^}]*\} 1/);
    expect(metrics).toMatch(/meshid_proxy_config_mesh_config_generation(\{[^}]*\})? 2/);
    expect(metrics).toMatch(/meshid_proxy_config_watch_streams(\{[^}]*\})? 0/);

    const exit = await proc.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(existsSync(adminSocketPath)).toBe(false);
  });
});
