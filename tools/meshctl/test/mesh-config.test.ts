// `mesh-config` connection errors that need no server. The command itself is unit-tested in
// src/commands/mesh-config.test.ts (request building, JSON shape).
import { runCli } from "./cli-harness";

test("mesh-config – no proxy-config configured → exit 2 naming the flags", async () => {
  const r = await runCli(["mesh-config", "get"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("--proxy-config-socket");
});

test("mesh-config – a missing proxy-config socket → exit 4", async () => {
  const r = await runCli(["mesh-config", "get", "--proxy-config-socket", "/nowhere/pc.sock"]);
  expect(r.code).toBe(4);
  expect(r.stderr).toContain("/nowhere/pc.sock");
});

test("mesh-config set – bad values are usage errors before anything is sent", async () => {
  const flags = ["--proxy-config-socket", "/nowhere/pc.sock"];
  for (const args of [
    ["--mtls-mode", "sometimes"],
    ["--ca-ttl", "30 days"],
    ["--svid-ttl", "1y"],
    ["--ca-key-type", "dsa-1024"],
    ["--expected-generation", "-1"],
    [],
  ]) {
    const r = await runCli(["mesh-config", "set", ...flags, ...args]);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
  }
});
