import { releaseFreedMemory, type MemoryReleaseResult } from "./release";

/** Options of {@link createMemoryReleaser}. */
export interface MemoryReleaserOptions {
  /**
   * Units of work (e.g. SVIDs minted) that make a release worth its full GC; less work since
   * the last release never triggers one. At least 1.
   */
  readonly minWork: number;
  /** Quiet time after the last work before releasing, in ms (at least 1). */
  readonly quietMs: number;
  /** Called after each release with what it did and the work it followed. */
  readonly onRelease?: (result: MemoryReleaseResult, work: number) => void;
  /** Called when a release throws (it should not); the releaser carries on. */
  readonly onError?: (err: unknown) => void;
  /** The release to run. Default {@link releaseFreedMemory}. */
  readonly release?: () => Promise<MemoryReleaseResult>;
}

/** Counters of a {@link MemoryReleaser}. */
export interface MemoryReleaserStats {
  /** Work noted since the last release. */
  readonly pendingWork: number;
  /** Releases run. */
  readonly releases: number;
  /** Sum of the resident-set drops of all releases, in bytes (a growth counts as 0). */
  readonly releasedBytes: number;
}

/** Releases freed memory once a burst of work is over (see {@link createMemoryReleaser}). */
export interface MemoryReleaser {
  /** Notes `units` of work done now (postpones a due release by the quiet time). */
  noteWork(units: number): void;
  stats(): MemoryReleaserStats;
  /** Cancels a pending release; later work is ignored. */
  close(): void;
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be an integer ≥ 1, got ${String(value)}`);
  }
}

/**
 * Runs {@link releaseFreedMemory} when at least `minWork` units of work were noted and none
 * for `quietMs`: once per burst, after it, never in the middle. The timer does not keep the
 * process alive.
 */
export function createMemoryReleaser(options: MemoryReleaserOptions): MemoryReleaser {
  checkPositiveInteger("minWork", options.minWork);
  checkPositiveInteger("quietMs", options.quietMs);
  const release = options.release ?? releaseFreedMemory;
  let pendingWork = 0;
  let releases = 0;
  let releasedBytes = 0;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  let releasing = false;

  async function fire(): Promise<void> {
    timer = undefined;
    if (closed || pendingWork < options.minWork) return;
    if (releasing) {
      // Work arrived during a release: look again after another quiet time.
      arm();
      return;
    }
    const work = pendingWork;
    pendingWork = 0;
    releasing = true;
    try {
      const result = await release();
      releases++;
      releasedBytes += Math.max(0, result.rssBeforeBytes - result.rssAfterBytes);
      options.onRelease?.(result, work);
    } catch (err) {
      options.onError?.(err);
    } finally {
      releasing = false;
    }
  }

  function arm(): void {
    if (timer === undefined) {
      timer = setTimeout(() => void fire(), options.quietMs);
      timer.unref();
    } else {
      timer.refresh();
    }
  }

  return {
    noteWork(units) {
      if (closed || !(units > 0)) return;
      pendingWork += units;
      if (pendingWork < options.minWork) return;
      arm();
    },
    stats: () => ({ pendingWork, releases, releasedBytes }),
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}
