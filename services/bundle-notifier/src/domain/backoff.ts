// Capped exponential backoff with jitter, shared by the CA stream and the target retries.

/** Parameters of {@link backoffDelayMs}. */
export interface BackoffDelayParams {
  /** 0 for the first retry, 1 for the second, … */
  readonly attempt: number;
  /** Delay of the first retry before jitter, in milliseconds. */
  readonly initialMs: number;
  /** Cap of the delay before jitter, in milliseconds. */
  readonly maxMs: number;
  /** A number in [0, 1); default `Math.random`. */
  readonly random?: () => number;
}

/**
 * The delay before retry number `attempt + 1`: `min(maxMs, initialMs · 2^attempt)`, of which
 * the upper half is random ("equal jitter"), so replicas that failed together do not retry in
 * lock-step yet never retry sooner than half the nominal delay.
 */
export function backoffDelayMs(params: BackoffDelayParams): number {
  const random = params.random ?? Math.random;
  const exponent = Math.min(Math.max(0, Math.floor(params.attempt)), 30);
  const nominal = Math.min(params.maxMs, params.initialMs * 2 ** exponent);
  const half = nominal / 2;
  return Math.round(half + random() * half);
}
