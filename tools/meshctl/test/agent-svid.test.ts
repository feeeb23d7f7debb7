// meshctl against a real CA and a real agent process: `agent list|show|ban|delete`, and
// `svid fetch` from the agent's Workload API (human, --json, --write), plus mTLS to the CA
// with meshctl's own SVID taken from the Workload API.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import {
  createTempDir,
  startMeshidAgent,
  startMeshidCa,
  startNatsServer,
  type NatsServer,
  type MeshidAgentProcess,
  type MeshidCaProcess,
  type TempDir,
} from "@meshid/testkit";
import { stringify } from "yaml";
import { json, like, runCli, runCliProcess, type CliResult } from "./cli-harness";

// Real processes on a loaded machine: generous bounds (the root jest run ignores the preset's
// per-project testTimeout).
jest.setTimeout(120_000);

const TD = "example.org";
const WORKLOAD_ID = `spiffe://${TD}/meshctl/test-workload`;

let nats: NatsServer;
let ca: MeshidCaProcess;
let agent: MeshidAgentProcess;
let dir: TempDir;
let beforeEntry: CliResult;

function expectCode(result: CliResult, code: number): void {
  if (result.code !== code) {
    throw new Error(
      `expected exit ${code}, got ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

const withCa = (...argv: string[]): Promise<CliResult> =>
  runCli(["--ca-socket", ca.adminSocketPath, ...argv]);

beforeAll(async () => {
  // With NATS the agent hears about the new entry at once (else the 30 s reconcile finds it).
  nats = await startNatsServer({ jetstream: true });
  ca = await startMeshidCa({ natsUrl: nats.url });
  agent = await startMeshidAgent({ ca, natsUrl: nats.url });
  dir = await createTempDir("meshctl-svid-");
  beforeEntry = await runCliProcess(["svid", "fetch", "--socket", agent.workloadSocketPath]);
  // An admin entry for this process's uid: svid fetch gets it, and mTLS to the CA may use it.
  const created = await withCa(
    "entry",
    "create",
    "--spiffe-id",
    WORKLOAD_ID,
    "--parent-id",
    agent.agentId,
    "-s",
    `unix:uid:${process.getuid!()}`,
    "--admin",
  );
  expectCode(created, 0);
  // The agent streams the SVID once it synced the entry and had it signed.
  let last: CliResult | undefined;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    last = await runCli(["svid", "fetch", "--socket", agent.workloadSocketPath]);
    if (last.code === 0 && last.stdout.includes(WORKLOAD_ID)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  expectCode(last!, 0);
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await ca?.stop();
  await nats?.stop();
  await dir?.cleanup();
});

test("svid fetch – prints SPIFFE ID, serial, expiry and hint", async () => {
  const r = await runCli(["svid", "fetch", "--socket", agent.workloadSocketPath]);
  expectCode(r, 0);
  const [header, row] = r.stdout.trimEnd().split("\n");
  expect(header).toMatch(/^SPIFFE ID\s+SERIAL\s+EXPIRES\s+HINT$/);
  expect(row).toMatch(
    new RegExp(
      `^${WORKLOAD_ID}\\s+[0-9a-f]+\\s+\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z \\(in \\d+[smhd]\\)\\s+-$`,
    ),
  );
});

test("svid fetch --json – SVIDs without the key, and the bundle", async () => {
  const r = await runCli([
    "--json",
    "svid",
    "fetch",
    "--socket",
    `unix://${agent.workloadSocketPath}`,
  ]);
  expectCode(r, 0);
  const body = json<{
    svids: { spiffeId: string; serial: string; expiresAt: string; certChainPem: string }[];
    bundlePem: string;
  }>(r);
  expect(body.svids.map((s) => s.spiffeId)).toEqual([WORKLOAD_ID]);
  const leaf = new X509Certificate(body.svids[0]!.certChainPem);
  expect(leaf.serialNumber.toLowerCase()).toBe(body.svids[0]!.serial);
  expect(new Date(body.svids[0]!.expiresAt).toISOString()).toBe(
    new Date(leaf.validTo).toISOString(),
  );
  expect(body.bundlePem).toBe(await ca.bundlePem());
  expect(r.stdout).not.toContain("PRIVATE KEY");
});

test("svid fetch --write – svid.pem, svid.key (0600), bundle.pem in a 0700 dir", async () => {
  const out = join(dir.path, "certs", "nested");
  const r = await runCli(["svid", "fetch", "--write", out], {
    env: { SPIFFE_ENDPOINT_SOCKET: `unix://${agent.workloadSocketPath}` },
  });
  expectCode(r, 0);
  expect((await stat(out)).mode & 0o777).toBe(0o700);
  expect((await stat(join(out, "svid.key"))).mode & 0o777).toBe(0o600);
  const cert = new X509Certificate(await readFile(join(out, "svid.pem")));
  const key = createPrivateKey(await readFile(join(out, "svid.key")));
  expect(cert.checkPrivateKey(key)).toBe(true);
  expect(cert.subjectAltName).toContain(WORKLOAD_ID);
  expect(await readFile(join(out, "bundle.pem"), "utf8")).toBe(await ca.bundlePem());
});

