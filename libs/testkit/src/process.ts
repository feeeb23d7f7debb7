import { type ChildProcess, execFile, spawn } from "node:child_process";
import { accessSync, constants as fsConstants, realpathSync } from "node:fs";
import { readFile, readdir, readlink } from "node:fs/promises";
import { connect } from "node:net";
import { basename, delimiter, join } from "node:path";

import { MeshidError } from "@meshid/errors";

/** Directories searched by {@link requireBinary} after `$PATH` (Debian puts daemons in sbin). */
export const COMMON_BINARY_DIRS: readonly string[] = [
  "/usr/local/sbin",
  "/usr/local/bin",
  "/usr/sbin",
  "/usr/bin",
  "/sbin",
  "/bin",
];

/** Options of {@link requireBinary}. */
export interface RequireBinaryParams {
  /** Directories to search, in order. Default: `$PATH`, then {@link COMMON_BINARY_DIRS}. */
  dirs?: readonly string[];
}

/**
 * Returns the absolute path of the executable `name`, searching `$PATH` and then the common
 * sbin/bin directories.
 *
 * @throws MeshidError `testkit.binary.missing` (failed_precondition) naming the Debian package
 *   to install when the binary is nowhere to be found.
 */
export function requireBinary(
  name: string,
  debianPackage: string,
  params: RequireBinaryParams = {},
): string {
  const dirs = params.dirs ?? [
    ...(process.env.PATH ?? "").split(delimiter).filter(Boolean),
    ...COMMON_BINARY_DIRS,
  ];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not in this directory; try the next one
    }
  }
  throw new MeshidError(
    "failed_precondition",
    "testkit.binary.missing",
    `${name} not found; install the Debian package ${debianPackage} (run .ci/run as root to install it automatically)`,
    { details: { binary: name, debianPackage } },
  );
}

