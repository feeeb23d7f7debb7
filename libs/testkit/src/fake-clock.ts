/**
 * A clock whose time only moves when a test says so. It has the shape of the `Clock` port of
 * meshid services (`now()`, `sleep(ms, signal?)`), so time-based logic such as CA rotation is
 * tested without ever sleeping for real.
 *
 * Like a real clock it keeps two notions of time: the wall time that `now()` returns, and the
 * elapsed time that sleeps wait for. {@link FakeClock.advance} moves both;
 * {@link FakeClock.set} moves only the wall time (a clock jump: pending sleeps keep waiting
 * for their full duration, as `setTimeout` does).
 */
export interface FakeClock {
  /** The current fake wall time (a fresh Date on every call). */
  now(): Date;
  /**
   * Resolves once the clock has been advanced by `ms` milliseconds (0 or less: at the next
   * microtask). Rejects with the signal's reason when `signal` aborts (at once when it
   * already has).
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Moves time forward by `ms` milliseconds, resolving the sleeps that fall due in the order
   * of their due times. Each time a sleep is resolved, now() reads its due time, and the
   * code it wakes runs before the next one is resolved; a sleep started by woken code that
   * falls due within the same advance is resolved by it too. Throws a RangeError for a
   * negative or non-finite `ms`.
   */
  advance(ms: number): Promise<void>;
  /** Sets the wall time to `date` (forward or backward) without waking any sleep. */
  set(date: Date): void;
  /** How many sleeps are pending. */
  pendingSleeps(): number;
  /**
   * Resolves when at least `count` (default 1) sleeps are pending: lets a test wait until a
   * loop driven by the clock has finished its work and gone back to sleep.
   */
  whenSleeping(count?: number): Promise<void>;
}

interface Sleeper {
  readonly dueElapsedMs: number;
  readonly order: number;
  readonly resolve: () => void;
}

interface SleepWaiter {
  readonly count: number;
  readonly resolve: () => void;
}

/** Lets the continuations of resolved promises (and their own awaits) run. */
function flushMicrotasksAndIo(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Creates a {@link FakeClock} whose wall time starts at `start` and whose elapsed time starts
 * at 0. Throws a RangeError when `start` is not a valid Date.
 */
export function createFakeClock(start: Date): FakeClock {
  if (!(start instanceof Date) || !Number.isFinite(start.getTime())) {
    throw new RangeError("createFakeClock: start must be a valid Date");
  }
  let wallMs = start.getTime();
  let elapsedMs = 0;
  let order = 0;
  const sleepers: Sleeper[] = [];
  const waiters: SleepWaiter[] = [];

  function notifyWaiters(): void {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i] as SleepWaiter;
      if (sleepers.length >= w.count) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  function nextDue(limitElapsedMs: number): Sleeper | undefined {
    let best: Sleeper | undefined;
    for (const s of sleepers) {
      if (s.dueElapsedMs > limitElapsedMs) continue;
      if (
        best === undefined ||
        s.dueElapsedMs < best.dueElapsedMs ||
        (s.dueElapsedMs === best.dueElapsedMs && s.order < best.order)
      ) {
        best = s;
      }
    }
    return best;
  }

  function moveTo(targetElapsedMs: number): void {
    if (targetElapsedMs > elapsedMs) {
      wallMs += targetElapsedMs - elapsedMs;
      elapsedMs = targetElapsedMs;
    }
  }

  return {
    now: () => new Date(wallMs),
    sleep(ms: number, signal?: AbortSignal): Promise<void> {
      if (signal?.aborted === true) return Promise.reject(signal.reason as Error);
      if (!(ms > 0)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const i = sleepers.indexOf(sleeper);
          if (i >= 0) sleepers.splice(i, 1);
          reject(signal?.reason as Error);
        };
        const sleeper: Sleeper = {
          dueElapsedMs: elapsedMs + ms,
          order: order++,
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        sleepers.push(sleeper);
        notifyWaiters();
      });
    },
    async advance(ms: number): Promise<void> {
      if (!Number.isFinite(ms) || ms < 0) {
        throw new RangeError("advance: ms must be a finite number ≥ 0");
      }
      const targetElapsedMs = elapsedMs + ms;
      // Let code that is about to sleep register first (e.g. a loop between two awaits).
      await flushMicrotasksAndIo();
      for (;;) {
        const due = nextDue(targetElapsedMs);
        if (due === undefined) break;
        sleepers.splice(sleepers.indexOf(due), 1);
        moveTo(due.dueElapsedMs);
        due.resolve();
        await flushMicrotasksAndIo();
      }
      moveTo(targetElapsedMs);
    },
    set(date: Date): void {
      if (!(date instanceof Date) || !Number.isFinite(date.getTime())) {
        throw new RangeError("set: date must be a valid Date");
      }
      wallMs = date.getTime();
    },
    pendingSleeps: () => sleepers.length,
    whenSleeping(count = 1): Promise<void> {
      if (sleepers.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
  };
}
