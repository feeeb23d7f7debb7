// Runs any built meshid service (`services/<service>/dist/main.js`) as a real child process with
// a YAML config, waits for its /readyz, and stops, kills or restarts it: the generic launcher of
// the whole-system suites (test/e2e), the e2e benchmark and the local mesh.
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { stringify } from "yaml";
import { getFreePort } from "./ports";
import {
  spawnManaged,
  type ManagedProcess,
  type ProcessExit,
  type StopProcessParams,
  type WaitParams,
} from "./process";
import { createTempDir, type TempDir } from "./temp-dir";
import { SERVICE_NODE_FLAGS } from "./service-node-flags";

/** Root of the monorepo; resolves the same from `src/` and `dist/` of the testkit. */
const REPO_ROOT = join(__dirname, "..", "..", "..");

/** Default time to wait for a service's `/readyz` to answer 200, in milliseconds. */
export const DEFAULT_SERVICE_READY_TIMEOUT_MS = 60_000;

/** Interval between two `/readyz` probes while starting, in milliseconds. */
const READY_POLL_INTERVAL_MS = 100;

/** The built entry point of `services/<service>`: `services/<service>/dist/main.js`. */
export function meshidServiceMain(service: string): string {
  return join(REPO_ROOT, "services", service, "dist", "main.js");
}

/** Parameters of {@link startMeshidService}. */
export interface StartMeshidServiceParams {
  /**
   * The service's directory name under `services/` (`ca`, `agent`, `registrar`, …). The
   * child's environment has none of our `MESHID_*` and `OTEL_*` variables (see `env`).
   */
  readonly service: string;
  /** The configuration written as `<workDir>/<service>.yaml` (mode 0600). */
  readonly config: Readonly<Record<string, unknown>>;
  /**
   * Ops listen address written to `config.ops.listen`. Default `127.0.0.1:<free port>`; `false`
   * writes nothing (then `readyUrl` must be given or readiness is not awaited).
   */
  readonly opsListen?: string | false;
  /** URL polled until it answers 200. Default `<opsUrl>/readyz`. */
  readonly readyUrl?: string;
  /** Directory for the config file. Default: a fresh temp dir, removed by `stop()`. */
  readonly workDir?: string;
  /** Entry point. Default {@link meshidServiceMain}(service). */
  readonly main?: string;
  /** Extra command-line arguments after `--config <file>`. */
  readonly args?: readonly string[];
  /**
   * Extra environment variables, set after every `MESHID_*` and `OTEL_*` variable of ours was
   * removed (so `OTEL_EXPORTER_OTLP_ENDPOINT` can be passed on purpose).
   */
  readonly env?: Readonly<Record<string, string>>;
  /** Run as this system user (name or uid) through setpriv; needs root. */
  readonly runAs?: string;
  /** Label in error messages and logs. Default `meshid-<service>`. */
  readonly name?: string;
  /** How long to wait for readiness, in ms. Default {@link DEFAULT_SERVICE_READY_TIMEOUT_MS}. */
  readonly readyTimeoutMs?: number;
  /** Kept output, in characters. Default 200 000. */
  readonly outputLimitChars?: number;
}

/** A running service started by {@link startMeshidService}. */
export interface MeshidServiceProcess {
  readonly service: string;
  readonly name: string;
  /** The YAML file the service reads (rewritten by `restart({ config })`). */
  readonly configFile: string;
  readonly workDir: string;
  /** `http://127.0.0.1:<port>` of the ops server, or undefined with `opsListen: false`. */
  readonly opsUrl: string | undefined;
  /** The current process id. */
  pid(): number;
  /** True while the current process runs. */
  running(): boolean;
  /** The configuration the current process was started with. */
  config(): Readonly<Record<string, unknown>>;
  /** The output of the current process so far (for failure messages). */
  output(): string;
  /** Waits for a line of the current process's output. */
  waitForOutput(pattern: RegExp, params?: WaitParams): Promise<RegExpMatchArray>;
  /** Settles when the current process exits. */
  exited(): Promise<ProcessExit>;
  /** GETs `<opsUrl><path>` and returns status and body (e.g. `/metrics`). */
  ops(path: string): Promise<{ status: number; body: string }>;
  /** SIGTERM and wait (SIGKILL after 10 s); removes a temp workDir. */
  stop(params?: StopProcessParams): Promise<ProcessExit>;
  /** SIGKILL now and wait (nothing is removed: `restart()` may follow). */
  kill9(): Promise<ProcessExit>;
  /**
   * Stops the process if it runs and starts it again with the same files (or with `config`,
   * written over the file first); resolves when ready again.
   */
  restart(params?: { readonly config?: Readonly<Record<string, unknown>> }): Promise<void>;
}

/**
 * Our environment minus every `MESHID_*` and `OTEL_*` variable, plus `extra`. Every service's
 * prefix goes, not only this one's: `meshid-control-plane` reads those of the services it hosts.
 */
