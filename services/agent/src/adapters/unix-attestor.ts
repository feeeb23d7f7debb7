import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { open, readFile, readlink, stat } from "node:fs/promises";
import { join } from "node:path";
import { MeshidError } from "@meshid/errors";
import { normalizeSelectors, type Selector } from "@meshid/spiffe";
import { groupNamesById, userNamesById } from "../domain/passwd";
import { parseProcStatus } from "../domain/proc-status";
import type { WorkloadProcess } from "../domain/types";
import type { WorkloadAttestor } from "../ports";

/** Error code when the process left `/proc` during attestation. */
export const PROCESS_GONE_CODE = "agent.attestation.process_gone";

/** Default of {@link CreateUnixAttestorParams.sha256}`.maxBytes`: 256 MiB. */
export const DEFAULT_SHA256_MAX_BYTES = 256 * 1024 * 1024;

/** Parameters of {@link createUnixAttestor}. */
export interface CreateUnixAttestorParams {
  /** Where `/proc` is mounted. Default `/proc`. */
  readonly procRoot?: string;
  /** Where `passwd` and `group` are read for names. Default `/etc`. */
  readonly etcRoot?: string;
  /** Emit `unix:path:<abs>` (the target of `<procRoot>/<pid>/exe`). Default false. */
  readonly path?: boolean;
  /**
   * Emit `unix:sha256:<hex>` of the executable, read through `<procRoot>/<pid>/exe` (the very
   * file the process runs, even if replaced or deleted since). Default disabled; `maxBytes`
   * defaults to {@link DEFAULT_SHA256_MAX_BYTES}.
   */
  readonly sha256?: { readonly enabled: boolean; readonly maxBytes?: number };
}

function errnoOf(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String(err.code) : undefined;
}

/**
 * Maps a failed `/proc/<pid>/…` access: ENOENT/ESRCH = the process is gone
 * (`permission_denied` / `agent.attestation.process_gone`), anything else
 * `failed_precondition` / `agent.attestation.proc_unreadable`.
 */
export function procReadError(err: unknown, pid: number, what: string): MeshidError {
  if (err instanceof MeshidError) return err;
  const errno = errnoOf(err);
  if (errno === "ENOENT" || errno === "ESRCH") {
    return new MeshidError("permission_denied", PROCESS_GONE_CODE, `process ${pid} is gone`, {
      cause: err,
      details: { pid },
    });
  }
  return new MeshidError(
    "failed_precondition",
    "agent.attestation.proc_unreadable",
    `cannot read ${what} of process ${pid} (${errno ?? "error"})`,
    { cause: err, details: { pid } },
  );
}

/**
 * A file modified this recently (ms) is read on every call: file times have the kernel's tick
 * granularity, so a same-size edit in the same tick as our read would look unchanged (the
 * "racy git" problem).
 */
export const CACHED_FILE_RACY_MS = 2_000;

/** A file parsed once and again only when it changes; {@link CachedFile.get} is cheap. */
export interface CachedFile<T> {
  /**
   * The parsed content, or undefined when the file does not exist. Stats the file on every call
   * and re-reads it only when its device, inode, size, mtime or ctime changed, or when it was
   * modified within {@link CACHED_FILE_RACY_MS}; so an edited or replaced file is seen at the
   * next call. Concurrent calls share one read.
   */
  get(): Promise<T | undefined>;
}

/** Creates a {@link CachedFile} of `path` parsed with `parse`. */
export function createCachedFile<T>(
  path: string,
  parse: (text: string) => T,
  nowMs: () => number = Date.now,
): CachedFile<T> {
  let cached: { readonly key: string; readonly value: T } | undefined;
  let loading: { readonly key: string; readonly promise: Promise<T> } | undefined;
  return {
    async get() {
      let key: string;
      let racy: boolean;
      try {
        const info = await stat(path, { bigint: true });
        key = `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}`;
        racy = nowMs() - Number(info.mtimeMs) < CACHED_FILE_RACY_MS;
      } catch (err) {
        if (errnoOf(err) !== "ENOENT") throw err;
        cached = undefined;
        return undefined;
      }
      if (!racy && cached?.key === key) return cached.value;
      if (racy || loading?.key !== key) {
        const promise = readFile(path, "utf8").then(parse);
        const current = { key, promise };
        loading = current;
        promise.then(
          (value) => {
            if (loading === current) loading = undefined;
            cached = racy ? undefined : { key, value };
          },
          () => {
            if (loading === current) loading = undefined;
          },
        );
      }
      try {
        return await loading.promise;
      } catch (err) {
        // Deleted between the stat and the read.
        if (errnoOf(err) === "ENOENT") return undefined;
        throw err;
      }
    },
  };
}

