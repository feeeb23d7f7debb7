// NGINX driven through its command line and signals: `nginx -t` on candidate configurations,
// the master as a child process (`spawn`) or an existing master found by its pid file
// (`signal`), SIGHUP reloads confirmed by a new worker process.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, writeFile } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { NginxController, NginxExit, NginxTestResult } from "../ports";

/** Error code of a failed NGINX start. */
export const NGINX_START_FAILED_CODE = "sidecar.nginx.start_failed";
/** Error code of a failed or unconfirmed reload. */
export const NGINX_RELOAD_FAILED_CODE = "sidecar.nginx.reload_failed";
/** Error code when the NGINX binary cannot be run. */
export const NGINX_UNAVAILABLE_CODE = "sidecar.nginx.unavailable";

/** How long `nginx -t` and `nginx -V` may take, in milliseconds. */
export const NGINX_COMMAND_TIMEOUT_MS = 30_000;
/** How long a spawned master may take to stop after SIGTERM before SIGKILL, in milliseconds. */
export const NGINX_STOP_TIMEOUT_MS = 10_000;
const POLL_INTERVAL_MS = 25;
const OUTPUT_TAIL_CHARS = 8_000;

/** Parameters of {@link createNginxProcessController}. */
export interface CreateNginxProcessControllerParams {
  /** Binary name (PATH lookup) or path. */
  readonly binary: string;
  /** Prefix directory (`-p`). */
  readonly prefix: string;
  /** The live configuration file (`-c`); candidates are written to `<configFile>.new`. */
  readonly configFile: string;
  /** `spawn`: run the master as our child; `signal`: signal the master named by `pidFile`. */
  readonly manage: "spawn" | "signal";
  /** Pid file of an external master (`signal`). */
  readonly pidFile: string;
  /** Longest wait for a start or a reload to show a new worker, in milliseconds. */
  readonly reloadTimeoutMs: number;
  readonly logger: Logger;
}

/** Result of a finished command. */
interface CommandOutput {
  readonly code: number | null;
  readonly output: string;
}

function runNginx(binary: string, args: readonly string[]): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      [...args],
      { timeout: NGINX_COMMAND_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (err !== null && typeof err.code === "string") {
          // ENOENT, EACCES: the binary itself could not run.
          reject(
            new MeshidError(
              "failed_precondition",
              NGINX_UNAVAILABLE_CODE,
              `cannot run ${binary}: ${err.message}`,
              { cause: err },
            ),
          );
          return;
        }
        resolve({
          code: err === null ? 0 : typeof err.code === "number" ? err.code : null,
          output,
        });
      },
    );
  });
}

/**
 * Runs `nginx -V` and returns what it printed (configure arguments included).
 * @throws MeshidError {@link NGINX_UNAVAILABLE_CODE} when the binary cannot be run.
 */
export async function nginxVersionInfo(binary: string): Promise<string> {
  return (await runNginx(binary, ["-V"])).output;
}

/** Child pids of `pid` (Linux `/proc/<pid>/task/<pid>/children`, else a /proc scan). */
export async function childPids(pid: number): Promise<number[]> {
  try {
    const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8");
    return text
      .split(/\s+/)
      .filter((s) => s !== "")
      .map(Number);
  } catch {
    const out: number[] = [];
    for (const name of await readdir("/proc")) {
      if (!/^[0-9]+$/.test(name)) continue;
      try {
        const stat = await readFile(`/proc/${name}/stat`, "utf8");
        // Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        if (Number(fields[1]) === pid) out.push(Number(name));
      } catch {
        // gone meanwhile
      }
    }
    return out;
  }
}

