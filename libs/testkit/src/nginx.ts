import { existsSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { isAbsolute, join, relative } from "node:path";

import { MeshidError } from "@meshid/errors";

import { getFreePort } from "./ports";
import {
  type ManagedProcess,
  listProcessTree,
  requireBinary,
  runCommand,
  spawnManaged,
  stopProcess,
} from "./process";
import { createTempDir } from "./temp-dir";

/** How long nginx may take to start or to apply a reload (ms). */
const READY_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 50;

/** Directive snippets that keep every file nginx writes inside its prefix directory. */
export interface NginxPrefixDirectives {
  /** For the main (top-level) context: pid, error_log, and `user root;` when we are root. */
  readonly main: string;
  /** For the `http` block: access_log and the five temp paths. */
  readonly http: string;
}

/** What a config function receives from {@link startNginx}. */
export interface NginxConfigContext {
  /** Prefix directory (absolute, no trailing slash); relative paths in the config resolve here. */
  readonly prefix: string;
  /** Free 127.0.0.1 ports reserved for the config to listen on. */
  readonly ports: readonly number[];
  /** `nginxPrefixDirectives(prefix).main`, to put at the top of the config. */
  readonly main: string;
  /** `nginxPrefixDirectives(prefix).http`, to put inside the `http` block. */
  readonly http: string;
}

/** An nginx config: the text, or a function of the prefix and ports that returns it. */
export type NginxConfig = string | ((context: NginxConfigContext) => string);

/** Options of {@link startNginx}. */
export interface StartNginxParams {
  /** The config. It must contain the {@link nginxPrefixDirectives} (checked). */
  config: NginxConfig;
  /** How many free ports to reserve and pass to a config function. Default 1. */
  ports?: number;
}

/** Result of {@link NginxServer.testConfig}. */
export interface NginxConfigTestResult {
  /** Whether `nginx -t` accepted the config. */
  readonly ok: boolean;
  /** What nginx (or our prefix check) printed. */
  readonly output: string;
}

/** A real nginx master process (daemon off) started by {@link startNginx}. */
export interface NginxServer {
  /** Prefix directory holding nginx.conf, logs/ and tmp/; removed by stop(). */
  readonly prefix: string;
  /** The reserved ports. */
  readonly ports: readonly number[];
  /** Process id of the nginx master (for leak checks). */
  readonly pid: number;
  /**
   * Checks `config` with `nginx -t`, writes it as nginx.conf, sends SIGHUP and resolves once
   * only new worker processes accept connections. Keep-alive connections opened before the
   * reload may still be served by an old worker until they close.
   *
   * @throws MeshidError `testkit.nginx.config_invalid` (the running config is kept) or
   *   `testkit.nginx.reload_failed` with nginx's error log.
   */
  reload(config: NginxConfig): Promise<void>;
  /** Runs a real `nginx -t` on `config` in this prefix; never throws for a bad config. */
  testConfig(config: NginxConfig): Promise<NginxConfigTestResult>;
  /** The prefix's error log (logs/error.log), for assertions and debugging. */
  errorLog(): Promise<string>;
  /** Fast shutdown (SIGTERM, SIGKILL to the group after 10 s), then removes the prefix. */
  stop(): Promise<void>;
}

/**
 * Returns the directives that keep nginx's pid file, logs and temp files inside `prefix`, so
 * an unprivileged nginx can run from there (Debian's compiled-in paths are under /run and
 * /var). `main` also holds `user root;` when we are root, because workers would otherwise
 * switch to `nobody` and lose access to the 0700 prefix. For a config written as a plain
 * string before the prefix exists, use `nginxPrefixDirectives(".")`: nginx resolves these
 * relative paths against the prefix.
 */
export function nginxPrefixDirectives(prefix: string): NginxPrefixDirectives {
  const asRoot = process.getuid?.() === 0;
  const main = [
    ...(asRoot ? ["user root;"] : []),
    `pid ${join(prefix, "nginx.pid")};`,
    `error_log ${join(prefix, "logs", "error.log")} notice;`,
  ].join("\n");
  const http = [
    `access_log ${join(prefix, "logs", "access.log")};`,
    `client_body_temp_path ${join(prefix, "tmp", "client_body")};`,
    `proxy_temp_path ${join(prefix, "tmp", "proxy")};`,
    `fastcgi_temp_path ${join(prefix, "tmp", "fastcgi")};`,
    `uwsgi_temp_path ${join(prefix, "tmp", "uwsgi")};`,
    `scgi_temp_path ${join(prefix, "tmp", "scgi")};`,
  ].join("\n");
  return { main, http };
}

/** Directives whose path must lie inside the prefix (besides optional access_log/error_log). */
const REQUIRED_PREFIX_DIRECTIVES = [
  "pid",
  "error_log",
  "client_body_temp_path",
  "proxy_temp_path",
  "fastcgi_temp_path",
  "uwsgi_temp_path",
  "scgi_temp_path",
] as const;

function stripComments(config: string): string {
  return config.replace(/#[^\n]*/g, "");
}

/**
 * Lists what is wrong with `config` for running in `prefix`: missing prefix directives, paths
 * outside the prefix, or a `daemon` directive (the helper runs nginx with `daemon off`).
 * Returns an empty list for a usable config. Only a textual check; `nginx -t` does the rest.
 */
export function checkNginxPrefixConfig(config: string, prefix: string): string[] {
  const text = stripComments(config);
  const problems: string[] = [];
  const inside = (path: string): boolean => {
    const unquoted = path.replace(/^["']|["']$/g, "");
    if (unquoted === "off" || unquoted === "stderr" || unquoted === "/dev/null") return true;
    if (!isAbsolute(unquoted)) return true; // nginx resolves relative paths against the prefix
    const rel = relative(prefix, unquoted);
    return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel);
  };
  for (const directive of [...REQUIRED_PREFIX_DIRECTIVES, "access_log"]) {
    const matches = [...text.matchAll(new RegExp(`(?:^|[;{}\\s])${directive}\\s+([^\\s;]+)`, "g"))];
    if (matches.length === 0) {
      if (directive !== "access_log") {
        problems.push(
          `missing "${directive}" (include nginxPrefixDirectives(prefix).main at the top and .http in the http block)`,
        );
      }
      continue;
    }
    for (const match of matches) {
      const path = match[1] ?? "";
      if (!inside(path))
        problems.push(`"${directive} ${path}" points outside the prefix ${prefix}`);
    }
  }
  if (/(?:^|[;{}\s])daemon\s/.test(text)) {
    problems.push('remove the "daemon" directive: the helper runs nginx with "daemon off;"');
  }
  return problems;
}

/**
 * Starts a real nginx (Debian 1.22) as `nginx -p PREFIX -c PREFIX/nginx.conf -g 'daemon off;'`
 * in a fresh temp prefix, with `ports` (default 1) free 127.0.0.1 ports reserved for the config.
 * The config must keep pid, logs and temp paths inside the prefix: build it from the `main` and
 * `http` snippets a config function receives (see {@link nginxPrefixDirectives}). Resolves once
 * nginx has bound its listeners (it writes the pid file right after). nginx is sent SIGTERM if
 * this process dies. Call `stop()` in afterAll.
 *
 * @throws MeshidError `testkit.binary.missing` when nginx is not installed,
 *   `testkit.nginx.config_invalid` when the config fails the prefix check or `nginx -t`,
 *   `testkit.nginx.start_failed` (with nginx's output) when it does not come up.
 */
export async function startNginx(params: StartNginxParams): Promise<NginxServer> {
  const nginx = requireBinary("nginx", "nginx");
  const tmp = await createTempDir("nginx");
  try {
    const prefix = tmp.path;
    await mkdir(join(prefix, "logs"));
    await mkdir(join(prefix, "tmp"));
    const ports: number[] = [];
    for (let i = 0; i < (params.ports ?? 1); i++) ports.push(await getFreePort());
    const directives = nginxPrefixDirectives(prefix);
    const render = (config: NginxConfig): string =>
      typeof config === "string" ? config : config({ prefix, ports, ...directives });
    const confPath = join(prefix, "nginx.conf");
    const pidPath = join(prefix, "nginx.pid");
    const errorLogPath = join(prefix, "logs", "error.log");
    // -e: errors printed before the config is read go to the prefix too, not /var/log.
    const baseArgs = ["-p", `${prefix}/`, "-e", errorLogPath, "-g", "daemon off;"];
    let testCount = 0;

    const testConfig = async (config: NginxConfig): Promise<NginxConfigTestResult> => {
      const text = render(config);
      const problems = checkNginxPrefixConfig(text, prefix);
      if (problems.length > 0) return { ok: false, output: problems.join("\n") };
      const path = join(prefix, `test-${++testCount}.conf`);
      await writeFile(path, text);
      const result = await runCommand(nginx, ["-t", ...baseArgs, "-c", path], { cwd: prefix });
      return { ok: result.code === 0, output: `${result.stdout}${result.stderr}`.trim() };
    };

    const ensureValid = async (config: NginxConfig): Promise<string> => {
      const result = await testConfig(config);
      if (!result.ok) {
        throw new MeshidError(
          "invalid_argument",
          "testkit.nginx.config_invalid",
          `nginx config rejected:\n${result.output}`,
        );
      }
      return render(config);
    };

    await writeFile(confPath, await ensureValid(params.config));
    const master: ManagedProcess = await spawnManaged(nginx, [...baseArgs, "-c", confPath], {
      name: "nginx",
      cwd: prefix,
      // SIGTERM makes the master stop its workers too; SIGKILL would orphan them.
      orphanSignal: "SIGTERM",
    });
    try {
      await waitUntil(
        async () => (await readPid(pidPath)) === master.pid,
        () => `nginx did not write its pid file`,
        master,
      );
    } catch (err) {
      await stopProcess(master, { timeoutMs: 5_000 });
      throw new MeshidError(
        "unavailable",
        "testkit.nginx.start_failed",
        `nginx did not start: ${err instanceof Error ? err.message : String(err)}\nerror.log:\n${await readText(errorLogPath)}`,
        { cause: err },
      );
    }

    const reload = async (config: NginxConfig): Promise<void> => {
      await writeFile(confPath, await ensureValid(config));
      const logOffset = await fileSize(errorLogPath);
      const oldWorkers = new Set((await workers(master.pid)).map((w) => w.pid));
      process.kill(master.pid, "SIGHUP");
      await waitUntil(
        async () => {
          const log = (await readText(errorLogPath)).slice(logOffset);
          // Only [emerg] means the master rejected the new config ([alert]s can come from old
          // workers shutting down).
          if (/\[emerg\]/.test(log)) {
            throw new MeshidError(
              "unavailable",
              "testkit.nginx.reload_failed",
              `nginx could not apply the new config:\n${log}`,
            );
          }
          // Live = at least one new worker, and every old worker gone or shutting down (it
          // closed its listeners, so only new workers accept connections).
          const current = await workers(master.pid);
          const fresh = current.filter((w) => !oldWorkers.has(w.pid));
          const oldAccepting = current.filter(
            (w) => oldWorkers.has(w.pid) && !w.commandLine.includes("shutting down"),
          );
          return fresh.length > 0 && oldAccepting.length === 0;
        },
        () => "nginx did not replace its workers after SIGHUP",
        master,
      );
    };

    let stopping: Promise<void> | undefined;
    const stop = async (): Promise<void> => {
      await stopProcess(master, { signal: "SIGTERM", timeoutMs: 10_000 });
      await tmp.cleanup();
    };

    return {
      prefix,
      ports,
      pid: master.pid,
      reload,
      testConfig,
      errorLog: () => readText(errorLogPath),
      stop: () => (stopping ??= stop()),
    };
  } catch (err) {
    await tmp.cleanup();
    throw err;
  }
}

interface WorkerInfo {
  readonly pid: number;
  readonly commandLine: string;
}

async function workers(masterPid: number): Promise<WorkerInfo[]> {
  const tree = await listProcessTree(masterPid);
  return tree.filter((p) => p.ppid === masterPid && p.commandLine.includes("worker process"));
}

async function readPid(path: string): Promise<number | undefined> {
  if (!existsSync(path)) return undefined;
  const text = (await readText(path)).trim();
  return text === "" ? undefined : Number(text);
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return "";
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Polls `condition` until true; fails when `master` exits or after READY_TIMEOUT_MS. */
async function waitUntil(
  condition: () => Promise<boolean>,
  describe: () => string,
  master: ManagedProcess,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (master.exitStatus() !== undefined) {
      throw new MeshidError(
        "unavailable",
        "testkit.process.exited",
        `${describe()}: nginx exited; output:\n${master.output()}`,
      );
    }
    if (await condition()) return;
    if (Date.now() >= deadline) {
      throw new MeshidError(
        "deadline_exceeded",
        "testkit.process.timeout",
        `${describe()} within ${READY_TIMEOUT_MS} ms; output:\n${master.output()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}
