import { EventEmitter } from "node:events";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createMemoryLogger } from "./memory-logger";
import {
  readPackageVersion,
  runServiceProcess,
  type RunServiceProcessParams,
  type RunningService,
} from "./run-service-process";

const CONFIG_ERROR = 78;
const FAILURE = 1;

/** A `process` stand-in: signals are emitted on it, `exit` and `stderr` are recorded. */
function fakeProcess(): EventEmitter & {
  exit: jest.Mock<void, [number]>;
  stderr: { write: jest.Mock<boolean, [string]>; text(): string };
} {
  const writes: string[] = [];
  return Object.assign(new EventEmitter(), {
    exit: jest.fn<void, [number]>(),
    stderr: {
      write: jest.fn((text: string) => writes.push(text) > 0),
      text: () => writes.join(""),
    },
  });
}

function fakeService(): RunningService & { stop: jest.Mock<Promise<void>, []> } {
  return { ready: () => true, stop: jest.fn(() => Promise.resolve()) };
}

function params<S extends RunningService, O extends string = never>(
  proc: ReturnType<typeof fakeProcess>,
  overrides: Partial<RunServiceProcessParams<S, O>> &
    Pick<RunServiceProcessParams<S, O>, "start" | "logger">,
): RunServiceProcessParams<S, O> {
  return {
    name: "svc",
    serviceName: "meshid-test",
    env: {},
    ops: { host: "127.0.0.1", port: 0 },
    process: proc,
    shutdownTimeoutMs: 30_000,
    exitCodes: { configError: CONFIG_ERROR, failure: FAILURE },
    onStarted: () => undefined,
    ...overrides,
  };
}

/** Waits until `predicate` holds (the lifecycle starts real telemetry and a real ops server). */
async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("runServiceProcess", () => {
  it("lifecycle – starts, serves /readyz, stops gracefully on SIGTERM and resolves 0", async () => {
    const proc = fakeProcess();
    const { logger, entries } = createMemoryLogger();
    const service = fakeService();
    let opsUrl = "";
    const code = runServiceProcess(
      params(proc, {
        logger,
        start: () => Promise.resolve(service),
        onStarted: (_s, url) => {
          opsUrl = url;
        },
      }),
    );
    await until(() => opsUrl !== "");
    expect((await fetch(`${opsUrl.replace(/\/$/, "")}/readyz`)).status).toBe(200);
    proc.emit("SIGTERM", "SIGTERM");
    await expect(code).resolves.toBe(0);
    expect(service.stop).toHaveBeenCalledTimes(1);
    expect(proc.exit).not.toHaveBeenCalled();
    const messages = entries().map((e) => e.msg);
    expect(messages).toEqual(
      expect.arrayContaining(["ops server listening", "signal received: stopping", "svc stopped"]),
    );
  });

  it("signals – a second signal exits at once with 128+n", async () => {
    const proc = fakeProcess();
    const { logger, entries } = createMemoryLogger();
    let release: (() => void) | undefined;
    const service = { ready: () => true, stop: () => new Promise<void>((r) => (release = r)) };
    let started = false;
    const code = runServiceProcess(
      params(proc, {
        logger,
        start: () => Promise.resolve(service),
        onStarted: () => {
          started = true;
        },
      }),
    );
    await until(() => started);
    proc.emit("SIGTERM", "SIGTERM");
    await until(() => release !== undefined);
    proc.emit("SIGINT", "SIGINT");
    expect(proc.exit).toHaveBeenCalledWith(130);
    expect(entries().map((e) => e.msg)).toContain("second signal: exiting now");
    release?.();
    await expect(code).resolves.toBe(0);
  });

  it("start-up – a failed start is logged and resolves the failure exit code", async () => {
    const proc = fakeProcess();
    const { logger, entries } = createMemoryLogger();
    const code = await runServiceProcess(
      params(proc, { logger, start: () => Promise.reject(new Error("port in use")) }),
    );
    expect(code).toBe(FAILURE);
    expect(entries().map((e) => e.msg)).toContain("svc start-up failed: port in use");
  });

  it("start-up – an unsupported telemetry exporter resolves the config error exit code", async () => {
    const proc = fakeProcess();
    const { logger } = createMemoryLogger();
    const start = jest.fn(() => Promise.resolve(fakeService()));
    const code = await runServiceProcess(
      params(proc, { logger, env: { OTEL_TRACES_EXPORTER: "jaeger" }, start }),
    );
    expect(code).toBe(CONFIG_ERROR);
    expect(start).not.toHaveBeenCalled();
    expect(proc.stderr.text()).toMatch(/^invalid telemetry configuration: /);
  });

  it("done – the service ending by itself stops the process with the code from exitCodeFor", async () => {
    const proc = fakeProcess();
    const { logger } = createMemoryLogger();
    const service = fakeService();
    const code = await runServiceProcess<RunningService, "stopped" | "banned">(
      params(proc, {
        logger,
        start: () => Promise.resolve(service),
        done: () => Promise.resolve("banned"),
        exitCodeFor: (outcome) => (outcome === "banned" ? 3 : undefined),
      }),
    );
    expect(code).toBe(3);
    expect(service.stop).toHaveBeenCalledTimes(1);
  });
});

describe("readPackageVersion", () => {
  it("version – reads a string version and returns undefined otherwise", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshid-version-"));
    writeFileSync(join(dir, "package.json"), JSON.stringify({ version: "1.2.3" }));
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ version: 1 }));
    expect(readPackageVersion(join(dir, "package.json"))).toBe("1.2.3");
    expect(readPackageVersion(join(dir, "bad.json"))).toBeUndefined();
    expect(readPackageVersion(join(dir, "missing.json"))).toBeUndefined();
  });
});
