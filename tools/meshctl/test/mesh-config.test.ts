// `mesh-config get|set` against the real proxy-config process (services/proxy-config/dist,
// file store) over its admin socket and over mTLS, with its serving SVID minted by a real CA.
// Request building and the JSON shape are unit-tested in src/commands/mesh-config.test.ts.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCsr, exportPkcs8Pem, generateKeyPair } from "@meshid/pki";
import { derToPem } from "@meshid/spiffe";
import {
  createTempDir,
  getFreePort,
  startMeshidCa,
  startMeshidService,
  startNatsServer,
  type MeshidCaProcess,
  type NatsServer,
  type MeshidServiceProcess,
  type TempDir,
} from "@meshid/testkit";
import { json, runCli, type CliResult } from "./cli-harness";

// Real processes on a loaded machine: generous bounds (the root jest run ignores the preset's
// per-project testTimeout).
jest.setTimeout(120_000);

const TD = "example.org";
const ADMIN_ID = `spiffe://${TD}/meshctl-admin`;

let nats: NatsServer;
let ca: MeshidCaProcess;
let proxyConfig: MeshidServiceProcess;
let dir: TempDir;
let adminSocket: string;
let address: string;

function expectCode(result: CliResult, code: number): void {
  if (result.code !== code) {
    throw new Error(
      `expected exit ${code}, got ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

interface MeshConfigJson {
  config: {
    mtlsMode: string;
    caTTL: string;
    svidTTL: string;
    caKeyType: string;
    generation: number;
    updatedAt: string | null;
  };
  warnings: string[];
}

/** Mints an X509-SVID from the CA and writes cert/key files; returns their paths. */
async function mintFiles(name: string, path: string, dnsNames: string[] = []) {
  const admin = ca.admin();
  const keys = await generateKeyPair("ec-p256");
  const csr = await createCsr({ privateKey: keys.privateKey, publicKey: keys.publicKey });
  const minted = await admin.svids.mintX509SVID({
    csr: Buffer.from(csr),
    spiffeId: { trustDomain: TD, path },
    dnsNames,
    ttlSeconds: 3600,
  });
  const certFile = join(dir.path, `${name}.pem`);
  const keyFile = join(dir.path, `${name}.key`);
  await writeFile(certFile, minted.svid!.certChain.map((d) => derToPem("CERTIFICATE", d)).join(""));
  await writeFile(keyFile, exportPkcs8Pem(keys.privateKey), { mode: 0o600 });
  return { certFile, keyFile };
}

const pc = (...argv: string[]): Promise<CliResult> =>
  runCli(["--proxy-config-socket", adminSocket, ...argv]);

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
  ca = await startMeshidCa({ trustDomain: TD, natsUrl: nats.url });
  dir = await createTempDir("meshctl-mesh-config-");
  const serving = await mintFiles("proxy-config", "/meshid/proxy-config", ["localhost"]);
  const port = await getFreePort();
  adminSocket = join(dir.path, "pc-admin", "admin.sock");
  address = `localhost:${port}`;
  proxyConfig = await startMeshidService({
    service: "proxy-config",
    config: {
      trustDomain: TD,
      listen: `127.0.0.1:${port}`,
      adminSocketPath: adminSocket,
      adminIds: [ADMIN_ID],
      tls: { ...serving, bundleFile: ca.bundleFile },
      meshConfig: { source: "file", path: join(dir.path, "meshconfig.yaml") },
      natsUrl: nats.url,
      logLevel: "info",
    },
  });
}, 90_000);

afterAll(async () => {
  await proxyConfig?.stop();
  await ca?.stop();
  await nats?.stop();
  await dir?.cleanup();
});

test("mesh-config get – the defaults, human and --json", async () => {
  const human = await pc("mesh-config", "get");
  expectCode(human, 0);
  expect(human.stdout).toMatch(/^mtls mode:\s+permissive$/m);
  expect(human.stdout).toMatch(/^ca ttl:\s+720h$/m);
  expect(human.stdout).toMatch(/^svid ttl:\s+1h$/m);
  expect(human.stdout).toMatch(/^ca key type:\s+ec-p256$/m);
  const j = json<MeshConfigJson>(await pc("--json", "mesh-config", "get"));
  expect(j.config).toEqual(
    expect.objectContaining({ mtlsMode: "permissive", caTTL: "720h", svidTTL: "1h" }),
  );
  expect(j.warnings).toEqual([]);
});

test("mesh-config set – changes the given fields, bumps the generation, keeps the rest", async () => {
  const before = json<MeshConfigJson>(await pc("--json", "mesh-config", "get")).config;
  const r = await pc("--json", "mesh-config", "set", "--mtls-mode", "strict", "--svid-ttl", "30m");
  expectCode(r, 0);
  const after = json<MeshConfigJson>(r).config;
  expect(after).toEqual(
    expect.objectContaining({
      mtlsMode: "strict",
      svidTTL: "30m",
      caTTL: before.caTTL,
      caKeyType: before.caKeyType,
      generation: before.generation + 1,
    }),
  );
  const human = await pc("mesh-config", "get");
  expect(human.stdout).toMatch(/^mtls mode:\s+strict$/m);
});

test("mesh-config set – server warnings are printed; refused values and stale generations exit 1", async () => {
  const warned = await pc("mesh-config", "set", "--svid-ttl", "200h");
  expectCode(warned, 0);
  expect(warned.stderr).toMatch(/^warning: .*svidTTL 200h is more than a sixth of caTTL 720h/m);

  const tooShort = await pc("mesh-config", "set", "--ca-ttl", "1h");
  expectCode(tooShort, 1);
  expect(tooShort.stderr).toMatch(/^error: .*ca.?ttl.* \(INVALID_ARGUMENT\)\n$/i);

  const current = json<MeshConfigJson>(await pc("--json", "mesh-config", "get")).config;
  const stale = await pc(
    "mesh-config",
    "set",
    "--mtls-mode",
    "off",
    "--expected-generation",
    String(current.generation - 1),
  );
  expectCode(stale, 1);
  expect(stale.stderr).toMatch(/\(ABORTED\)\n$/);
  const unchanged = json<MeshConfigJson>(await pc("--json", "mesh-config", "get")).config;
  expect(unchanged.generation).toBe(current.generation);
});

test("mesh-config over mTLS – an admin SVID may set; another SVID may get but not set (exit 5)", async () => {
  const bundle = join(dir.path, "bundle.pem");
  await writeFile(bundle, await ca.bundlePem());
  const admin = await mintFiles("admin", "/meshctl-admin");
  const other = await mintFiles("other", "/someone-else");
  const flags = (f: { certFile: string; keyFile: string }): string[] => [
    "--proxy-config-address",
    address,
    "--proxy-config-server-id",
    `spiffe://${TD}/meshid/proxy-config`,
    "--cert",
    f.certFile,
    "--key",
    f.keyFile,
    "--bundle",
    bundle,
  ];
  expectCode(await runCli([...flags(admin), "mesh-config", "set", "--mtls-mode", "permissive"]), 0);
  expectCode(await runCli([...flags(other), "mesh-config", "get"]), 0);
  const denied = await runCli([...flags(other), "mesh-config", "set", "--mtls-mode", "strict"]);
  expectCode(denied, 5);
  expect(denied.stderr).toMatch(/\(PERMISSION_DENIED\)\n$/);
});