async function hashFile(
  file: string,
  maxBytes: number,
  pid: number,
  signal?: AbortSignal,
): Promise<string> {
  const handle = await open(file, "r");
  try {
    const hash = createHash("sha256");
    const buf = Buffer.alloc(1024 * 1024);
    let total = 0;
    for (;;) {
      signal?.throwIfAborted();
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) {
        throw new MeshidError(
          "failed_precondition",
          "agent.attestation.binary_too_large",
          `executable of process ${pid} exceeds the ${maxBytes}-byte hashing limit`,
          { details: { pid, maxBytes } },
        );
      }
      hash.update(buf.subarray(0, bytesRead));
    }
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
}

/**
 * Creates the `unix` workload attestor (SPIRE's unix plugin): `unix:uid:<n>` and
 * `unix:gid:<n>` from the peer credentials (the kernel's SO_PEERCRED word), `unix:user:<name>`
 * and `unix:group:<name>` when `<etcRoot>/passwd` / `group` name them (parsed once, re-read
 * when the file changes: see {@link createCachedFile}),
 * `unix:supplementary_gid:<n>` for each gid of the `Groups:` line of `<procRoot>/<pid>/status`,
 * and optionally `unix:path:<abs>` and `unix:sha256:<hex>`; deduplicated and sorted.
 *
 * `attest` throws MeshidError `permission_denied` / `agent.attestation.process_gone` when the
 * process vanished, `failed_precondition` / `agent.attestation.proc_unreadable` when `/proc`
 * cannot be read, and `failed_precondition` / `agent.attestation.binary_too_large` when the
 * executable exceeds the hashing limit.
 */
export function createUnixAttestor(params: CreateUnixAttestorParams = {}): WorkloadAttestor {
  const procRoot = params.procRoot ?? "/proc";
  const etcRoot = params.etcRoot ?? "/etc";
  const sha256 = params.sha256?.enabled === true;
  const maxBytes = params.sha256?.maxBytes ?? DEFAULT_SHA256_MAX_BYTES;
  const passwd = createCachedFile(join(etcRoot, "passwd"), userNamesById);
  const group = createCachedFile(join(etcRoot, "group"), groupNamesById);

  return {
    type: "unix",
    async attest(process: WorkloadProcess, signal?: AbortSignal): Promise<Selector[]> {
      signal?.throwIfAborted();
      const pidDir = join(procRoot, String(process.pid));
      const sel = (value: string): Selector => ({ type: "unix", value });
      const out: Selector[] = [sel(`uid:${process.uid}`), sel(`gid:${process.gid}`)];

      // procfs is in memory: a synchronous read costs microseconds, the thread pool far more.
      let statusText: string;
      try {
        statusText = readFileSync(join(pidDir, "status"), "utf8");
      } catch (err) {
        throw procReadError(err, process.pid, "status");
      }
      const status = parseProcStatus(statusText);
      for (const gid of status.groups) out.push(sel(`supplementary_gid:${gid}`));

      const [users, groups] = await Promise.all([passwd.get(), group.get()]);
      const user = users?.get(process.uid);
      const groupName = groups?.get(process.gid);
      if (user !== undefined) out.push(sel(`user:${user}`));
      if (groupName !== undefined) out.push(sel(`group:${groupName}`));

      if (params.path === true || sha256) {
        const exe = join(pidDir, "exe");
        if (params.path === true) {
          try {
            out.push(sel(`path:${await readlink(exe)}`));
          } catch (err) {
            throw procReadError(err, process.pid, "exe");
          }
        }
        if (sha256) {
          try {
            out.push(sel(`sha256:${await hashFile(exe, maxBytes, process.pid, signal)}`));
          } catch (err) {
            if (signal?.aborted === true) throw err;
            throw procReadError(err, process.pid, "exe");
          }
        }
      }
      return normalizeSelectors(out);
    },
  };
}
