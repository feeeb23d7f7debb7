// The built `meshid-bundle-notifier` process (dist/main.js; build it first): a broken config
// exits 2 naming every problem; a good one writes the file target, answers the probes and
// /metrics, and stops gracefully on SIGTERM.
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  createTempDir,
  meshidServiceMain,
  runCommand,
  startMeshidCa,
  startMeshidService,
  type MeshidCaProcess,
  type MeshidServiceProcess,
  type TempDir,
} from "@meshid/testkit";
import { waitFor } from "./notifier-harness";

jest.setTimeout(120_000);

const MAIN = meshidServiceMain("bundle-notifier");

/** Environment without any MESHID_BUNDLE_NOTIFIER_* or OTEL_* variable of ours. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_BUNDLE_NOTIFIER_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return env;
}

describe("bundle-notifier process", () => {
  let dir: TempDir;
  let ca: MeshidCaProcess | undefined;
  let notifier: MeshidServiceProcess | undefined;

  beforeAll(async () => {
    if (!existsSync(MAIN)) {
      throw new Error(
        `${MAIN} is missing: build it first (npx turbo run build --filter=@meshid/bundle-notifier...)`,
      );
    }
    dir = await createTempDir("bn-process");
  });
  afterAll(async () => {
    await notifier?.stop();
    await ca?.stop();
    await dir?.cleanup();
  });

  it("bundle-notifier process – a broken environment exits 2 and names every problem", async () => {
    const result = await runCommand(process.execPath, [MAIN], {
      env: {
        ...cleanEnv(),
        MESHID_BUNDLE_NOTIFIER_RESYNC_INTERVAL: "often",
        MESHID_BUNDLE_NOTIFIER_TARGETS__CONFIG_MAP__NAME: "Not_A_Name",
      },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/resyncInterval/);
    expect(result.stderr).toMatch(/targets\.configMap\.name/);
    expect(result.stderr).toMatch(/set either adminSocketPath/);
    expect(result.stderr).toMatch(/enable at least one target/);
  });

  it("bundle-notifier process – a file that is not YAML, an unknown key or an unknown flag exits 2", async () => {
    const broken = join(dir.path, "broken.yaml");
    await writeFile(broken, "ca: [unclosed\n");
    const notYaml = await runCommand(process.execPath, [MAIN, "--config", broken], {
      env: cleanEnv(),
    });
    expect(notYaml.code).toBe(2);
    expect(notYaml.stderr).toMatch(/broken\.yaml/);

    const unknown = join(dir.path, "unknown.yaml");
    await writeFile(
      unknown,
      "ca:\n  adminSocketPath: /run/admin.sock\ntargets:\n  file:\n    path: /tmp/b.pem\nwebhook: true\n",
    );
    const unknownKey = await runCommand(process.execPath, [MAIN, "--config", unknown], {
      env: cleanEnv(),
    });
    expect(unknownKey.code).toBe(2);
    expect(unknownKey.stderr).toMatch(/webhook/);

    const flag = await runCommand(process.execPath, [MAIN, "--frobnicate"], { env: cleanEnv() });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/usage: meshid-bundle-notifier/);
  });

  it("bundle-notifier process – writes the file target, answers /healthz, /readyz and /metrics, stops on SIGTERM", async () => {
    ca = await startMeshidCa();
    const bundleFile = join(dir.path, "out", "bundle.pem");
    notifier = await startMeshidService({
      service: "bundle-notifier",
      workDir: join(dir.path, "notifier"),
      config: {
        trustDomain: ca.trustDomain,
        ca: { adminSocketPath: ca.adminSocketPath },
        targets: { file: { path: bundleFile } },
        logLevel: "info",
      },
    });
    const running = notifier;
    // startMeshidService resolved after /readyz answered 200: the file is written.
    expect(await readFile(bundleFile, "utf8")).toBe(await ca.bundlePem());
    expect((await running.ops("/healthz")).status).toBe(200);
    expect((await running.ops("/readyz")).status).toBe(200);
    const metrics = await waitFor("the writes counter", async () => {
      const m = await running.ops("/metrics");
      return /meshid_bundle_notifier_writes_total/.test(m.body) ? m.body : undefined;
    });
    expect(metrics).toMatch(/meshid_bundle_notifier_last_sequence\{[^}]*target="file:/);
    expect(metrics).toMatch(/meshid_bundle_notifier_ca_connected \d/);

    // The CA goes away: /readyz turns 503 while /healthz stays 200.
    await ca.kill9();
    await waitFor("/readyz 503", async () => (await running.ops("/readyz")).status === 503);
    expect((await running.ops("/healthz")).status).toBe(200);
    await ca.restart();
    await waitFor("/readyz 200 again", async () => (await running.ops("/readyz")).status === 200);

    const exit = await running.stop();
    expect(exit.code).toBe(0);
    expect(running.output()).toMatch(/"msg":"bundle-notifier stopped"/);
  });
});