test("mesh-config – no proxy-config configured → exit 2; a missing socket → exit 4", async () => {
  const none = await runCli(["mesh-config", "get"]);
  expectCode(none, 2);
  expect(none.stderr).toContain("--proxy-config-socket");
  const missing = await runCli(["mesh-config", "get", "--proxy-config-socket", "/nowhere/pc.sock"]);
  expectCode(missing, 4);
  expect(missing.stderr).toContain("/nowhere/pc.sock");
});

test("mesh-config set – bad values are usage errors before anything is sent", async () => {
  const before = json<MeshConfigJson>(await pc("--json", "mesh-config", "get")).config.generation;
  for (const args of [
    ["--mtls-mode", "sometimes"],
    ["--ca-ttl", "30 days"],
    ["--svid-ttl", "1y"],
    ["--ca-key-type", "dsa-1024"],
    ["--expected-generation", "-1"],
    [],
  ]) {
    const r = await pc("mesh-config", "set", ...args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
  }
  expect(json<MeshConfigJson>(await pc("--json", "mesh-config", "get")).config.generation).toBe(
    before,
  );
});

// Last: the rotation leaves proxy-config's static bundle file behind the CA's new authority.
test("mesh-config set --rotate-now – config.updated asks for rotation and the CA activates a new authority", async () => {
  type State = { active: { authorityId: string } | null };
  const before = json<State>(
    await runCli(["--json", "--ca-socket", ca.adminSocketPath, "authority", "show"]),
  ).active!.authorityId;
  const since = new Date().toISOString();
  const r = await pc("mesh-config", "set", "--ca-key-type", "ec-p384", "--rotate-now");
  expectCode(r, 0);
  const event = await runCli([
    "--json",
    "events",
    "tail",
    "config.updated",
    "--nats",
    nats.url,
    "--since",
    since,
    "--count",
    "1",
  ]);
  expectCode(event, 0);
  expect((JSON.parse(event.stdout) as { data: Record<string, unknown> }).data).toEqual(
    expect.objectContaining({ caKeyType: "ec-p384", rotateNow: true }),
  );
  // The CA reacts to the event: a new active authority of the new key type.
  const deadline = Date.now() + 30_000;
  let active: { authorityId: string; keyType: string } | undefined;
  while (Date.now() < deadline) {
    const state = json<{ active: { authorityId: string; keyType: string } }>(
      await runCli(["--json", "--ca-socket", ca.adminSocketPath, "authority", "show"]),
    );
    active = state.active;
    if (active.authorityId !== before) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(active?.authorityId).not.toBe(before);
  expect(active?.keyType).toBe("ec-p384");
});
