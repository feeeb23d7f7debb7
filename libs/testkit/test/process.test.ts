import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";

import { isMeshidError } from "@meshid/errors";

import {
  isProcessAlive,
  listManagedProcesses,
  listProcessTree,
  requireBinary,
  runCommand,
  spawnManaged,
  stopProcess,
  waitForPort,
} from "../src/process";

// Real child processes (node, sh); each test stops what it starts.

const node = process.execPath;

describe("requireBinary", () => {
  it("process – finds a binary on PATH or in the sbin directories", () => {
    expect(requireBinary("sh", "dash")).toMatch(/\/sh$/);
  });

  it("process – names the Debian package when the binary is missing", () => {
    let caught: unknown;
    try {
      requireBinary("meshid-no-such-binary", "meshid-pkg");
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "testkit.binary.missing")).toBe(true);
    expect((caught as Error).message).toBe(
      "meshid-no-such-binary not found; install the Debian package meshid-pkg (run .ci/run as root to install it automatically)",
    );
  });
});

describe("spawnManaged", () => {
  it("process – captures output, waits for a line and stops with SIGTERM", async () => {
    const child = await spawnManaged(node, [
      "-e",
      'console.log("hello"); console.error("ready on stderr"); setInterval(() => {}, 1000);',
    ]);
    expect(listManagedProcesses()).toContain(child);
    const match = await child.waitForOutput(/ready on (\w+)/);
    expect(match[1]).toBe("stderr");
    expect(child.output()).toContain("hello\n");

    expect(await child.stop()).toEqual({ code: null, signal: "SIGTERM" });
    expect(listManagedProcesses()).not.toContain(child);
    expect(isProcessAlive(child.pid)).toBe(false);
  });

  it("process – keeps only the tail of the output", async () => {
    const child = await spawnManaged(
      node,
      ["-e", 'process.stdout.write("x".repeat(5000) + "END")'],
      {
        outputLimitChars: 100,
      },
    );
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.output()).toHaveLength(100);
    expect(child.output().endsWith("END")).toBe(true);
  });

  it("process – waitForOutput fails with the output when the process exits first", async () => {
    const child = await spawnManaged(node, ["-e", 'console.error("boom"); process.exit(3)'], {
      name: "crasher",
    });
    let caught: unknown;
    try {
      await child.waitForOutput(/never printed/);
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "testkit.process.exited")).toBe(true);
    expect((caught as Error).message).toMatch(/crasher .*exited with code 3/);
    expect((caught as Error).message).toContain("boom");
  });

  it("process – waitForOutput honours an AbortSignal", async () => {
    const child = await spawnManaged(node, ["-e", "setInterval(() => {}, 1000)"]);
    try {
      const controller = new AbortController();
      const waiting = child.waitForOutput(/never/, { signal: controller.signal });
      controller.abort(new Error("test aborted"));
      await expect(waiting).rejects.toThrow("test aborted");
    } finally {
      await child.stop();
    }
  });

  it("process – reports a command that cannot be started", async () => {
    await expect(spawnManaged("/nonexistent/meshid-binary", [])).rejects.toMatchObject({
      code: "testkit.process.spawn_failed",
    });
  });

  it("process – runs the command as another user via setpriv when root", async () => {
    if (process.getuid!() !== 0) {
      throw new Error("this test needs root (CI runs as root): only root can switch users");
    }
    const child = await spawnManaged("id", ["-u", "-n"], { runAs: "nobody", cwd: "/" });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(child.output().trim()).toBe("nobody");
  });
});

describe("stopProcess", () => {
  it("process – escalates to SIGKILL for the whole process group when SIGTERM is ignored", async () => {
    // A shell that ignores TERM and has a grandchild that ignores it too.
    const child = await spawnManaged("sh", [
      "-c",
      "trap '' TERM; sh -c \"trap '' TERM; echo grandchild \\$\\$; while :; do sleep 1; done\" & wait",
    ]);
    const [, grandchildPid] = await child.waitForOutput(/grandchild (\d+)/);
    const exit = await stopProcess(child, { timeoutMs: 200 });
    expect(exit).toEqual({ code: null, signal: "SIGKILL" });
    // The grandchild got SIGKILL with its process group; poll until the kernel has reaped it.
    const pid = Number(grandchildPid);
    while ((await listProcessTree(pid)).length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(isProcessAlive(child.pid)).toBe(false);
  });

  it("process – is a no-op for a process that already exited", async () => {
    const child = await spawnManaged(node, ["-e", ""]);
    await child.exited;
    expect(await stopProcess(child)).toEqual({ code: 0, signal: null });
  });
});

describe("orphan protection", () => {
  // A separate Node process loads process.ts (compiled on the fly with swc), starts a managed
  // `sleep`, prints its pid and then dies by SIGKILL — as a crashing jest worker would. The
  // kernel (setpriv --pdeathsig) must take the sleep down with it.
  const script = `
const fs = require("node:fs");
const Module = require("node:module");
const swc = require("@swc/core");
require.extensions[".ts"] = (m, filename) => {
  const { code } = swc.transformSync(fs.readFileSync(filename, "utf8"), {
    filename,
    jsc: { parser: { syntax: "typescript" }, target: "es2022" },
    module: { type: "commonjs" },
  });
  m._compile(code, filename);
};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const mapped = request.startsWith("@meshid/")
    ? ${JSON.stringify(join(__dirname, "..", ".."))} + "/" + request.slice(8) + "/src/index.ts"
    : request;
  return resolve.call(this, mapped, ...rest);
};
const { spawnManaged } = require(${JSON.stringify(join(__dirname, "..", "src", "process.ts"))});
spawnManaged("sleep", ["1000"]).then((child) => {
  console.log("managed " + child.pid);
  process.kill(process.pid, "SIGKILL");
});
`;

  it("process – managed processes die when the Node process that started them is killed", async () => {
    const parent = await spawnManaged(node, ["-e", script], { name: "crashing-parent" });
    const [, sleepPid] = await parent.waitForOutput(/managed (\d+)/);
    expect(await parent.exited).toEqual({ code: null, signal: "SIGKILL" });
    const pid = Number(sleepPid);
    // No timing assumption: poll until the kernel has delivered the parent-death signal (the
    // jest timeout fails the test if it never happens).
    while (isProcessAlive(pid) && !(await isZombie(pid))) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
});

/** An orphan reparented to a non-reaping init stays a zombie; dead all the same. */
async function isZombie(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return true;
  }
}

describe("waitForPort", () => {
  it("process – resolves once something listens on the port", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no address");
    try {
      await expect(waitForPort(address.port)).resolves.toBeUndefined();
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("process – fails with the output when the server process exits before listening", async () => {
    const child = await spawnManaged(node, ["-e", 'console.error("no config"); process.exit(1)']);
    await child.exited;
    await expect(waitForPort(1, { process: child })).rejects.toMatchObject({
      code: "testkit.process.exited",
      message: expect.stringContaining("no config") as unknown,
    });
  });
});

describe("runCommand", () => {
  it("process – returns the exit code and output without throwing", async () => {
    expect(await runCommand("sh", ["-c", "echo out; echo err >&2; exit 4"])).toEqual({
      code: 4,
      stdout: "out\n",
      stderr: "err\n",
    });
  });
});
