// The trust bundle as the notifier handles it, and which CA answer may replace the one held.

/** A trust bundle of the CA, in the forms the targets write. */
export interface NotifierBundle {
  readonly trustDomain: string;
  /** Grows by one on every change of the CA's bundle. */
  readonly sequenceNumber: number;
  /** The X.509 authorities as concatenated PEM CERTIFICATE blocks. */
  readonly pem: string;
  /** The SPIFFE bundle (JWKS JSON). */
  readonly spiffeJwks: string;
}

/**
 * Where a bundle came from: the first message of a freshly opened WatchBundle stream (the CA's
 * current state), a later stream message, or a GetBundle after a `bundle.updated` wake-up.
 */
export type BundleOrigin = "stream-open" | "stream" | "fetch";

/**
 * Whether `next` replaces `current`. A newly opened stream states the CA's present bundle and
 * always wins (even with a lower sequence: a CA whose store was reset starts again at 1).
 * Otherwise only a higher sequence wins, so a GetBundle answer that raced a stream message
 * never takes the notifier back to an older bundle.
 */
export function shouldAcceptBundle(
  current: NotifierBundle | undefined,
  next: NotifierBundle,
  origin: BundleOrigin,
): boolean {
  if (current === undefined) return true;
  if (origin === "stream-open") {
    return next.sequenceNumber !== current.sequenceNumber || next.pem !== current.pem;
  }
  return next.sequenceNumber > current.sequenceNumber;
}
