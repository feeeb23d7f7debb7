// meshctl against a real CA process (admin socket and mTLS), a real nats-server with JetStream
// (the CA publishes events) and its ops server: every CA command, --json shapes, bad input
// and exit codes. Most runs are in-process (run(argv, io)); process-level checks are in
// process.test.ts.
import { mkdir, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { generateKeyPair, createCsr, exportPkcs8Pem } from "@meshid/pki";
import { derToPem } from "@meshid/spiffe";
import {
  createTempDir,
  getFreePort,
  startMeshidCa,
  startNatsServer,
  type MeshidCaProcess,
  type NatsServer,
  type TempDir,
} from "@meshid/testkit";
import {
  anyString,
  containing,
  json,
  like,
  runCli,
  startCli,
  waitFor,
  type CliResult,
} from "./cli-harness";

// Real processes on a loaded machine: generous bounds (the root jest run ignores the preset's
// per-project testTimeout).
jest.setTimeout(120_000);

const TD = "example.org";
const AGENT_ID = `spiffe://${TD}/meshid/agent/join_token/fake-node`;

let nats: NatsServer;
let ca: MeshidCaProcess;
let dir: TempDir;
let opsPort: number;

/** Runs meshctl in the temp dir whose .meshid/meshctl.yaml points at the CA. */
const meshctl = (...argv: string[]): Promise<CliResult> => runCli(argv, { cwd: dir.path });

/** Asserts an exit code, showing the output when it differs. */
function expectCode(result: CliResult, code: number): void {
  if (result.code !== code) {
    throw new Error(
      `expected exit ${code}, got ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

/** No stack trace in what a user sees. */
function expectNoStack(result: CliResult): void {
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

interface EntryJson {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: string[];
  x509SvidTtlSeconds: number;
  dnsNames: string[];
  admin: boolean;
  revision: number;
}

async function createEntry(path: string, ...extra: string[]): Promise<EntryJson> {
  const r = await meshctl(
    "--json",
    "entry",
    "create",
    "--spiffe-id",
    `spiffe://${TD}${path}`,
    "--parent-id",
    AGENT_ID,
    "--selector",
    "unix:uid:1000",
    ...extra,
  );
  expectCode(r, 0);
  const body = json<{ results: { status: unknown; entry: EntryJson }[] }>(r);
  expect(body.results[0]?.status).toBeNull();
  return body.results[0]!.entry;
}

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
  opsPort = await getFreePort();
  ca = await startMeshidCa({
    natsUrl: nats.url,
    extraConfig: { ops: { listen: `127.0.0.1:${opsPort}` } },
  });
  dir = await createTempDir("meshctl-ca-");
  await mkdir(join(dir.path, ".meshid"), { mode: 0o700 });
  // Relative paths resolve against the context file's directory.
  await writeFile(
    join(dir.path, ".meshid", "meshctl.yaml"),
    [
      `trustDomain: ${TD}`,
      `ca: { adminSocket: ${relative(join(dir.path, ".meshid"), ca.adminSocketPath)} }`,
      `natsUrl: ${nats.url}`,
      `services: { ca: "http://127.0.0.1:${opsPort}" }`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
}, 90_000);

afterAll(async () => {
  await ca?.stop();
  await nats?.stop();
  await dir?.cleanup();
});

describe("entry", () => {
  test("entry create – stores the entry and prints it (human and --json)", async () => {
    const human = await meshctl(
      "entry",
      "create",
      "--spiffe-id",
      `spiffe://${TD}/ns/default/sa/web`,
      "--parent-id",
      AGENT_ID,
      "-s",
      "k8s:ns:default",
      "-s",
      "k8s:sa:web",
      "--ttl",
      "1h",
      "--dns",
      "web.default.svc",
    );
    expectCode(human, 0);
    expect(human.stdout).toMatch(
      new RegExp(`^created entry [0-9a-f-]{36} \\(spiffe://${TD}/ns/default/sa/web\\)\\n$`),
    );

    const e = await createEntry("/json-shape", "--dns", "a.svc", "--dns", "b.svc", "--admin");
    expect(e).toEqual(
      expect.objectContaining({
        spiffeId: `spiffe://${TD}/json-shape`,
        parentId: AGENT_ID,
        selectors: ["unix:uid:1000"],
        x509SvidTtlSeconds: 0,
        dnsNames: ["a.svc", "b.svc"],
        admin: true,
      }),
    );
    expect(e.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(e.revision).toBeGreaterThan(0);
  });

  test("entry create – bad selector, bad SPIFFE ID, bad TTL and missing flags are usage errors that change nothing", async () => {
    const before = json<{ entries: unknown[] }>(await meshctl("--json", "entry", "list")).entries
      .length;
    const cases: string[][] = [
      ["--spiffe-id", `spiffe://${TD}/x`, "--parent-id", AGENT_ID, "-s", "k8s:bogus-key:1"],
      ["--spiffe-id", `spiffe://${TD}/x`, "--parent-id", AGENT_ID, "-s", "no-colon"],
      ["--spiffe-id", "http://example.org/x", "--parent-id", AGENT_ID, "-s", "unix:uid:1"],
      ["--spiffe-id", `spiffe://${TD}/x`, "--parent-id", "spiffe://Bad Domain", "-s", "unix:uid:1"],
      [
        "--spiffe-id",
        `spiffe://${TD}/x`,
        "--parent-id",
        AGENT_ID,
        "-s",
        "unix:uid:1",
        "--ttl",
        "1y",
      ],
      ["--spiffe-id", `spiffe://${TD}/x`, "--parent-id", AGENT_ID],
      ["--parent-id", AGENT_ID, "-s", "unix:uid:1"],
    ];
    for (const args of cases) {
      const r = await meshctl("entry", "create", ...args);
      expectCode(r, 2);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stdout).toBe("");
      expectNoStack(r);
    }
    const selector = await meshctl(
      "entry",
      "create",
      "--spiffe-id",
      `spiffe://${TD}/x`,
      "--parent-id",
      AGENT_ID,
      "-s",
      "k8s:bogus-key:1",
    );
    expect(selector.stderr).toContain("k8s:bogus-key:1");
    const after = json<{ entries: unknown[] }>(await meshctl("--json", "entry", "list")).entries
      .length;
    expect(after).toBe(before);
  });

  test("entry create – a refused item (duplicate) is shown per item and exits 1", async () => {
    await createEntry("/dup");
    const r = await meshctl(
      "entry",
      "create",
      "--spiffe-id",
      `spiffe://${TD}/dup`,
      "--parent-id",
      AGENT_ID,
      "-s",
      "unix:uid:1000",
    );
    expectCode(r, 1);
    expect(r.stderr).toMatch(/^error: spiffe:\/\/example\.org\/dup: .+ \(ALREADY_EXISTS\)\n$/);
    const j = await meshctl(
      "--json",
      "entry",
      "create",
      "--spiffe-id",
      `spiffe://${TD}/dup`,
      "--parent-id",
      AGENT_ID,
      "-s",
      "unix:uid:1000",
    );
    expectCode(j, 1);
    expect(json(j)).toEqual({
      results: [
        {
          status: {
            code: "ALREADY_EXISTS",
            message: anyString,
            errorCode: anyString,
          },
          entry: null,
        },
      ],
    });
  });

  test("entry create --file – one batch; each item's outcome is shown; one refused → exit 1", async () => {
    await createEntry("/file-dup");
    const file = join(dir.path, "entries.yaml");
    await writeFile(
      file,
      [
        `- { spiffeId: "spiffe://${TD}/file-a", parentId: "${AGENT_ID}", selectors: [unix:uid:1], ttl: 2h }`,
        `- { spiffeId: "spiffe://${TD}/file-dup", parentId: "${AGENT_ID}", selectors: [unix:uid:1000] }`,
        `- { spiffeId: "spiffe://${TD}/file-b", parentId: "${AGENT_ID}", selectors: [unix:uid:2], dnsNames: [b.svc] }`,
      ].join("\n"),
    );
    const r = await meshctl("entry", "create", "--file", file);
    expectCode(r, 1);
    expect(r.stdout).toMatch(
      new RegExp(
        `^created entry \\S+ \\(spiffe://${TD}/file-a\\)\\ncreated entry \\S+ \\(spiffe://${TD}/file-b\\)\\n$`,
      ),
    );
    expect(r.stderr).toMatch(
      new RegExp(`^error: spiffe://${TD}/file-dup: .+ \\(ALREADY_EXISTS\\)\\n$`),
    );

    const bad = join(dir.path, "bad-entries.yaml");
    await writeFile(
      bad,
      [
        `- { spiffeId: "spiffe://${TD}/file-c", parentId: "${AGENT_ID}", selectors: [unix:uid:1] }`,
        `- { spiffeId: "spiffe://${TD}/file-d", parentId: "${AGENT_ID}", selectors: [k8s:nonsense:1] }`,
      ].join("\n"),
    );
    const refused = await meshctl("entry", "create", "-f", bad);
    expectCode(refused, 2);
    expect(refused.stderr).toContain("entries[1].selectors");
    // Nothing of a bad file is created.
    expect(
      json(await meshctl("--json", "entry", "list", "--spiffe-id", `spiffe://${TD}/file-c`)),
    ).toEqual({
      entries: [],
    });
    expectCode(await meshctl("entry", "create", "-f", bad, "--ttl", "1h"), 2);
  });

  test("entry list – table, --json and filters", async () => {
    const e = await createEntry("/listed", "-s", "unix:gid:50");
    const table = await meshctl("entry", "list");
    expectCode(table, 0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+SPIFFE ID\s+PARENT ID\s+SELECTORS\s+TTL\s+DNS NAMES$/);
    expect(table.stdout).toContain(e.id);

    const bySpiffe = json<{ entries: EntryJson[] }>(
      await meshctl("--json", "entry", "list", "--spiffe-id", `spiffe://${TD}/listed`),
    );
    expect(bySpiffe.entries.map((x) => x.id)).toEqual([e.id]);

    const bySelectors = json<{ entries: EntryJson[] }>(
      await meshctl("--json", "entry", "list", "-s", "unix:uid:1000", "-s", "unix:gid:50"),
    );
    expect(bySelectors.entries.map((x) => x.id)).toEqual([e.id]);

    const limited = json<{ entries: EntryJson[] }>(
      await meshctl("--json", "entry", "list", "--limit", "1"),
    );
    expect(limited.entries).toHaveLength(1);

    const bad = await meshctl("entry", "list", "--match", "fuzzy");
    expectCode(bad, 2);
  });

  test("entry show – details, --json, and unknown id → exit 3", async () => {
    const e = await createEntry("/shown", "--ttl", "90m", "--hint", "primary");
    const human = await meshctl("entry", "show", e.id);
    expectCode(human, 0);
    expect(human.stdout).toMatch(/^id:\s+[0-9a-f-]{36}$/m);
    expect(human.stdout).toMatch(/^ttl:\s+1h30m$/m);
    expect(human.stdout).toMatch(/^hint:\s+primary$/m);
    expect(json<EntryJson>(await meshctl("--json", "entry", "show", e.id))).toEqual(
      expect.objectContaining({ id: e.id, x509SvidTtlSeconds: 5400 }),
    );

    const notAnId = await meshctl("entry", "show", "web");
    expectCode(notAnId, 2);
    expect(notAnId.stderr).toContain('"web" is not an entry id');
    const missing = await meshctl("entry", "show", "00000000-0000-4000-8000-000000000000");
    expectCode(missing, 3);
    expect(missing.stderr).toMatch(/^error: .+ \(NOT_FOUND\)\n$/);
    expectNoStack(missing);
  });

  test("entry update – changes only the given fields; unknown id → exit 3", async () => {
    const e = await createEntry("/updated", "--dns", "old.svc");
    const r = await meshctl(
      "--json",
      "entry",
      "update",
      e.id,
      "--ttl",
      "2h",
      "--dns",
      "new.svc",
      "-s",
      "unix:uid:2000",
    );
    expectCode(r, 0);
    const updated = json<{ results: { entry: EntryJson }[] }>(r).results[0]!.entry;
    expect(updated).toEqual(
      expect.objectContaining({
        id: e.id,
        spiffeId: e.spiffeId,
        parentId: e.parentId,
        x509SvidTtlSeconds: 7200,
        dnsNames: ["new.svc"],
        selectors: ["unix:uid:2000"],
      }),
    );
    const human = await meshctl("entry", "update", e.id, "--hint", "h");
    expectCode(human, 0);
    expect(human.stdout).toBe(`updated entry ${e.id} (${e.spiffeId})\n`);

    const bad = await meshctl("entry", "update", e.id, "-s", "k8s:nope:1");
    expectCode(bad, 2);
    const missing = await meshctl(
      "entry",
      "update",
      "00000000-0000-4000-8000-000000000000",
      "--ttl",
      "1h",
    );
    expectCode(missing, 3);
  });

  test("entry delete – deletes; deleting again is NOT_FOUND per item → exit 3; mixed → exit 1", async () => {
    const a = await createEntry("/del-a");
    const b = await createEntry("/del-b");
    const r = await meshctl("entry", "delete", a.id);
    expectCode(r, 0);
    expect(r.stdout).toBe(`deleted entry ${a.id}\n`);

    const again = await meshctl("--json", "entry", "delete", a.id);
    expectCode(again, 3);
    expect(json(again)).toEqual({
      results: [{ id: a.id, status: like({ code: "NOT_FOUND" }) }],
    });

    const mixed = await meshctl("entry", "delete", b.id, a.id);
    expectCode(mixed, 3);
    expect(mixed.stdout).toBe(`deleted entry ${b.id}\n`);
    expect(mixed.stderr).toContain(`error: ${a.id}: `);
  });
});

describe("agent and token", () => {
  test("agent list – empty table and --json; show/ban of an unknown agent → exit 3", async () => {
    const table = await meshctl("agent", "list");
    expectCode(table, 0);
    expect(table.stdout.split("\n")[0]).toMatch(/^SPIFFE ID\s+ATTESTATION\s+SVID SERIAL/);
    expect(json(await meshctl("--json", "agent", "list", "--banned"))).toEqual({ agents: [] });

    for (const cmd of ["show", "ban", "delete"]) {
      const r = await meshctl("agent", cmd, `spiffe://${TD}/meshid/agent/join_token/nobody`);
      expectCode(r, 3);
      expectNoStack(r);
    }
    const bad = await meshctl("agent", "ban", "not-a-spiffe-id");
    expectCode(bad, 2);
  });

  test("token create – prints a token; --json has its expiry; bad --ttl → exit 2", async () => {
    const human = await meshctl("token", "create", "--ttl", "5m");
    expectCode(human, 0);
    expect(human.stdout).toMatch(/^\S{16,}\n$/);
    expect(human.stderr).toMatch(/^expires \d{4}-/);
    const j = json<{ token: string; expiresAt: string }>(
      await meshctl("--json", "token", "create", "--token", "meshctl-test-token-1"),
    );
    expect(j.token).toBe("meshctl-test-token-1");
    const expires = new Date(j.expiresAt).getTime();
    expect(expires).toBeGreaterThan(Date.now());
    expectCode(await meshctl("token", "create", "--ttl", "soon"), 2);
  });
});

describe("bundle and authority", () => {
  test("bundle show – PEM by default, JWKS with --format jwks, --json summary", async () => {
    const pem = await meshctl("bundle", "show");
    expectCode(pem, 0);
    expect(pem.stdout).toBe(await ca.bundlePem());
    const jwks = await meshctl("bundle", "show", "--format", "jwks");
    expect(JSON.parse(jwks.stdout)).toHaveProperty("keys");
    const j = json<{ trustDomain: string; x509Authorities: unknown[]; pem: string }>(
      await meshctl("--json", "bundle", "show"),
    );
    expect(j.trustDomain).toBe(TD);
    expect(j.x509Authorities.length).toBeGreaterThanOrEqual(1);
    expect(j.pem).toContain("BEGIN CERTIFICATE");
    expectCode(await meshctl("bundle", "show", "--format", "der"), 2);
  });

  test("authority – show, prepare, activate, taint, revoke (forced rotation)", async () => {
    type State = {
      active: { authorityId: string; state: string } | null;
      prepared: { authorityId: string } | null;
      old: { authorityId: string; tainted: boolean }[];
    };
    const before = json<State>(await meshctl("--json", "authority", "show"));
    expect(before.active?.state).toBe("active");
    const table = await meshctl("authority", "show");
    expect(table.stdout.split("\n")[0]).toMatch(/^AUTHORITY ID\s+STATE\s+KEY TYPE/);

    const prepared = json<{ authorityId: string; state: string }>(
      await meshctl("--json", "authority", "prepare"),
    );
    expect(prepared.state).toBe("prepared");

    const activated = await meshctl("authority", "activate");
    expectCode(activated, 0);
    expect(activated.stdout).toBe(`activated authority ${prepared.authorityId} (active)\n`);

    const after = json<State>(await meshctl("--json", "authority", "show"));
    expect(after.active?.authorityId).toBe(prepared.authorityId);
    const oldId = before.active!.authorityId;
    expect(after.old.map((o) => o.authorityId)).toContain(oldId);

    // Revoking the active one, or an untainted old one, is refused (exit 1).
    const refused = await meshctl("authority", "revoke", prepared.authorityId);
    expectCode(refused, 1);
    expect(refused.stderr).toMatch(/^error: .+ \([A-Z_]+\)\n$/);

    const tainted = json<{ tainted: boolean }>(
      await meshctl("--json", "authority", "taint", oldId),
    );
    expect(tainted.tainted).toBe(true);
    const revoked = await meshctl("authority", "revoke", oldId);
    expectCode(revoked, 0);
    expect(revoked.stdout).toContain(`revoked authority ${oldId}`);

    expectCode(await meshctl("authority", "taint", "not-hex!"), 2);
    expectCode(await meshctl("authority", "taint", "ab".repeat(20)), 3);
    const nonePrepared = await meshctl("authority", "activate");
    expectCode(nonePrepared, 1);
    expect(nonePrepared.stderr).toContain("authority prepare");
  });
});

describe("events tail", () => {
  test("events tail – live events of one kind, --json prints the CloudEvent per line", async () => {
    const controller = new AbortController();
    const tail = startCli(["--json", "events", "tail", "entry", "--count", "2"], {
      cwd: dir.path,
      signal: controller.signal,
    });
    try {
      await waitFor(
        () => tail.stderr().includes("listening on meshid.v1.entry.>"),
        "the tail to listen",
      );
      const e = await createEntry("/tailed");
      expectCode(await meshctl("entry", "delete", e.id), 0);
      const result = await tail.done;
      expectCode(result, 0);
      const lines = result.stdout
        .trimEnd()
        .split("\n")
        .map(
          (l) =>
            JSON.parse(l) as {
              subject: string;
              headers: Record<string, string>;
              data: Record<string, unknown>;
            },
        );
      expect(lines.map((l) => l.subject)).toEqual([
        "meshid.v1.entry.created",
        "meshid.v1.entry.deleted",
      ]);
      expect(lines[0]!.headers).toEqual(
        expect.objectContaining({
          "ce-specversion": "1.0",
          "ce-type": "io.meshid.entry.created.v1",
          "ce-id": anyString,
        }),
      );
      expect(JSON.stringify(lines[0]!.data)).toContain(e.id);
    } finally {
      controller.abort();
      await tail.done;
    }
  });

  test("events tail --since – replays from JetStream (human and --json)", async () => {
    const t0 = new Date();
    const e = await createEntry("/replayed");
    const since = t0.toISOString();
    const r = await meshctl("events", "tail", "entry.created", "--since", since, "--count", "1");
    expectCode(r, 0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z  entry\\.created\\s+${e.id}  ` +
          `entryId=${e.id} spiffeId=spiffe://${TD}/replayed parentId=${AGENT_ID} revision=\\d+\\n$`,
      ),
    );
    expect(r.stderr).toContain("replaying meshid.v1.entry.created");
    const j = await meshctl("--json", "events", "tail", "entry", "--since", since, "--count", "1");
    expectCode(j, 0);
    const line = JSON.parse(j.stdout) as { subject: string; streamSequence: number; data: unknown };
    expect(line.subject).toBe("meshid.v1.entry.created");
    expect(line.streamSequence).toBeGreaterThan(0);
    expect(JSON.stringify(line.data)).toContain(e.id);
  });

  test("events tail – unknown kind or type and bad --since → exit 2; no stream → exit 3; no NATS → exit 4", async () => {
    expectCode(await meshctl("events", "tail", "nonsense"), 2);
    expectCode(await meshctl("events", "tail", "entry.exploded"), 2);
    expectCode(await meshctl("events", "tail", "--since", "yesterday"), 2);
    // A NATS server without the MESHID_EVENTS stream: nothing to replay → exit 3.
    const bare = await startNatsServer({ jetstream: true });
    try {
      const noStream = await meshctl("events", "tail", "--nats", bare.url, "--since", "1m");
      expectCode(noStream, 3);
      expect(noStream.stderr).toContain("MESHID_EVENTS");
    } finally {
      await bare.stop();
    }
    const port = await getFreePort();
    const r = await meshctl(
      "events",
      "tail",
      "--nats",
      `nats://127.0.0.1:${port}`,
      "--timeout",
      "3s",
    );
    expectCode(r, 4);
    expect(r.stderr).toContain(`nats://127.0.0.1:${port}`);
    expectNoStack(r);
  });
});

describe("status", () => {
  test("status – the CA's ops endpoints are ready; an unreachable service makes it exit 1", async () => {
    const ok = await meshctl("status");
    expectCode(ok, 0);
    expect(ok.stdout).toMatch(/^SERVICE\s+URL\s+READY\s+DETAILS\n/);
    expect(ok.stdout).toMatch(
      new RegExp(`^ca\\s+http://127\\.0\\.0\\.1:${opsPort}\\s+yes\\s+ok$`, "m"),
    );

    const deadPort = await getFreePort();
    const bad = await meshctl(
      "--json",
      "status",
      "--service",
      `ca=http://127.0.0.1:${opsPort}`,
      "--service",
      `gone=http://127.0.0.1:${deadPort}`,
    );
    expectCode(bad, 1);
    expect(json(bad)).toEqual({
      ready: false,
      services: [
        expect.objectContaining({ service: "ca", ready: true, healthy: true, details: "ok" }),
        expect.objectContaining({
          service: "gone",
          ready: false,
          healthy: false,
          details: containing("unreachable"),
        }),
      ],
    });

    // A service without an ops URL is shown as not ready; the rest of the context still works.
    const partial = join(dir.path, "partial.yaml");
    await writeFile(partial, `services: { ca: "http://127.0.0.1:${opsPort}", sidecar: "" }\n`);
    const missing = await meshctl("--context", partial, "status");
    expectCode(missing, 1);
    expect(missing.stdout).toMatch(/^sidecar\s+-\s+no\s+no ops URL configured$/m);
  });
});

describe("connections", () => {
  test("a missing admin socket → exit 4 naming the socket and hinting npm start / --ca-socket", async () => {
    const r = await runCli(["entry", "list", "--ca-socket", "/nonexistent/admin.sock"]);
    expectCode(r, 4);
    expect(r.stderr).toContain("/nonexistent/admin.sock");
    expect(r.stderr).toContain("npm start");
    expect(r.stderr).toContain("--ca-socket");
    expectNoStack(r);
  });

  test("no context and no flags → usage error naming the flags", async () => {
    const r = await runCli(["entry", "list"], { cwd: "/" });
    expectCode(r, 2);
    expect(r.stderr).toContain("--ca-socket");
  });

  test("context file – named file missing or with unknown keys → exit 2", async () => {
    expectCode(await runCli(["--context", "/nonexistent.yaml", "entry", "list"]), 2);
    const badFile = join(dir.path, "bad.yaml");
    await writeFile(badFile, "ca: { adminSocket: x }\nnonsense: 1\n");
    const bad = await runCli(["entry", "list"], { env: { MESHCTL_CONTEXT: badFile } });
    expectCode(bad, 2);
    expect(bad.stderr).toContain("nonsense");
  });

  test("mTLS with an admin SVID from files works; a non-admin SVID → exit 5", async () => {
    const admin = ca.admin();
    const files = async (name: string, id: string): Promise<string[]> => {
      const keys = await generateKeyPair("ec-p256");
      const csr = await createCsr({ privateKey: keys.privateKey, publicKey: keys.publicKey });
      const minted = await admin.svids.mintX509SVID({
        csr: Buffer.from(csr),
        spiffeId: { trustDomain: TD, path: id },
        dnsNames: [],
        ttlSeconds: 600,
      });
      const cert = join(dir.path, `${name}.pem`);
      const key = join(dir.path, `${name}.key`);
      await writeFile(cert, minted.svid!.certChain.map((d) => derToPem("CERTIFICATE", d)).join(""));
      await writeFile(key, exportPkcs8Pem(keys.privateKey), { mode: 0o600 });
      // The authority test rotated the CA: take today's bundle, not the one from start.
      const bundle = join(dir.path, "bundle.pem");
      await writeFile(bundle, await ca.bundlePem());
      return ["--cert", cert, "--key", key, "--bundle", bundle];
    };
    // An admin entry makes its SPIFFE ID an admin of the CA.
    await createEntry("/meshctl-admin", "--admin");
    const adminFlags = await files("admin", "/meshctl-admin");
    const ok = await runCli(
      ["--json", "--ca-address", ca.address, ...adminFlags, "entry", "list", "--limit", "1"],
      {
        env: {},
      },
    );
    expectCode(ok, 0);
    const otherFlags = await files("other", "/not-an-admin");
    const denied = await runCli(["--ca-address", ca.address, ...otherFlags, "entry", "list"]);
    expectCode(denied, 5);
    expect(denied.stderr).toMatch(/\((PERMISSION_DENIED|UNAUTHENTICATED)\)\n$/);
  });
});
