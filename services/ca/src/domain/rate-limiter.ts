import type { Clock } from "../ports";

/** Parameters of {@link createRateLimiter}. */
export interface RateLimiterParams {
  /** Time source; tokens refill with this clock's time (tests use a fake clock). */
  readonly clock: Pick<Clock, "now">;
  /** Tokens added per second per key (> 0). */
  readonly perSecond: number;
  /** Bucket size: the most tokens a key can spend at once (≥ 1). */
  readonly burst: number;
  /**
   * Keys kept before idle (full) buckets are dropped. Default {@link DEFAULT_MAX_RATE_LIMIT_KEYS}.
   * A dropped bucket is full anyway, so dropping it changes no decision.
   */
  readonly maxKeys?: number;
}

/** Default {@link RateLimiterParams.maxKeys}. */
export const DEFAULT_MAX_RATE_LIMIT_KEYS = 10_000;

/** A token-bucket rate limiter with one bucket per key (e.g. per agent SPIFFE ID). */
export interface RateLimiter {
  /**
   * Takes `count` tokens from `key`'s bucket when it holds that many and returns true; takes
   * nothing and returns false otherwise (a request larger than the burst never passes).
   */
  tryTake(key: string, count: number): boolean;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

/**
 * Creates a token-bucket {@link RateLimiter}: each key starts with `burst` tokens and regains
 * `perSecond` per second of `clock` time, up to `burst`. Throws RangeError for a non-positive
 * rate or a burst below 1.
 */
export function createRateLimiter(params: RateLimiterParams): RateLimiter {
  const { clock, perSecond, burst } = params;
  if (!(perSecond > 0) || !Number.isFinite(perSecond)) {
    throw new RangeError("rate limit perSecond must be a positive number");
  }
  if (!(burst >= 1) || !Number.isFinite(burst)) {
    throw new RangeError("rate limit burst must be at least 1");
  }
  const maxKeys = params.maxKeys ?? DEFAULT_MAX_RATE_LIMIT_KEYS;
  const buckets = new Map<string, Bucket>();

  function refill(bucket: Bucket, nowMs: number): void {
    // A clock that steps back must not mint tokens (nor take them away).
    const elapsedMs = Math.max(0, nowMs - bucket.updatedMs);
    bucket.tokens = Math.min(burst, bucket.tokens + (elapsedMs / 1000) * perSecond);
    bucket.updatedMs = Math.max(bucket.updatedMs, nowMs);
  }

  function pruneFull(nowMs: number): void {
    for (const [key, bucket] of buckets) {
      refill(bucket, nowMs);
      if (bucket.tokens >= burst) buckets.delete(key);
    }
  }

  return {
    tryTake(key, count) {
      const nowMs = clock.now().getTime();
      let bucket = buckets.get(key);
      if (bucket === undefined) {
        if (buckets.size >= maxKeys) pruneFull(nowMs);
        bucket = { tokens: burst, updatedMs: nowMs };
        buckets.set(key, bucket);
      } else {
        refill(bucket, nowMs);
      }
      if (count > bucket.tokens) return false;
      bucket.tokens -= count;
      return true;
    },
  };
}