test("svid fetch – a missing socket → exit 4; no socket configured → exit 2", async () => {
  const missing = await runCli(["svid", "fetch", "--socket", join(dir.path, "nope.sock")]);
  expectCode(missing, 4);
  expect(missing.stderr).toContain("nope.sock");
  expect(missing.stderr).not.toMatch(/\n\s+at /);
  expectCode(await runCli(["svid", "fetch"], { cwd: dir.path }), 2);
  expectCode(await runCli(["svid", "fetch", "--socket", "unix://host/x.sock"]), 2);
});

test("svid fetch – before the caller has an entry: PERMISSION_DENIED → exit 5, no stack", () => {
  // Run (as a real process) in beforeAll, before the entry was created.
  expectCode(beforeEntry, 5);
  expect(beforeEntry.stderr).toMatch(/^error: .+ \(PERMISSION_DENIED\)\n$/);
  expect(beforeEntry.stderr).not.toMatch(/\n\s+at /);
});

test("mTLS to the CA with meshctl's SVID from the Workload API", async () => {
  const r = await runCli([
    "--json",
    "--ca-address",
    ca.address,
    "--ca-server-id",
    ca.serverId,
    "--workload-socket",
    agent.workloadSocketPath,
    "entry",
    "list",
    "--spiffe-id",
    WORKLOAD_ID,
  ]);
  expectCode(r, 0);
  expect(json<{ entries: { spiffeId: string }[] }>(r).entries.map((e) => e.spiffeId)).toEqual([
    WORKLOAD_ID,
  ]);
  // A wrong expected server ID fails the handshake: cannot connect.
  const wrong = await runCli([
    "--ca-address",
    ca.address,
    "--ca-server-id",
    `spiffe://${TD}/not-the-ca`,
    "--workload-socket",
    agent.workloadSocketPath,
    "bundle",
    "show",
  ]);
  expectCode(wrong, 4);
});

test("context – the shape npm start writes (admin socket + address, workload socket, ops URLs)", async () => {
  await mkdir(join(dir.path, ".meshid"), { mode: 0o700 });
  await writeFile(
    join(dir.path, ".meshid", "meshctl.yaml"),
    stringify({
      trustDomain: TD,
      ca: {
        adminSocket: relative(join(dir.path, ".meshid"), ca.adminSocketPath),
        address: ca.address,
      },
      workloadSocket: relative(join(dir.path, ".meshid"), agent.workloadSocketPath),
      natsUrl: "nats://127.0.0.1:4222",
      services: { ca: "", agent: agent.opsUrl },
    }),
  );
  const svid = await runCli(["--json", "svid", "fetch"], { cwd: dir.path });
  expectCode(svid, 0);
  expect(json<{ svids: { spiffeId: string }[] }>(svid).svids[0]?.spiffeId).toBe(WORKLOAD_ID);
  const entries = await runCli(["--json", "entry", "list", "--spiffe-id", WORKLOAD_ID], {
    cwd: dir.path,
  });
  expectCode(entries, 0);
  const status = await runCli(["status"], { cwd: dir.path });
  expect(status.stdout).toMatch(new RegExp(`^agent\\s+${agent.opsUrl}\\s+yes\\s+ok$`, "m"));
  expect(status.stdout).toMatch(/^ca\s+-\s+no\s+no ops URL configured$/m);
  expectCode(status, 1);
});

test("agent list, show, ban and delete", async () => {
  const list = await withCa("agent", "list");
  expectCode(list, 0);
  expect(list.stdout).toMatch(
    new RegExp(`^${agent.agentId}\\s+join_token\\s+[0-9a-f]+\\s+\\S+\\s+no$`, "m"),
  );

  const shown = json<{
    id: string;
    attestationType: string;
    banned: boolean;
    x509SvidSerial: string;
  }>(await withCa("--json", "agent", "show", agent.agentId));
  expect(shown).toEqual(like({ id: agent.agentId, attestationType: "join_token", banned: false }));
  const human = await withCa("agent", "show", agent.agentId);
  expect(human.stdout).toMatch(/^banned:\s+no$/m);

  const banned = await withCa("agent", "ban", agent.agentId);
  expectCode(banned, 0);
  expect(banned.stdout).toBe(`banned agent ${agent.agentId}\n`);
  const onlyBanned = json<{ agents: { id: string; banned: boolean }[] }>(
    await withCa("--json", "agent", "list", "--banned"),
  );
  expect(onlyBanned.agents).toEqual([like({ id: agent.agentId, banned: true })]);

  const deleted = await withCa("agent", "delete", agent.agentId);
  expectCode(deleted, 0);
  expect(json(await withCa("--json", "agent", "list"))).toEqual({ agents: [] });
  expectCode(await withCa("agent", "show", agent.agentId), 3);
});
