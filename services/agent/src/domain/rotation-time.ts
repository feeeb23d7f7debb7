/** Share of an SVID's lifetime after which the agent re-mints it. */
export const ROTATION_LIFETIME_FRACTION = 0.5;
/** Jitter around the rotation point, as a fraction of half the lifetime (± 10 %). */
export const ROTATION_JITTER_FRACTION = 0.1;

/** Parameters of {@link computeRotateAt}. */
export interface ComputeRotateAtParams {
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** A number in [0, 1); 0.5 means no jitter. */
  readonly random: number;
}

/**
 * Computes when an SVID is re-minted: `notBefore` plus half its lifetime, moved by up to ± 10 %
 * of that half-life (`random` 0 → −10 %, 0.5 → exact half-life, → 1 → +10 %). Never before
 * `notBefore`; never after `notAfter`. A zero or negative lifetime rotates at `notBefore`.
 */
export function computeRotateAt(params: ComputeRotateAtParams): Date {
  const start = params.notBefore.getTime();
  const lifetimeMs = Math.max(0, params.notAfter.getTime() - start);
  const halfMs = lifetimeMs * ROTATION_LIFETIME_FRACTION;
  const r = Math.min(1, Math.max(0, params.random));
  const jitterMs = halfMs * ROTATION_JITTER_FRACTION * (2 * r - 1);
  return new Date(start + Math.round(halfMs + jitterMs));
}

/** Parameters of {@link computeRetryDelayMs}. */
export interface ComputeRetryDelayMsParams {
  /** Failed attempts so far (1 after the first failure). */
  readonly attempts: number;
  readonly minMs: number;
  readonly maxMs: number;
  /** A number in [0, 1): the delay is scaled by 0.5 + random / 2 (full jitter would be too wide). */
  readonly random: number;
}

/**
 * Computes an exponential retry delay in milliseconds: `minMs · 2^(attempts − 1)` capped at
 * `maxMs`, then scaled into [50 %, 100 %) by `random`, and never below `minMs / 2`.
 */
export function computeRetryDelayMs(params: ComputeRetryDelayMsParams): number {
  const exponent = Math.min(30, Math.max(0, params.attempts - 1));
  const base = Math.min(params.maxMs, params.minMs * 2 ** exponent);
  const r = Math.min(1, Math.max(0, params.random));
  return Math.max(1, Math.round(base * (0.5 + r / 2)));
}
