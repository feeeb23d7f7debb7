/** Where a meshctl run reads its environment and writes its output. */
export interface CliIo {
  /** Standard output: results (tables, JSON, PEM). */
  readonly stdout: { write(text: string): unknown };
  /** Standard error: errors, warnings, hints. */
  readonly stderr: { write(text: string): unknown };
  /** Environment variables (`MESHCTL_*`, `SPIFFE_ENDPOINT_SOCKET`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory relative paths resolve against (default context file location). */
  readonly cwd: string;
  /** Ends long-running commands (`events tail`) when aborted (Ctrl-C in the real process). */
  readonly signal?: AbortSignal;
}

/** The {@link CliIo} of the real process. */
export function processIo(signal?: AbortSignal): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    ...(signal === undefined ? {} : { signal }),
  };
}