/** Whether an NGINX worker has set its title to "… is shutting down" (or is gone). */
async function isShuttingDown(pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    // A zombie (exited, not yet reaped) has an empty command line.
    return cmdline === "" || cmdline.includes("shutting down");
  } catch {
    return true;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function findInPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Creates the {@link NginxController}. With `spawn`, `start()` creates `logs/` and `tmp/` in
 * the prefix (0700), removes stale `meshid-*.sock` files there (NGINX cannot bind over them),
 * and runs `nginx -p <prefix> -c <configFile> -g 'daemon off;'` as a child in its own process
 * group; when `setpriv` is installed the kernel also sends it SIGTERM if the sidecar dies, so
 * no orphaned NGINX keeps serving an old SVID.
 */
export function createNginxProcessController(
  params: CreateNginxProcessControllerParams,
): NginxController {
  const { binary, prefix, configFile, logger } = params;
  const candidate = `${configFile}.new`;
  const exitListeners = new Set<(exit: NginxExit) => void>();
  let child: ChildProcess | undefined;
  let tail = "";

  const childRunning = (): boolean =>
    child !== undefined && child.exitCode === null && child.signalCode === null;

  const externalPid = async (): Promise<number | undefined> => {
    try {
      const pid = Number((await readFile(params.pidFile, "utf8")).trim());
      return Number.isInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  let lastExternalPid: number | undefined;

  const masterPid = async (): Promise<number | undefined> => {
    if (params.manage === "spawn") return childRunning() ? child?.pid : undefined;
    lastExternalPid = await externalPid();
    return lastExternalPid;
  };

  const waitForNewWorker = async (
    pid: number,
    before: ReadonlySet<number>,
    what: string,
  ): Promise<void> => {
    const deadline = Date.now() + params.reloadTimeoutMs;
    for (;;) {
      if (!isAlive(pid) || (params.manage === "spawn" && !childRunning())) {
        throw new Error(`NGINX master ${pid} exited during ${what}`);
      }
      const workers = await childPids(pid);
      if (workers.some((w) => !before.has(w))) {
        // Old workers stop accepting at once but linger while their connections last; until
        // they took the hint a new connection could still meet the old configuration.
        const old = workers.filter((w) => before.has(w));
        if ((await Promise.all(old.map(isShuttingDown))).every(Boolean)) return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no new NGINX worker within ${params.reloadTimeoutMs} ms after ${what} ` +
            "(NGINX kept its previous configuration; see its error log)",
        );
      }
      await sleep(POLL_INTERVAL_MS);
    }
  };

  const prepareSpawn = async (): Promise<void> => {
    await mkdir(join(prefix, "logs"), { recursive: true, mode: 0o700 });
    await mkdir(join(prefix, "tmp"), { recursive: true, mode: 0o700 });
    for (const name of await readdir(prefix)) {
      if (/^meshid-.*\.sock$/.test(name)) await rm(join(prefix, name), { force: true });
    }
  };

  return {
    manages: params.manage === "spawn",
    async testConfig(text: string): Promise<NginxTestResult> {
      await writeFile(candidate, text, { mode: 0o600 });
      const result = await runNginx(binary, ["-t", "-p", prefix, "-c", candidate]);
      return { ok: result.code === 0, output: result.output };
    },
    async installTestedConfig(): Promise<void> {
      await rename(candidate, configFile);
    },
    async start(): Promise<void> {
      if (params.manage === "signal") {
        if ((await masterPid()) === undefined) {
          throw new MeshidError(
            "unavailable",
            NGINX_START_FAILED_CODE,
            `no running NGINX master found by ${params.pidFile}`,
          );
        }
        return;
      }
      if (childRunning()) return;
      await prepareSpawn();
      const setpriv = findInPath("setpriv");
      const argv = [
        ...(setpriv === undefined ? [] : [setpriv, "--pdeathsig=TERM", "--"]),
        binary,
        "-p",
        prefix,
        "-c",
        configFile,
        "-g",
        "daemon off;",
      ];
      tail = "";
      const proc = spawn(argv[0] ?? binary, argv.slice(1), {
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
      });
      child = proc;
      const onOutput = (chunk: Buffer): void => {
        const text = chunk.toString("utf8");
        tail = (tail + text).slice(-OUTPUT_TAIL_CHARS);
        for (const line of text.split("\n")) {
          if (line.trim() !== "") logger.warn({ nginx: line.trim() }, "NGINX output");
        }
      };
      proc.stdout?.on("data", onOutput);
      proc.stderr?.on("data", onOutput);
      const spawned = new Promise<void>((resolve, reject) => {
        proc.once("spawn", resolve);
        proc.once("error", reject);
      });
      proc.once("exit", (code, signal) => {
        // Workers of a master that died (SIGKILL, crash) would keep the listen sockets and
        // the old SVID: clear the whole process group before anything restarts.
        try {
          if (proc.pid !== undefined) process.kill(-proc.pid, "SIGKILL");
        } catch {
          // the group is already gone
        }
        if (child !== proc) return;
        for (const listener of [...exitListeners]) listener({ code, signal });
      });
      try {
        await spawned;
        const pid = proc.pid;
        if (pid === undefined) throw new Error("no pid");
        await waitForNewWorker(pid, new Set(), "start");
        logger.debug({ pid }, "NGINX master running");
      } catch (err) {
        if (childRunning()) proc.kill("SIGKILL");
        throw new MeshidError(
          "unavailable",
          NGINX_START_FAILED_CODE,
          `NGINX did not start: ${(err as Error).message}; output: ${tail.trim()}`,
          { cause: err },
        );
      }
    },
    async reload(): Promise<void> {
      const pid = await masterPid();
      if (pid === undefined) {
        throw new MeshidError(
          "unavailable",
          NGINX_RELOAD_FAILED_CODE,
          params.manage === "spawn"
            ? "NGINX is not running"
            : `no running NGINX master found by ${params.pidFile}`,
        );
      }
      const before = new Set(await childPids(pid));
      process.kill(pid, "SIGHUP");
      try {
        await waitForNewWorker(pid, before, "SIGHUP");
      } catch (err) {
        throw new MeshidError("unavailable", NGINX_RELOAD_FAILED_CODE, (err as Error).message, {
          cause: err,
        });
      }
    },
    running(): boolean {
      if (params.manage === "spawn") return childRunning();
      return lastExternalPid !== undefined && isAlive(lastExternalPid);
    },
    onExit(listener) {
      exitListeners.add(listener);
      return () => {
        exitListeners.delete(listener);
      };
    },
    async stop(): Promise<void> {
      const proc = child;
      if (params.manage !== "spawn" || proc === undefined || !childRunning()) return;
      const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => {
        try {
          // The whole group, so no worker outlives its master.
          if (proc.pid !== undefined) process.kill(-proc.pid, "SIGKILL");
        } catch (err) {
          logger.warn({ [LogKeys.err]: (err as Error).message }, "could not kill NGINX");
        }
      }, NGINX_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}
