// Runs meshctl in-process (run(argv, io) with captured output) or as a real child process
// (node dist/main.js) for the tests.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { run, type CliIo } from "../src/cli";

/** What one meshctl run produced. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCli} and {@link runCliProcess}. */
export interface RunCliOptions {
  /** Environment variables (nothing else is inherited in-process). */
  readonly env?: Record<string, string | undefined>;
  /** Working directory. Default: a directory without a context file. */
  readonly cwd?: string;
  /** Ends long-running commands. */
  readonly signal?: AbortSignal;
}

/** The built CLI entry point. */
export const MESHCTL_MAIN = join(__dirname, "..", "dist", "main.js");

/** Runs meshctl in this process with captured stdout/stderr. */
export async function runCli(
  argv: readonly string[],
  options: RunCliOptions = {},
): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: options.env ?? {},
    cwd: options.cwd ?? "/",
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  const code = await run(argv, io);
  return { code, stdout, stderr };
}

/** Runs `node dist/main.js …` as a child process and waits for it to exit. */
export async function runCliProcess(
  argv: readonly string[],
  options: RunCliOptions = {},
): Promise<CliResult> {
  if (!existsSync(MESHCTL_MAIN)) {
    throw new Error(
      `${MESHCTL_MAIN} is missing: build meshctl first (npx turbo run build --filter=@meshid/meshctl...)`,
    );
  }
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" };
  for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
  const child = spawn(process.execPath, [MESHCTL_MAIN, ...argv], {
    cwd: options.cwd ?? "/",
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (c) => resolve(c ?? -1));
  });
  return { code, stdout, stderr };
}

/** Parses the stdout of a `--json` run. */
export function json<T = Record<string, unknown>>(result: CliResult): T {
  try {
    return JSON.parse(result.stdout) as T;
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${result.code}):\n${result.stdout}\n${result.stderr}`,
    );
  }
}

/** A meshctl run in progress (long-running commands such as `events tail`). */
export interface StartedCli {
  /** Output so far. */
  stdout(): string;
  stderr(): string;
  /** Settles when the run ends. */
  readonly done: Promise<CliResult>;
}

/** Starts meshctl in this process without waiting for it to end. */
export function startCli(argv: readonly string[], options: RunCliOptions = {}): StartedCli {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: options.env ?? {},
    cwd: options.cwd ?? "/",
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  };
  const done = run(argv, io).then((code) => ({ code, stdout, stderr }));
  return { stdout: () => stdout, stderr: () => stderr, done };
}

/** Polls `check` every 50 ms until it returns true; fails after `timeoutMs` (default 30 s). */
export async function waitFor(
  check: () => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `expect.any(String)`, typed for object literals. */
export const anyString = expect.any(String) as unknown as string;

/** `expect.stringContaining(text)`, typed for object literals. */
export function containing(text: string): string {
  const matcher: unknown = expect.stringContaining(text);
  return matcher as string;
}

/** `expect.objectContaining(fields)`, typed for object literals. */
export function like<T extends object>(fields: T): T {
  const matcher: unknown = expect.objectContaining(fields);
  return matcher as T;
}
