// Interfaces the bundle-notifier's domain needs from the outside world; adapters implement them.
import type { EventPayload } from "@meshid/events";
import type { NotifierBundle } from "./domain/bundle";

/** The CA's BundleService as the notifier uses it. */
export interface CaBundleClient {
  /** The current bundle at once, then every change, until `signal` aborts or the stream fails. */
  watchBundle(signal: AbortSignal): AsyncIterable<NotifierBundle>;
  /** The current bundle (one call with a deadline). */
  getBundle(signal?: AbortSignal): Promise<NotifierBundle>;
  /** Closes the connection; calls in flight fail. */
  close(): void;
}

/** One object a target wrote (it changed). */
export interface TargetWrite {
  /**
   * What was written, as carried by `bundle.published`: `configmap/<ns>/<name>`,
   * `webhook/validating/<name>`, `webhook/mutating/<name>`, `apiservice/<name>` or
   * `file:<path>`.
   */
  readonly target: string;
}

/** A place the bundle is written to. Every apply is idempotent: nothing is written when equal. */
export interface BundleTarget {
  /** Stable name for logs, metrics and health (`configmap/meshid/meshid-bundle`, `webhooks`, …). */
  readonly name: string;
  /**
   * Brings the target up to `bundle`, writing only what differs; resolves with what was written
   * (empty when everything was already current).
   * @throws on a failure that a later retry may fix (API server down, conflicts exhausted, I/O).
   */
  apply(bundle: NotifierBundle, signal: AbortSignal): Promise<readonly TargetWrite[]>;
}

/** Publishes `bundle.published` events. */
export interface BundlePublishedSink {
  publish(payload: EventPayload<"bundle.published">): Promise<void>;
}

/** Time, injectable so retries and resyncs are tested without sleeping. */
export interface Clock {
  now(): Date;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}