function resolveExecutable(command: string, env: NodeJS.ProcessEnv): string | undefined {
  const executable = (path: string): boolean => {
    try {
      accessSync(path, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (command.includes("/")) return executable(command) ? command : undefined;
  for (const dir of (env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, command);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

/** Numeric ids of a system user. */
export interface SystemUser {
  /** User id. */
  readonly uid: number;
  /** Primary group id. */
  readonly gid: number;
}

/**
 * Looks up the uid and primary gid of a system user (name or numeric uid) with `id`.
 *
 * @throws MeshidError `testkit.user.not_found` (failed_precondition) when there is no such user.
 */
export async function lookupSystemUser(user: string): Promise<SystemUser> {
  const [uid, gid] = await Promise.all([
    runCommand("id", ["-u", user]),
    runCommand("id", ["-g", user]),
  ]);
  if (uid.code !== 0 || gid.code !== 0) {
    throw new MeshidError(
      "failed_precondition",
      "testkit.user.not_found",
      `there is no system user "${user}": ${uid.stderr.trim()}`,
      { details: { user } },
    );
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** setpriv arguments that switch to `user`'s uid, primary gid and supplementary groups. */
async function setprivUserArgs(user: string): Promise<string[]> {
  const { uid, gid } = await lookupSystemUser(user);
  return [`--reuid=${uid}`, `--regid=${gid}`, "--init-groups"];
}

/** How a process ended: an exit code, or the signal that killed it. */
export interface ProcessExit {
  /** Exit code, or null when a signal ended the process. */
  readonly code: number | null;
  /** Signal that ended the process, or null when it exited by itself. */
  readonly signal: NodeJS.Signals | null;
}

/** Options of {@link spawnManaged}. */
export interface SpawnManagedParams {
  /** Label used in error messages. Default: the command's base name. */
  name?: string;
  /** Working directory. Default: the current one. */
  cwd?: string;
  /** Environment. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /**
   * Run the command as this system user (name or uid) with its primary group and
   * supplementary groups, through `setpriv`. Needs root; the command's directory and `cwd` must
   * be reachable by that user. Default: as ourselves.
   */
  runAs?: string;
  /** Keep at most this many characters of combined stdout/stderr. Default 16 000. */
  outputLimitChars?: number;
  /**
   * Signal the kernel sends the process when this Node process dies, even by SIGKILL or a crash
   * (`setpriv --pdeathsig`), and the signal sent on a normal `process.exit`. Pick the signal
   * that makes the program shut down its own children (nginx: SIGTERM, postgres: SIGQUIT).
   * Default SIGKILL.
   */
  orphanSignal?: NodeJS.Signals;
}

/** A child process started by {@link spawnManaged}: output captured, killed with its parent. */
export interface ManagedProcess {
  /** Label used in error messages. */
  readonly name: string;
  /** The underlying child process. */
  readonly child: ChildProcess;
  /** OS process id (setpriv execs the command, so this is the command's pid). */
  readonly pid: number;
  /** Settles when the process has exited; never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** How the process ended, or undefined while it runs. */
  exitStatus(): ProcessExit | undefined;
  /** The last `outputLimitChars` characters of stdout and stderr, interleaved. */
  output(): string;
  /**
   * Resolves with the first match of `pattern` in the output seen so far or later.
   * Default timeout 20 000 ms.
   *
   * @throws MeshidError `testkit.process.exited` when the process exits first,
   *   `testkit.process.timeout` after `timeoutMs`, or the signal's reason when aborted.
   */
  waitForOutput(pattern: RegExp, params?: WaitParams): Promise<RegExpMatchArray>;
  /** Stops the process like {@link stopProcess}. */
  stop(params?: StopProcessParams): Promise<ProcessExit>;
}

/** Timeout and cancellation of a wait. */
export interface WaitParams {
  /** Give up after this many milliseconds. Default 20 000. */
  timeoutMs?: number;
  /** Abort the wait. */
  signal?: AbortSignal;
}

const DEFAULT_OUTPUT_LIMIT_CHARS = 16_000;
const DEFAULT_WAIT_TIMEOUT_MS = 20_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const PORT_POLL_INTERVAL_MS = 50;

/** Every managed process still running; the exit hook signals them all. */
const registry = new Set<ManagedProcess>();
const orphanSignals = new WeakMap<ManagedProcess, NodeJS.Signals>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Only synchronous work is possible in an exit handler: signal, don't wait. Under jest the
  // test file's `process` is a sandbox copy whose "exit" never fires; there `setpriv
  // --pdeathsig` is what guarantees no leaks when the worker exits or crashes.
  process.on("exit", () => {
    for (const managed of registry) {
      try {
        managed.child.kill(orphanSignals.get(managed) ?? "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
}

/** Returns the processes started by {@link spawnManaged} that have not exited yet. */
export function listManagedProcesses(): readonly ManagedProcess[] {
  return [...registry];
}

/** Stops every process started by {@link spawnManaged} (e.g. in a jest global teardown). */
export async function stopAllManagedProcesses(params: StopProcessParams = {}): Promise<void> {
  await Promise.all([...registry].map((managed) => managed.stop(params)));
}

/** Keeps the tail of a stream of text within a character budget. */
class OutputTail {
  private text = "";
  constructor(private readonly limit: number) {}
  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.limit) this.text = this.text.slice(this.text.length - this.limit);
  }
  toString(): string {
    return this.text;
  }
}

function signalName(signal: NodeJS.Signals): string {
  return signal.replace(/^SIG/, "");
}

/** Longest wait for setpriv to exec the command (it normally takes about a millisecond). */
const SETPRIV_EXEC_WAIT_MS = 10_000;

/**
 * Waits until process `pid` no longer runs the `wrapper` executable (it exec'd the command),
 * has exited, or {@link SETPRIV_EXEC_WAIT_MS} passed.
 */
async function waitUntilExecedPast(
  pid: number,
  wrapper: string,
  hasExited: () => boolean,
): Promise<void> {
  const deadline = Date.now() + SETPRIV_EXEC_WAIT_MS;
  while (!hasExited() && Date.now() < deadline) {
    let exe: string;
    try {
      exe = await readlink(`/proc/${pid}/exe`);
    } catch {
      return; // gone (or a zombie): nothing left to protect
    }
    if (exe !== wrapper) return;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * Starts `command args…` as a managed child process: stdout and stderr are captured in a
 * bounded buffer for error messages, the process runs in its own process group, the kernel
 * signals it if this process dies (`setpriv --pdeathsig`, when util-linux is installed), and
 * a registry signals it on `process.exit`. Resolves once the command runs (past setpriv).
 *
 * @throws MeshidError `testkit.process.spawn_failed` when the command cannot be started, and
 *   `testkit.binary.missing` when `runAs` is set but setpriv is missing.
 */
export async function spawnManaged(
  command: string,
  args: readonly string[],
  params: SpawnManagedParams = {},
): Promise<ManagedProcess> {
  const name = params.name ?? basename(command);
  const orphanSignal = params.orphanSignal ?? "SIGKILL";
  let setpriv: string | undefined;
  try {
    setpriv = requireBinary("setpriv", "util-linux");
  } catch (err) {
    if (params.runAs !== undefined) throw err;
  }
  // setpriv would start even when the command does not exist: check first.
  const executable = resolveExecutable(command, params.env ?? process.env);
  if (executable === undefined) {
    throw new MeshidError(
      "failed_precondition",
      "testkit.process.spawn_failed",
      `${name}: could not start ${command}: no such executable`,
    );
  }
  const wrapper =
    setpriv === undefined
      ? []
      : [
          setpriv,
          ...(params.runAs === undefined ? [] : await setprivUserArgs(params.runAs)),
          `--pdeathsig=${signalName(orphanSignal)}`,
          "--",
        ];
  const argv = [...wrapper, executable, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: params.cwd,
    env: params.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    // Own process group, so the SIGKILL escalation also reaches the program's children.
    detached: true,
  });

  const tail = new OutputTail(params.outputLimitChars ?? DEFAULT_OUTPUT_LIMIT_CHARS);
  const listeners = new Set<() => void>();
  const onChunk = (chunk: string): void => {
    tail.append(chunk);
    for (const listener of listeners) listener();
  };
  // setEncoding keeps multi-byte characters that straddle chunks intact.
  child.stdout?.setEncoding("utf8").on("data", onChunk);
  child.stderr?.setEncoding("utf8").on("data", onChunk);

  let exitStatus: ProcessExit | undefined;
  let spawnError: Error | undefined;
  const exited = new Promise<ProcessExit>((resolve) => {
    child.once("error", (err) => {
      spawnError = err;
      // A failed spawn never emits "exit".
      if (child.pid === undefined) {
        exitStatus = { code: null, signal: null };
        resolve(exitStatus);
      }
    });
    // "close" waits for stdout/stderr to end, so output() is complete afterwards.
    child.once("close", (code, signal) => {
      exitStatus = { code, signal };
      resolve(exitStatus);
    });
  });

  await new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", (err) => reject(err));
  }).catch((cause: unknown) => {
    throw new MeshidError(
      "failed_precondition",
      "testkit.process.spawn_failed",
      `${name}: could not start ${command}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  });

  // setpriv arms --pdeathsig only just before it execs the command: until then the parent's
  // death goes unnoticed. Resolve once the command runs, so a caller that dies at once (a
  // crashing worker) still takes it down.
  if (setpriv !== undefined && child.pid !== undefined) {
    await waitUntilExecedPast(child.pid, realpathSync(setpriv), () => exitStatus !== undefined);
  }

  const describeExit = (): string => {
    const status = exitStatus;
    const how =
      status === undefined
        ? "is running"
        : status.signal !== null
          ? `was killed by ${status.signal}`
          : `exited with code ${String(status.code)}`;
    const err = spawnError === undefined ? "" : ` (${spawnError.message})`;
    return `${name} (pid ${String(child.pid)}) ${how}${err}; output:\n${tail.toString()}`;
  };

  const managed: ManagedProcess = {
    name,
    child,
    pid: child.pid!,
    exited,
    exitStatus: () => exitStatus,
    output: () => tail.toString(),
    waitForOutput: (pattern, waitParams = {}) =>
      new Promise<RegExpMatchArray>((resolve, reject) => {
        const timeoutMs = waitParams.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
        const finish = (): void => {
          listeners.delete(check);
          clearTimeout(timer);
          waitParams.signal?.removeEventListener("abort", onAbort);
        };
        const check = (): void => {
          const match = tail.toString().match(pattern);
          if (match !== null) {
            finish();
            resolve(match);
          }
        };
        const onAbort = (): void => {
          finish();
          reject(abortReason(waitParams.signal));
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new MeshidError(
              "deadline_exceeded",
              "testkit.process.timeout",
              `${name}: no output matching ${String(pattern)} within ${timeoutMs} ms; ${describeExit()}`,
            ),
          );
        }, timeoutMs);
        if (waitParams.signal?.aborted === true) {
          onAbort();
          return;
        }
        waitParams.signal?.addEventListener("abort", onAbort, { once: true });
        listeners.add(check);
        check();
        void exited.then(() => {
          if (!listeners.has(check)) return;
          check();
          if (!listeners.has(check)) return;
          finish();
          reject(
            new MeshidError(
              "unavailable",
              "testkit.process.exited",
              `${name} exited before printing ${String(pattern)}: ${describeExit()}`,
            ),
          );
        });
      }),
    stop: (stopParams) => stopProcess(managed, stopParams),
  };

  registry.add(managed);
  orphanSignals.set(managed, orphanSignal);
  installExitHook();
  void exited.then(() => registry.delete(managed));
  return managed;
}

/** Options of {@link waitForPort}. */
export interface WaitForPortParams extends WaitParams {
  /** Host to connect to. Default 127.0.0.1. */
  host?: string;
  /** Fail early, with its output, if this process exits while we wait. */
  process?: ManagedProcess;
}

function tryConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * Resolves once a TCP connection to `host:port` succeeds, polling every 50 ms.
 * Default host 127.0.0.1, timeout 20 000 ms.
 *
 * @throws MeshidError `testkit.process.timeout` after `timeoutMs`, `testkit.process.exited` when
 *   `params.process` exits first (with its output), or the signal's reason when aborted.
 */
export async function waitForPort(port: number, params: WaitForPortParams = {}): Promise<void> {
  const host = params.host ?? "127.0.0.1";
  const timeoutMs = params.timeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    params.signal?.throwIfAborted();
    const proc = params.process;
    if (proc?.exitStatus() !== undefined) {
      throw new MeshidError(
        "unavailable",
        "testkit.process.exited",
        `${proc.name} exited before listening on ${host}:${port}; output:\n${proc.output()}`,
      );
    }
    if (await tryConnect(host, port)) return;
    if (Date.now() >= deadline) {
      const output = proc === undefined ? "" : `; ${proc.name} output:\n${proc.output()}`;
      throw new MeshidError(
        "deadline_exceeded",
        "testkit.process.timeout",
        `nothing listening on ${host}:${port} after ${timeoutMs} ms${output}`,
      );
    }
    await sleep(PORT_POLL_INTERVAL_MS, params.signal);
  }
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Options of {@link stopProcess}. */
export interface StopProcessParams {
  /** First signal to send. Default SIGTERM. */
  signal?: NodeJS.Signals;
  /** Send SIGKILL (to the whole process group) after this many milliseconds. Default 10 000. */
  timeoutMs?: number;
}

function isManaged(target: ChildProcess | ManagedProcess): target is ManagedProcess {
  return "exited" in target && "child" in target;
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Stops a child process: sends `signal` (default SIGTERM), waits up to `timeoutMs` (default
 * 10 000) for it to exit, then sends SIGKILL — to its whole process group when it was started
 * by {@link spawnManaged} — and waits again. Resolves with how it ended; safe to call twice.
 */
export async function stopProcess(
  target: ChildProcess | ManagedProcess,
  params: StopProcessParams = {},
): Promise<ProcessExit> {
  const child = isManaged(target) ? target.child : target;
  const exited: Promise<ProcessExit> = isManaged(target)
    ? target.exited
    : child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve({ code: child.exitCode, signal: child.signalCode })
      : new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  const pid = child.pid;
  const running = isManaged(target)
    ? target.exitStatus() === undefined
    : child.exitCode === null && child.signalCode === null;
  if (pid === undefined || !running) return exited;

  killQuietly(pid, params.signal ?? "SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), params.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  });
  const first = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (first !== "timeout") return first;
  // A managed process leads its own process group: kill the group so no children survive.
  killQuietly(isManaged(target) ? -pid : pid, "SIGKILL");
  return exited;
}

/** One process seen in /proc. */
export interface ProcessInfo {
  /** Process id. */
  readonly pid: number;
  /** Parent process id. */
  readonly ppid: number;
  /** Command line, arguments joined by spaces (may be rewritten by the program itself). */
  readonly commandLine: string;
}

/** Lists the processes running now, from /proc (Linux). */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const entries = await readdir("/proc");
  const infos = await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (entry): Promise<ProcessInfo | undefined> => {
        try {
          const [stat, cmdline] = await Promise.all([
            readFile(`/proc/${entry}/stat`, "utf8"),
            readFile(`/proc/${entry}/cmdline`, "utf8"),
          ]);
          // The command name in parentheses may contain spaces: parse after the last ')'.
          const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
          return {
            pid: Number(entry),
            ppid: Number(fields[1]),
            commandLine: cmdline.replace(/\0+$/, "").replace(/\0/g, " "),
          };
        } catch {
          return undefined; // exited while we looked
        }
      }),
  );
  return infos.filter((info): info is ProcessInfo => info !== undefined);
}

/** Returns `pid` and all its descendants that are running now (Linux), parents first. */
export async function listProcessTree(pid: number): Promise<ProcessInfo[]> {
  const all = await listProcesses();
  const root = all.find((info) => info.pid === pid);
  if (root === undefined) return [];
  const tree = [root];
  for (let i = 0; i < tree.length; i++) {
    const parent = tree[i]!.pid;
    tree.push(...all.filter((info) => info.ppid === parent));
  }
  return tree;
}

/** Reports whether a process with this pid exists (zombies included). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Options of {@link runCommand}. */
export interface RunCommandParams {
  /** Working directory. */
  cwd?: string;
  /** Environment. Default: this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Run as this system user through `setpriv` (needs root). */
  runAs?: string;
  /** Kill the command after this many milliseconds. Default 60 000. */
  timeoutMs?: number;
}

/** Output of a command run by {@link runCommand}. */
export interface CommandResult {
  /** Exit code (null when killed by a signal). */
  readonly code: number | null;
  /** Everything written to stdout. */
  readonly stdout: string;
  /** Everything written to stderr. */
  readonly stderr: string;
}

/**
 * Runs a short-lived command to completion and returns its exit code and output; never throws
 * for a non-zero exit (check `code`).
 *
 * @throws MeshidError `testkit.process.spawn_failed` when the command cannot be started.
 */
export async function runCommand(
  command: string,
  args: readonly string[],
  params: RunCommandParams = {},
): Promise<CommandResult> {
  const argv =
    params.runAs === undefined
      ? [command, ...args]
      : [
          requireBinary("setpriv", "util-linux"),
          ...(await setprivUserArgs(params.runAs)),
          "--",
          command,
          ...args,
        ];
  return new Promise((resolve, reject) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      {
        cwd: params.cwd,
        env: params.env ?? process.env,
        timeout: params.timeoutMs ?? 60_000,
        maxBuffer: 16 * 1024 * 1024,
        encoding: "utf8",
      },
      (error, stdout, stderr) => {
        if (error !== null && typeof error.code === "string") {
          reject(
            new MeshidError(
              "failed_precondition",
              "testkit.process.spawn_failed",
              `could not run ${command}: ${error.message}`,
              { cause: error },
            ),
          );
          return;
        }
        const code = error === null ? 0 : typeof error.code === "number" ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
