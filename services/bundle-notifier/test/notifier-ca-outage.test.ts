// Bad input for the whole notifier: a CA that is unreachable at start, killed and restarted.
// The notifier retries with backoff, reports not-ready meanwhile, and recovers by itself.
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createMemoryLogger } from "@meshid/telemetry";
import { createTempDir, startMeshidCa, type MeshidCaProcess, type TempDir } from "@meshid/testkit";
import { buildBundleNotifierConfig } from "../src/config";
import { startBundleNotifier, type RunningBundleNotifier } from "../src/notifier";
import { pemCertificates, waitFor } from "./notifier-harness";

jest.setTimeout(120_000);

describe("bundle-notifier CA outage", () => {
  let dir: TempDir;
  let ca: MeshidCaProcess | undefined;
  let notifier: RunningBundleNotifier | undefined;

  beforeAll(async () => {
    dir = await createTempDir("bn-outage");
  });
  afterAll(async () => {
    await notifier?.stop();
    await ca?.stop();
    await dir?.cleanup();
  });

  it("bundle-notifier CA outage – not ready while the CA is unreachable (retrying with backoff), ready once it answers, not ready while it is down again, and back after its restart with the rotation made meanwhile", async () => {
    const caDir = join(dir.path, "ca");
    // startMeshidCa puts the admin socket here; the notifier starts before the CA exists.
    const adminSocketPath = join(caDir, "data", "admin", "admin.sock");
    const bundleFile = join(dir.path, "bundle.pem");
    notifier = await startBundleNotifier({
      config: buildBundleNotifierConfig({
        ca: { adminSocketPath, retryInitialDelay: "50ms", retryMaxDelay: "1s" },
        targets: { file: { path: bundleFile } },
      }),
      logger: createMemoryLogger().logger,
    });
    const n = notifier;
    await waitFor("three failed stream attempts", () => caErrors(n) >= 3);
    expect(n.ready()).toBe(false);
    expect(n.status()).toMatchObject({ caConnected: false, streamOpens: 0 });

    // The CA appears (disk key manager: its authorities survive the restart below).
    await mkdir(caDir, { recursive: true, mode: 0o700 });
    ca = await startMeshidCa({ workDir: caDir, keyManager: "disk" });
    const running = ca;
    await waitFor("ready once the CA answers", () => n.ready());
    expect(await readFile(bundleFile, "utf8")).toBe(await running.bundlePem());

    // Down again: not ready until it is back.
    await running.kill9();
    await waitFor("not ready while the CA is down", () => !n.ready());
    expect(n.status().caConnected).toBe(false);
    await running.restart();
    await waitFor("ready after the CA restart", () => n.ready());
    expect(n.status().streamOpens).toBeGreaterThanOrEqual(2);

    // A rotation after the restart reaches the file through the new stream.
    const admin = running.admin();
    await admin.authorities.prepareX509Authority({});
    const rotated = await running.bundlePem();
    expect(pemCertificates(rotated)).toHaveLength(2);
    await waitFor(
      "the rotated bundle in the file",
      async () => (await readFile(bundleFile, "utf8")) === rotated,
    );
  });
});

/** CA stream failures counted so far (from the notifier's own status). */
function caErrors(n: RunningBundleNotifier): number {
  return n.status().caStreamFailures;
}
