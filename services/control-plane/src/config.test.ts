import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConfigError } from "@meshid/config";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { DEFAULT_OPS_LISTEN, loadControlPlaneConfig } from "./config";

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`);
    throw err;
  }
  throw new Error("no ConfigError");
}

describe("control-plane config", () => {
  let dir: TempDir;
  beforeAll(async () => {
    dir = await createTempDir("control-plane-config-");
  });
  afterAll(async () => {
    await dir.cleanup();
  });

  it("config – each hosted service is loaded by its own loader: its file and its environment", async () => {
    const caFile = join(dir.path, "ca.yaml");
    await writeFile(caFile, "trustDomain: mesh.test\nlogLevel: debug\n");
    const own = join(dir.path, "control-plane.yaml");
    await writeFile(own, `ca: { configFile: ${caFile} }\nregistrar: {}\n`);
    const config = loadControlPlaneConfig({
      file: own,
      env: {
        MESHID_CA_LOG_LEVEL: "warn",
        MESHID_REGISTRAR_CLUSTER_NAME: "prod",
        MESHID_REGISTRAR_CA__ADMIN_SOCKET_PATH: "/run/ca/admin.sock",
      },
    });
    expect(Object.keys(config.services)).toEqual(["ca", "registrar"]);
    // The CA's file, then its environment over it, exactly as `meshid-ca` reads them.
    expect(config.services.ca?.config.trustDomain).toBe("mesh.test");
    expect(config.services.ca?.config.logLevel).toBe("warn");
    expect(config.services.registrar?.clusterName).toBe("prod");
    expect(config.ops.listen.port).toBe(Number(DEFAULT_OPS_LISTEN.split(":")[1]));
    expect(config.logLevel).toBe("info");
  });

  it("config – hosting is switched on and off from the environment", () => {
    const config = loadControlPlaneConfig({
      env: {
        MESHID_CONTROL_PLANE_CA__ENABLED: "true",
        MESHID_CONTROL_PLANE_REGISTRAR__ENABLED: "false",
        MESHID_CONTROL_PLANE_OPS__LISTEN: "127.0.0.1:9999",
      },
    });
    expect(Object.keys(config.services)).toEqual(["ca"]);
    expect(config.ops.listen).toEqual({ host: "127.0.0.1", port: 9999 });
  });

  it("config – at least one service; every problem of every configuration at once", async () => {
    expect(problemsOf(() => loadControlPlaneConfig({ env: {} }))).toEqual([
      ": host at least one service (ca, registrar, bundleNotifier, proxyConfig)",
    ]);
    const own = join(dir.path, "broken.yaml");
    await writeFile(own, "ca: {}\nregistrar: {}\n");
    const problems = problemsOf(() =>
      loadControlPlaneConfig({
        file: own,
        env: { MESHID_CA_TRUST_DOMAIN: "Bad Domain", MESHID_REGISTRAR_BATCH_SIZE: "0" },
      }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^trustDomain: .*\(ca\)$/),
        expect.stringMatching(/^batchSize: .*\(registrar\)$/),
      ]),
    );
    expect(
      problemsOf(() =>
        loadControlPlaneConfig({ env: { MESHID_CONTROL_PLANE_AGENT__ENABLED: "true" } }),
      ).join("\n"),
    ).toMatch(/agent/);
  });
});
