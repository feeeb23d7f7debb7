import { type Span } from "@opentelemetry/api";
import { type EventSubscriptionStats } from "./malformed-reporter";

/** An event as produced by a consumer loop, with the CONSUMER span that covers its handling. */
export interface TracedEvent<T> {
  /** The event handed to the caller. */
  readonly event: T;
  /** Span of the event; {@link createEventIterable} ends it (so it may already be ended). */
  readonly span: Span;
}

/** Parameters of {@link createEventIterable}. */
export interface CreateEventIterableParams<T> {
  /** Message of the error thrown when the result is iterated a second time. */
  iterateTwiceMessage: string;
  /** Produces the events; it should end when `close` has been called. */
  events: () => AsyncIterable<TracedEvent<T>>;
  /** Stops the source (unsubscribe, end pulls). Called on abort and when iteration stops. */
  close: () => Promise<void>;
  /** Delivered and malformed counts so far. */
  stats: () => EventSubscriptionStats;
  /** Calls `close` when aborted; also at once when already aborted. */
  signal?: AbortSignal;
}

/** An async iterable of events that can be iterated once, closed and asked for stats. */
export interface EventIterable<T> extends AsyncIterable<T> {
  /** Stops the source and ends the iteration. */
  close(): Promise<void>;
  /** Delivered and malformed counts so far. */
  stats(): EventSubscriptionStats;
}

/**
 * Turns a consumer loop into the handle that subscribeEvents and consumeEventsDurable return:
 * iterable once (a second iteration throws an Error with `iterateTwiceMessage`), closed when
 * `signal` aborts. Each event's span ends when the caller asks for the next event or stops;
 * when the iteration stops for any reason (end, break, throw), the abort listener is removed
 * and `close` is awaited.
 */
export function createEventIterable<T>(params: CreateEventIterableParams<T>): EventIterable<T> {
  const { signal, close } = params;
  const onAbort = (): void => void close();
  signal?.addEventListener("abort", onAbort, { once: true });
  if (signal?.aborted === true) void close();

  async function* iterate(): AsyncGenerator<T> {
    let span: Span | undefined;
    try {
      for await (const traced of params.events()) {
        span = traced.span;
        yield traced.event;
        span.end();
        span = undefined;
      }
    } finally {
      span?.end();
      signal?.removeEventListener("abort", onAbort);
      await close();
    }
  }

  let iterating = false;
  return {
    [Symbol.asyncIterator]() {
      if (iterating) throw new Error(params.iterateTwiceMessage);
      iterating = true;
      return iterate();
    },
    close,
    stats: params.stats,
  };
}
