import { MeshidError, isMeshidError, type ErrorKind } from "@meshid/errors";

/**
 * meshctl's exit codes. Scripts may rely on them; they are listed in `meshctl --help` and in
 * docs/meshctl.md.
 */
export const ExitCode = Object.freeze({
  /** Everything worked. */
  ok: 0,
  /** The server refused or failed the request (or one item of a batch failed). */
  failed: 1,
  /** Usage error: unknown command or flag, bad argument, bad context file. */
  usage: 2,
  /** The thing asked for does not exist. */
  notFound: 3,
  /** meshctl could not connect (socket missing, connection refused, NATS down). */
  cannotConnect: 4,
  /** The server denied the caller (not admin, no valid SVID). */
  permissionDenied: 5,
});

/** One of the {@link ExitCode} values. */
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Help text describing the exit codes (appended to `meshctl --help`). */
export const EXIT_CODES_HELP = [
  "Exit codes:",
  "  0  ok",
  "  1  the server refused or failed the request (or a batch item failed)",
  "  2  usage error (bad command, flag, argument or context file)",
  "  3  not found",
  "  4  cannot connect (socket missing, connection refused)",
  "  5  permission denied",
].join("\n");

/** Stable error code of usage errors found by meshctl itself (bad flags and arguments). */
export const USAGE_ERROR_CODE = "meshctl.usage";

/** Stable error code of connection failures (socket missing, refused, unreachable). */
export const CONNECT_ERROR_CODE = "meshctl.connect";

/**
 * Returns a usage error (exit code 2): a bad flag value, argument or context file, found before
 * anything was sent. meshctl prints it followed by "(add --help for usage)".
 */
export function usageError(message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", USAGE_ERROR_CODE, message, { cause });
}

/** Returns a "cannot connect" error (exit code 4) naming the address and what to try. */
export function connectError(message: string, cause?: unknown): MeshidError {
  return new MeshidError("unavailable", CONNECT_ERROR_CODE, message, { cause });
}

/**
 * Maps an error kind to the exit code: `not_found` → 3, `permission_denied` and
 * `unauthenticated` → 5, `unavailable` → 4 only for {@link CONNECT_ERROR_CODE} (a server that
 * answered "unavailable" failed the request → 1), everything else → 1.
 */
export function exitCodeForKind(kind: ErrorKind): ExitCodeValue {
  switch (kind) {
    case "not_found":
      return ExitCode.notFound;
    case "permission_denied":
    case "unauthenticated":
      return ExitCode.permissionDenied;
    default:
      return ExitCode.failed;
  }
}

/** Returns the exit code for an error thrown by a command. */
export function exitCodeForError(err: unknown): ExitCodeValue {
  if (!isMeshidError(err)) return ExitCode.failed;
  if (err.code === USAGE_ERROR_CODE) return ExitCode.usage;
  if (err.code === CONNECT_ERROR_CODE) return ExitCode.cannotConnect;
  // Client-side validation by the shared libraries (SPIFFE IDs, selectors, durations).
  if (err.code.startsWith("spiffe.") || err.code.startsWith("config.")) return ExitCode.usage;
  return exitCodeForKind(err.kind);
}
