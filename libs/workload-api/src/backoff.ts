/** Capped exponential backoff with jitter, used between Workload API reconnects. */
export interface BackoffOptions {
  /** Delay before the first retry, in milliseconds. Default {@link DEFAULT_BACKOFF_INITIAL_MS}. */
  readonly initialMs?: number;
  /** Upper bound of any delay, in milliseconds. Default {@link DEFAULT_BACKOFF_MAX_MS}. */
  readonly maxMs?: number;
  /** Random source in [0, 1). Default `Math.random` (tests pass a constant). */
  readonly random?: () => number;
}

/** Default first retry delay: 200 ms. */
export const DEFAULT_BACKOFF_INITIAL_MS = 200;
/** Default cap of retry delays: 10 s. */
export const DEFAULT_BACKOFF_MAX_MS = 10_000;

/**
 * Returns the delay before retry number `attempt` (0 = first retry): `initialMs · 2^attempt`,
 * capped at `maxMs`, then "equal jitter" (a random value between half of it and all of it), so
 * sidecars restarted together do not reconnect in lock step yet never retry in a tight loop.
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}): number {
  const initial = Math.max(1, options.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS);
  const max = Math.max(initial, options.maxMs ?? DEFAULT_BACKOFF_MAX_MS);
  const exponent = Math.min(Math.max(0, attempt), 30);
  const capped = Math.min(max, initial * 2 ** exponent);
  const random = (options.random ?? Math.random)();
  return Math.round(capped / 2 + (capped / 2) * Math.min(Math.max(random, 0), 1));
}
