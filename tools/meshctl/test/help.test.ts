// `--help` works for every command and subcommand (exit 0, usage line, exit codes).
import type { Command } from "commander";
import { buildProgram } from "../src/cli";
import { runCli } from "./cli-harness";

/** Every command path of the tree, e.g. ["entry", "create"]. */
function commandPaths(): string[][] {
  const io = { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: "/" };
  const program = buildProgram(io, { exitCode: 0, closers: [] });
  const out: string[][] = [];
  const walk = (cmd: Command, prefix: string[]): void => {
    for (const sub of cmd.commands) {
      const path = [...prefix, sub.name()];
      out.push(path);
      walk(sub, path);
    }
  };
  walk(program, []);
  return out;
}

const paths = commandPaths();

test("help – the tree has every command of the issue", () => {
  const names = paths.map((p) => p.join(" "));
  for (const expected of [
    "entry create",
    "entry list",
    "entry show",
    "entry update",
    "entry delete",
    "agent list",
    "agent show",
    "agent ban",
    "agent delete",
    "token create",
    "bundle show",
    "authority show",
    "authority prepare",
    "authority activate",
    "authority taint",
    "authority revoke",
    "mesh-config get",
    "mesh-config set",
    "svid fetch",
    "events tail",
    "status",
  ]) {
    expect(names).toContain(expected);
  }
});

test.each(paths.map((p) => [p.join(" ")]))("help – meshctl %s --help", async (path) => {
  const r = await runCli([...path.split(" "), "--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`^Usage: meshctl ${path}`));
  expect(r.stdout).toContain("Exit codes:");
  expect(r.stderr).toBe("");
});

test("help – `meshctl help entry` is the same as `meshctl entry --help`", async () => {
  const a = await runCli(["help", "entry"]);
  const b = await runCli(["entry", "--help"]);
  expect(a.code).toBe(0);
  expect(a.stdout).toBe(b.stdout);
});
