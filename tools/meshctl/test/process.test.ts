// meshctl as a real child process (node dist/main.js): exit codes, messages without stack
// traces for user mistakes, MESHCTL_DEBUG, help and version. Needs a build of meshctl.
import { spawn } from "node:child_process";
import {
  startMeshidCa,
  startNatsServer,
  type MeshidCaProcess,
  type NatsServer,
} from "@meshid/testkit";
import { MESHCTL_MAIN, runCliProcess, waitFor, type CliResult } from "./cli-harness";

// Real processes on a loaded machine: generous bounds (the root jest run ignores the preset's
// per-project testTimeout).
jest.setTimeout(120_000);

let ca: MeshidCaProcess;
let nats: NatsServer;

const STACK_LINE = /\n\s+at /;

function expectCode(result: CliResult, code: number): void {
  if (result.code !== code) {
    throw new Error(
      `expected exit ${code}, got ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
}

beforeAll(async () => {
  nats = await startNatsServer({ jetstream: true });
  ca = await startMeshidCa({ natsUrl: nats.url });
}, 60_000);

afterAll(async () => {
  await ca?.stop();
  await nats?.stop();
});

test("process – --help and --version exit 0; help lists the exit codes", async () => {
  const help = await runCliProcess(["--help"]);
  expectCode(help, 0);
  expect(help.stdout).toMatch(/^Usage: meshctl \[options\] \[command\]/);
  expect(help.stdout).toContain("Exit codes:\n  0  ok");
  expect(help.stdout).toContain("  4  cannot connect");
  const version = await runCliProcess(["--version"]);
  expectCode(version, 0);
  expect(version.stdout).toBe("0.1.0\n");
});

test("process – unknown flag, unknown command and a bare group are usage errors (exit 2)", async () => {
  const flag = await runCliProcess(["entry", "list", "--bogus"]);
  expectCode(flag, 2);
  expect(flag.stderr).toContain("unknown option '--bogus'");
  const command = await runCliProcess(["frobnicate"]);
  expectCode(command, 2);
  expect(command.stderr).toContain("unknown command 'frobnicate'");
  const group = await runCliProcess(["entry"]);
  expectCode(group, 2);
  expect(group.stderr).toContain("Usage: meshctl entry");
  for (const r of [flag, command, group]) expect(r.stderr).not.toMatch(STACK_LINE);
});

test("process – bad selector → exit 2 with the reason and no stack trace", async () => {
  const r = await runCliProcess([
    "--ca-socket",
    ca.adminSocketPath,
    "entry",
    "create",
    "--spiffe-id",
    "spiffe://example.org/x",
    "--parent-id",
    "spiffe://example.org/agent",
    "--selector",
    "unix:uid:minus-one",
  ]);
  expectCode(r, 2);
  expect(r.stderr).toMatch(/^error: invalid selector "unix:uid:minus-one"/);
  expect(r.stderr).not.toMatch(STACK_LINE);
});

test("process – unknown entry → exit 3 with the gRPC status; real entry round trip → exit 0", async () => {
  const missing = await runCliProcess([
    "--ca-socket",
    ca.adminSocketPath,
    "entry",
    "show",
    "00000000-0000-4000-8000-000000000000",
  ]);
  expectCode(missing, 3);
  expect(missing.stderr).toMatch(/^error: .+ \(NOT_FOUND\)\n$/);

  const list = await runCliProcess(["--json", "entry", "list"], {
    env: { MESHCTL_CA_SOCKET: ca.adminSocketPath },
  });
  expectCode(list, 0);
  expect(JSON.parse(list.stdout)).toEqual({ entries: [] });
});

test("process – unreachable socket → exit 4 naming it; MESHCTL_DEBUG=1 adds the stack", async () => {
  const r = await runCliProcess(["--ca-socket", "/run/nowhere/admin.sock", "bundle", "show"]);
  expectCode(r, 4);
  expect(r.stderr).toContain("/run/nowhere/admin.sock");
  expect(r.stderr).toContain("npm start");
  expect(r.stderr).not.toMatch(STACK_LINE);
  const debug = await runCliProcess(["--ca-socket", "/run/nowhere/admin.sock", "bundle", "show"], {
    env: { MESHCTL_DEBUG: "1" },
  });
  expectCode(debug, 4);
  expect(debug.stderr).toMatch(STACK_LINE);
});

test("process – events tail follows until Ctrl-C (SIGINT), then exits 0", async () => {
  const child = spawn(process.execPath, [MESHCTL_MAIN, "events", "tail", "--nats", nats.url], {
    cwd: "/",
    env: { PATH: process.env.PATH ?? "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  try {
    await waitFor(() => stderr.includes("listening on meshid.v1.>"), "the tail to listen");
    const token = await runCliProcess(["--ca-socket", ca.adminSocketPath, "authority", "prepare"]);
    expectCode(token, 0);
    await waitFor(() => stdout.includes("authority.prepared"), "the authority.prepared event");
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).not.toMatch(STACK_LINE);
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
    await exited;
  }
});