function serviceEnv(extra: Readonly<Record<string, string>> | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith("MESHID_") && !name.startsWith("OTEL_")) env[name] = value;
  }
  return { ...env, ...extra };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `url` until it answers 200; fails when `proc` exits first or after `timeoutMs`. */
async function waitForReady(proc: ManagedProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  for (;;) {
    const exit = proc.exitStatus();
    if (exit !== undefined) {
      throw new MeshidError(
        "unavailable",
        "testkit.service.exited",
        `${proc.name} exited (code ${String(exit.code)}, signal ${String(exit.signal)}) ` +
          `before ${url} answered 200; output:\n${proc.output()}`,
      );
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      throw new MeshidError(
        "deadline_exceeded",
        "testkit.service.not_ready",
        `${proc.name}: ${url} did not answer 200 within ${timeoutMs} ms (${last}); output:\n` +
          proc.output(),
      );
    }
    await delay(READY_POLL_INTERVAL_MS);
  }
}

/**
 * Starts the built service `services/<service>/dist/main.js --config <workDir>/<service>.yaml`
 * as a managed child process (own process group, killed with its parent) and resolves once its
 * `/readyz` answers 200.
 *
 * @throws MeshidError `testkit.service.not_built` when the entry point is missing,
 *   `testkit.service.exited` when the process exits before it is ready (with its output), and
 *   `testkit.service.not_ready` after `readyTimeoutMs`.
 */
export async function startMeshidService(
  params: StartMeshidServiceParams,
): Promise<MeshidServiceProcess> {
  const { service } = params;
  const main = params.main ?? meshidServiceMain(service);
  if (!existsSync(main)) {
    throw new MeshidError(
      "failed_precondition",
      "testkit.service.not_built",
      `${main} is missing: build the service first ` +
        `(cd /work/main && npx turbo run build --filter=@meshid/${service}...)`,
    );
  }
  const name = params.name ?? `meshid-${service}`;
  let temp: TempDir | undefined;
  const workDir = params.workDir ?? (temp = await createTempDir(`${service}-`)).path;
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const configFile = join(workDir, `${service}.yaml`);

  const opsListen =
    params.opsListen === false
      ? undefined
      : (params.opsListen ?? `127.0.0.1:${await getFreePort()}`);
  const opsUrl = opsListen === undefined ? undefined : `http://${opsListen}`;
  const readyUrl = params.readyUrl ?? (opsUrl === undefined ? undefined : `${opsUrl}/readyz`);
  const withOps = (config: Readonly<Record<string, unknown>>): Record<string, unknown> => {
    if (opsListen === undefined) return { ...config };
    const ops = (config.ops ?? {}) as Record<string, unknown>;
    return { ...config, ops: { ...ops, listen: opsListen } };
  };

  let config = withOps(params.config);
  let proc: ManagedProcess | undefined;

  const launch = async (): Promise<void> => {
    await writeFile(configFile, stringify(config), { mode: 0o600 });
    const p = await spawnManaged(
      process.execPath,
      [...SERVICE_NODE_FLAGS, main, "--config", configFile, ...(params.args ?? [])],
      {
        name,
        env: serviceEnv(params.env),
        outputLimitChars: params.outputLimitChars ?? 200_000,
        ...(params.runAs === undefined ? {} : { runAs: params.runAs }),
      },
    );
    proc = p;
    if (readyUrl === undefined) return;
    try {
      await waitForReady(p, readyUrl, params.readyTimeoutMs ?? DEFAULT_SERVICE_READY_TIMEOUT_MS);
    } catch (err) {
      await p.stop({ signal: "SIGKILL" });
      throw err;
    }
  };
  const current = (): ManagedProcess => {
    if (proc === undefined) throw new Error(`${name} is not started`);
    return proc;
  };

  try {
    await launch();
  } catch (err) {
    await temp?.cleanup();
    throw err;
  }

  return {
    service,
    name,
    configFile,
    workDir,
    opsUrl,
    pid: () => current().pid,
    running: () => proc !== undefined && proc.exitStatus() === undefined,
    config: () => config,
    output: () => proc?.output() ?? "",
    waitForOutput: (pattern, waitParams) => current().waitForOutput(pattern, waitParams),
    exited: () => current().exited,
    async ops(path) {
      if (opsUrl === undefined) throw new Error(`${name} has no ops server`);
      const res = await fetch(`${opsUrl}${path}`, { signal: AbortSignal.timeout(10_000) });
      return { status: res.status, body: await res.text() };
    },
    async stop(stopParams) {
      const exit = await current().stop(stopParams);
      await temp?.cleanup();
      return exit;
    },
    kill9: () => current().stop({ signal: "SIGKILL" }),
    async restart(restartParams = {}) {
      if (proc?.exitStatus() === undefined) await proc?.stop();
      if (restartParams.config !== undefined) config = withOps(restartParams.config);
      await launch();
    },
  };
}
