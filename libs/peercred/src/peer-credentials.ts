import { constants as osConstants } from "node:os";
import { join } from "node:path";
import type { Socket } from "node:net";

import { MeshidError } from "@meshid/errors";

/** Credentials of the process on the other end of a Unix domain socket, as seen by the kernel. */
export interface PeerCredentials {
  /** Process id of the peer at the time it called `connect()` (or `socketpair()`). */
  readonly pid: number;
  /** Effective user id of the peer at connect time. */
  readonly uid: number;
  /** Effective group id of the peer at connect time. */
  readonly gid: number;
}

/** Stable error code thrown by {@link getPeerCredentials}. */
export const PEERCRED_UNAVAILABLE = "peercred.unavailable";

/** Shape of the native addon built from `src/peercred.c`. */
interface PeercredAddon {
  getPeerCred(fd: number): PeerCredentials;
}

/** The part of Node's internal socket handle we read; `fd` is -1 once closed. */
interface HandleWithFd {
  readonly fd?: unknown;
}

/** Path of the compiled addon: `build/` sits next to both `src/` (jest) and `dist/` (runtime). */
const ADDON_PATH = join(__dirname, "..", "build", "Release", "peercred.node");

let addon: PeercredAddon | undefined;

function loadAddon(): PeercredAddon {
  if (addon !== undefined) return addon;
  const addonModule = { exports: {} as Partial<PeercredAddon> };
  try {
    process.dlopen(addonModule, ADDON_PATH);
  } catch (cause) {
    throw new MeshidError(
      "unavailable",
      PEERCRED_UNAVAILABLE,
      `peercred native addon could not be loaded from ${ADDON_PATH}; run \`npm install\` at the repository root to build it with node-gyp`,
      { cause },
    );
  }
  const getPeerCred = addonModule.exports.getPeerCred;
  if (typeof getPeerCred !== "function") {
    throw new MeshidError(
      "unavailable",
      PEERCRED_UNAVAILABLE,
      `peercred native addon at ${ADDON_PATH} does not export getPeerCred`,
    );
  }
  addon = { getPeerCred };
  return addon;
}

function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) {
    if (value === errno) return name;
  }
  return `errno ${errno}`;
}

function socketFd(socket: Socket): number | undefined {
  // `_handle` is Node's internal Pipe/TCP wrap; it is not in the public typings.
  const handle = (socket as unknown as { _handle?: HandleWithFd | null })._handle;
  const fd = handle?.fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * Reads the kernel-verified credentials (pid, uid, gid) of the peer of a connected Unix domain
 * socket with `getsockopt(SO_PEERCRED)`. The values are those of the peer when it connected.
 * Linux only.
 *
 * @throws MeshidError `peercred.unavailable` (kind `unavailable`) when the socket has no file
 *   descriptor (not connected yet, destroyed, or not backed by an fd), is not a Unix domain
 *   socket (e.g. TCP), when `getsockopt` fails (the message includes the errno name and text),
 *   or when the native addon has not been built.
 */
export function getPeerCredentials(socket: Socket): PeerCredentials {
  const fd = socketFd(socket);
  if (fd === undefined) {
    throw new MeshidError(
      "unavailable",
      PEERCRED_UNAVAILABLE,
      "cannot read peer credentials: the socket has no file descriptor (not connected, already destroyed, or not an OS socket)",
    );
  }
  const native = loadAddon();
  try {
    const { pid, uid, gid } = native.getPeerCred(fd);
    return { pid, uid, gid };
  } catch (cause) {
    const errno = (cause as { errno?: unknown }).errno;
    const syscall = (cause as { syscall?: unknown }).syscall;
    const text = cause instanceof Error ? cause.message : String(cause);
    if (errno === osConstants.errno.EAFNOSUPPORT && syscall === "getsockname") {
      throw new MeshidError(
        "unavailable",
        PEERCRED_UNAVAILABLE,
        "cannot read peer credentials: the socket is not a Unix domain socket (SO_PEERCRED needs AF_UNIX)",
        { cause, details: { fd } },
      );
    }
    const name = typeof errno === "number" ? errnoName(errno) : "unknown error";
    const call = typeof syscall === "string" ? syscall : "getsockopt";
    throw new MeshidError(
      "unavailable",
      PEERCRED_UNAVAILABLE,
      `cannot read peer credentials: ${call}(fd ${fd}) failed: ${name}: ${text}`,
      { cause, details: { fd, ...(typeof errno === "number" ? { errno } : {}) } },
    );
  }
}
