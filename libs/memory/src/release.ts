import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/** What one {@link releaseFreedMemory} did. */
export interface MemoryReleaseResult {
  /** Resident set size just before, in bytes. */
  readonly rssBeforeBytes: number;
  /** Resident set size just after, in bytes. */
  readonly rssAfterBytes: number;
  /** Duration of the full garbage collection, in ms (0 when none ran). */
  readonly gcMs: number;
  /** Duration of the allocator trim, in ms (0 when none ran). */
  readonly trimMs: number;
  /** True when the C allocator gave memory back to the operating system. */
  readonly trimmed: boolean;
}

/** What this process can do to give memory back. */
export interface MemoryReleaseSupport {
  /** A full garbage collection can be requested. */
  readonly gc: boolean;
  /** The C allocator can be trimmed (glibc's malloc_trim through the addon). */
  readonly trim: boolean;
  /** Why trimming is not available, when it is not. */
  readonly reason?: string;
}

/** Shape of the native addon built from `src/memory.c`. */
interface MemoryAddon {
  trim(): boolean;
  readonly supported: boolean;
}

/** Path of the compiled addon: `build/` sits next to both `src/` (jest) and `dist/` (runtime). */
const ADDON_PATH = join(__dirname, "..", "build", "Release", "memory.node");

let addon: MemoryAddon | string | undefined;

/** The addon, or why it cannot be used (loaded once). */
function loadAddon(): MemoryAddon | string {
  if (addon !== undefined) return addon;
  const addonModule = { exports: {} as Partial<MemoryAddon> };
  try {
    process.dlopen(addonModule, ADDON_PATH);
    const { trim, supported } = addonModule.exports;
    if (typeof trim !== "function") {
      addon = `the addon at ${ADDON_PATH} does not export trim`;
    } else if (supported !== true) {
      addon = "the C library has no malloc_trim (not glibc)";
    } else {
      addon = { trim, supported };
    }
  } catch (err) {
    addon =
      `the addon could not be loaded from ${ADDON_PATH} (${(err as Error).message}); ` +
      "run `npm install` at the repository root to build it with node-gyp";
  }
  return addon;
}

let gcFunction: (() => void) | null | undefined;

/**
 * V8's full garbage collection: `globalThis.gc` when the process runs with `--expose-gc`,
 * else the function exposed for a moment to a new context (the flag is switched off again at
 * once, so the global object of this and later contexts stays as it was).
 */
function fullGc(): (() => void) | null {
  if (gcFunction !== undefined) return gcFunction;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === "function") {
    gcFunction = exposed as () => void;
    return gcFunction;
  }
  try {
    setFlagsFromString("--expose-gc");
    const fn: unknown = runInNewContext("gc");
    gcFunction = typeof fn === "function" ? (fn as () => void) : null;
  } catch {
    gcFunction = null;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
  return gcFunction;
}

/**
 * Runs a full garbage collection now (blocking), when this process can: see
 * {@link releaseFreedMemory} for giving the memory back as well. Returns whether one ran.
 */
export function collectGarbage(): boolean {
  const gc = fullGc();
  gc?.();
  return gc !== null;
}

/** What {@link releaseFreedMemory} can do in this process. */
export function memoryReleaseSupport(): MemoryReleaseSupport {
  const loaded = loadAddon();
  const gc = fullGc() !== null;
  return typeof loaded === "string" ? { gc, trim: false, reason: loaded } : { gc, trim: true };
}

/**
 * How long the trim waits after the collection, in ms: V8 frees the backing stores of dead
 * ArrayBuffers on a background thread after the collection, so an immediate trim would find
 * them not yet freed (measured: about half the gain was lost that way).
 */
export const TRIM_AFTER_GC_MS = 250;

/**
 * Gives memory this process no longer uses back to the operating system: a full garbage
 * collection first (so buffers that died during the burst free their malloc'd backing
 * stores), then, {@link TRIM_AFTER_GC_MS} later, `malloc_trim(0)`, which returns every whole
 * free page of every allocator arena. The collection blocks the event loop (milliseconds to
 * tens of milliseconds on a heap of tens of MiB), so call it when the work is over, not per
 * request: see {@link createMemoryReleaser}. Never rejects: without the addon it only
 * collects.
 */
export async function releaseFreedMemory(
  options: { readonly trimAfterGcMs?: number } = {},
): Promise<MemoryReleaseResult> {
  const rssBeforeBytes = process.memoryUsage.rss();
  const gc = fullGc();
  let gcMs = 0;
  if (gc !== null) {
    const t0 = performance.now();
    gc();
    gcMs = performance.now() - t0;
  }
  const loaded = loadAddon();
  let trimMs = 0;
  let trimmed = false;
  if (typeof loaded !== "string") {
    await delay(options.trimAfterGcMs ?? TRIM_AFTER_GC_MS, undefined, { ref: false });
    const t0 = performance.now();
    trimmed = loaded.trim();
    trimMs = performance.now() - t0;
  }
  return { rssBeforeBytes, rssAfterBytes: process.memoryUsage.rss(), gcMs, trimMs, trimmed };
}
