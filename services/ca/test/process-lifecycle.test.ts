// The built CA as a real process: configuration errors, start-up refusals, probes and
// graceful stop.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CONFIG_ERROR_EXIT_CODE } from "@meshid/config";
import {
  certificatesToPem,
  createSelfSignedCa,
  exportPkcs8Pem,
  generateKeyPair,
} from "@meshid/pki";
import { runCommand } from "@meshid/testkit";
import { stringify } from "yaml";
import { cleanCaEnv, requireBuiltCa, useCaProcessSuite } from "../src/testing/ca-process";

jest.setTimeout(60_000);

describe("ca process", () => {
  const suite = useCaProcessSuite("ca-process");

  async function runCa(
    args: string[],
    env: Record<string, string> = {},
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return runCommand(process.execPath, [requireBuiltCa(), ...args], {
      env: cleanCaEnv(env),
      timeoutMs: 30_000,
    });
  }

  test("process – bad configuration exits with code 2 and lists every problem on stderr", async () => {
    const file = join(suite.dir.path, "bad.yaml");
    await writeFile(
      file,
      stringify({
        dataDir: join(suite.dir.path, "data"),
        caTtl: "1h",
        listen: "not-an-address",
        bogusKey: true,
      }),
    );
    const result = await runCa(["--config", file], {
      MESHID_CA_LOG_LEVEL: "loud",
      MESHID_CA_NO_SUCH_SETTING: "1",
    });
    expect(result.code).toBe(CONFIG_ERROR_EXIT_CODE);
    expect(result.stderr).toContain('invalid configuration for service "ca" (5 problems)');
    expect(result.stderr).toMatch(/bogusKey: unknown key/);
    expect(result.stderr).toMatch(/caTtl:/);
    expect(result.stderr).toMatch(/listen:/);
    expect(result.stderr).toMatch(/MESHID_CA_LOG_LEVEL: logLevel:/);
    expect(result.stderr).toMatch(/MESHID_CA_NO_SUCH_SETTING:/);
    // Nothing started, so nothing was logged.
    expect(result.stdout).not.toContain("ca listening");
  });

  test("process – the config file may come from MESHID_CA_CONFIG_FILE; a missing one is a config error", async () => {
    const missing = join(suite.dir.path, "missing.yaml");
    const result = await runCa([], { MESHID_CA_CONFIG_FILE: missing });
    expect(result.code).toBe(CONFIG_ERROR_EXIT_CODE);
    expect(result.stderr).toContain(missing);
    expect(result.stderr).toContain("cannot read file");
  });

  test("process – an unknown command-line option exits with code 2 and the usage", async () => {
    const result = await runCa(["--no-such-option"]);
    expect(result.code).toBe(CONFIG_ERROR_EXIT_CODE);
    expect(result.stderr).toContain("usage: meshid-ca");
  });

  test("process – serves /healthz and /readyz once listening and exits 0 on SIGTERM", async () => {
    const ca = await suite.start({
      config: { keyManager: "memory", natsUrl: suite.nats.url },
    });
    const health = await fetch(`${ca.opsUrl}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`${ca.opsUrl}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await fetch(`${ca.opsUrl}/metrics`);
    expect(metrics.status).toBe(200);

    // The admin socket answers.
    const admin = ca.adminClients();
    try {
      const bundle = await admin.bundle.getBundle({});
      expect(bundle.pem).toContain("BEGIN CERTIFICATE");
    } finally {
      admin.close();
    }

    const exit = await ca.stop();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(ca.process.output()).toContain('"msg":"ca stopped"');
  });

  test("process – SIGINT stops it gracefully too", async () => {
    const ca = await suite.start({ config: { keyManager: "memory" } });
    const exit = await ca.process.stop({ signal: "SIGINT" });
    expect(exit).toEqual({ code: 0, signal: null });
    expect(ca.process.output()).toContain('"msg":"ca stopped"');
  });

  // The exit-at-once path itself is unit-tested with a stop that never ends (libs/telemetry
  // run-service-process.test.ts). The CA ends its own streams as soon as it stops, so its
  // graceful stop may finish before a second signal arrives: either outcome is right, and
  // neither may hang or crash.
  test("process – a second signal during the graceful stop never hangs: 143 at once, or 0 when the stop already finished", async () => {
    const ca = await suite.start({ config: { keyManager: "memory" } });
    const admin = ca.adminClients();
    const abort = new AbortController();
    try {
      const stream = admin.bundle.watchBundle({}, { signal: abort.signal });
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next();
      const drained = (async () => {
        try {
          while (!(await iterator.next()).done) {
            // keep reading until the server goes away
          }
        } catch {
          // the stream fails when the process dies
        }
      })();
      process.kill(ca.pid, "SIGTERM");
      await ca.process.waitForOutput(/"msg":"signal received: stopping"/);
      process.kill(ca.pid, "SIGTERM");
      const exit = await ca.process.exited;
      const output = ca.process.output();
      if (output.includes('"msg":"second signal: exiting now"')) {
        // Exited at once, during the stop or right after it finished.
        expect(exit).toEqual({ code: 128 + 15, signal: null });
      } else {
        expect(exit).toEqual({ code: 0, signal: null });
        expect(output).toContain('"msg":"ca stopped"');
      }
      await drained;
    } finally {
      abort.abort();
      admin.close();
    }
  });

  test("process – refuses an upstream root with pathLen 1 at start-up: exit 1 with the exact message", async () => {
    const keyPair = await generateKeyPair("ec-p256");
    const root = await createSelfSignedCa({
      keyPair,
      trustDomain: "example.org",
      ttlSeconds: 30 * 24 * 3600,
      now: new Date(),
      pathLen: 1,
    });
    const certFile = join(suite.dir.path, "upstream.crt");
    const keyFile = join(suite.dir.path, "upstream.key");
    const upstreamFile = join(suite.dir.path, "upstream.yaml");
    await writeFile(certFile, certificatesToPem([root.certDer]));
    await writeFile(keyFile, exportPkcs8Pem(keyPair.privateKey), { mode: 0o600 });
    await writeFile(
      upstreamFile,
      stringify({
        apiVersion: "v1",
        upstreamAuthority: "disk",
        config: { cert_file_path: certFile, key_file_path: keyFile },
      }),
    );
    const configFile = join(suite.dir.path, "ca.yaml");
    await writeFile(
      configFile,
      stringify({
        listen: "127.0.0.1:0",
        ops: { listen: "127.0.0.1:0" },
        dataDir: join(suite.dir.path, "data"),
        keyManager: "memory",
        upstreamAuthorityFile: upstreamFile,
      }),
    );
    const result = await runCa(["--config", configFile]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(
      "upstream root CA has pathLen 1: pathLen must be 2 or more, or unset",
    );
    expect(result.stdout).toContain('"level":"fatal"');
  });
});
