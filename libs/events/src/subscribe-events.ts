import { trace } from "@opentelemetry/api";
import { type Msg, type NatsConnection, type Subscription } from "nats";
import { EVENT_CATALOG, EVENT_TYPES, type EventType } from "./catalog";
import { decodeEventMessage, type ReceivedEvent } from "./decode-event";
import { createEventIterable, type TracedEvent } from "./event-iterable";
import {
  createConsumerInstruments,
  type EventConsumerObservability,
  type EventSubscriptionStats,
} from "./malformed-reporter";
import { ALL_AGENT_WAKEUPS_SUBJECT, ALL_EVENTS_SUBJECT } from "./subjects";

/** Parameters of {@link subscribeEvents}. */
export interface SubscribeEventsParams<K extends EventType> extends EventConsumerObservability {
  /** Connected NATS client. */
  nc: NatsConnection;
  /** Event types to receive, or "all" (subject `meshid.v1.>`). */
  types: readonly K[] | "all";
  /** Queue group: each event goes to one member of the group. */
  queue?: string;
  /**
   * NATS subject to subscribe to instead of the catalog subjects; an agent passes
   * agentWakeupSubject(its own ID). Events whose type is not in `types` are dropped.
   */
  natsSubject?: string;
  /** Ends the subscription when aborted. */
  signal?: AbortSignal;
}

/** A live core-NATS subscription to meshid events. Iterate it once. */
export interface EventSubscription<K extends EventType> extends AsyncIterable<ReceivedEvent<K>> {
  /** Unsubscribes and ends the iteration. Safe to call twice. */
  close(): Promise<void>;
  /** Delivered and malformed counts so far. */
  stats(): EventSubscriptionStats;
}

/** NATS subjects that carry the given event types. */
export function subjectsForTypes(types: readonly EventType[] | "all"): string[] {
  if (types === "all") return [ALL_EVENTS_SUBJECT];
  const subjects = new Set<string>();
  for (const type of types) {
    const def = EVENT_CATALOG[type];
    subjects.add(def.perAgent ? ALL_AGENT_WAKEUPS_SUBJECT : def.subject);
  }
  return [...subjects];
}

/**
 * Subscribes (core NATS, at-most-once) to meshid events and yields them typed, with their
 * envelope validated. Malformed messages are skipped, counted (`stats().malformed`, metric
 * `meshid.events.malformed`), logged and passed to `onMalformed`; they never end the loop.
 * Each yielded event gets a CONSUMER span (`process <subject>`, child of the publisher's span
 * from `traceparent`) that ends when the loop asks for the next event or stops; handle the event
 * inside `context.with(event.traceContext, …)` to parent your own spans on it.
 * Messages are buffered in memory while the loop is busy (core NATS has no back-pressure).
 */
export function subscribeEvents<K extends EventType>(
  params: SubscribeEventsParams<K> & { types: readonly K[] },
): EventSubscription<K>;
export function subscribeEvents(
  params: SubscribeEventsParams<EventType> & { types: "all" },
): EventSubscription<EventType>;
export function subscribeEvents<K extends EventType>(
  params: SubscribeEventsParams<K>,
): EventSubscription<K> {
  const { nc, types, queue, signal } = params;
  const wanted = new Set<EventType>(types === "all" ? EVENT_TYPES : types);
  const subjects =
    params.natsSubject !== undefined ? [params.natsSubject] : subjectsForTypes(types);
  const instruments = createConsumerInstruments(params);

  const buffer: Msg[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const subs: Subscription[] = subjects.map((subject) =>
    nc.subscribe(subject, {
      ...(queue === undefined ? {} : { queue }),
      callback: (err, msg) => {
        if (err !== null) {
          params.logger?.warn({ natsSubject: subject, error: err.message }, "subscription error");
          return;
        }
        buffer.push(msg);
        notify();
      },
    }),
  );
  // When the connection closes, every subscription closes: end the iteration then.
  void Promise.all(subs.map((s) => s.closed)).then(() => {
    closed = true;
    notify();
  });

  const close = async (): Promise<void> => {
    if (!closed) {
      closed = true;
      for (const s of subs) if (!s.isClosed()) s.unsubscribe();
      buffer.length = 0;
      notify();
    }
    await Promise.resolve();
  };
  async function* events(): AsyncGenerator<TracedEvent<ReceivedEvent<K>>> {
    while (!closed) {
      const msg = buffer.shift();
      if (msg === undefined) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        continue;
      }
      const result = decodeEventMessage(msg);
      if (!result.ok) {
        instruments.reportMalformed({
          natsSubject: msg.subject,
          reason: result.reason,
          message: result.message,
        });
        continue;
      }
      if (!wanted.has(result.event.type)) continue;
      const span = instruments.startConsumerSpan(msg.subject, result.event.traceContext, {
        "messaging.message.id": result.event.id,
        "cloudevents.event_id": result.event.id,
        "cloudevents.event_type": EVENT_CATALOG[result.event.type].ceType,
        "cloudevents.event_source": result.event.source,
      });
      instruments.countDelivered();
      const event = {
        ...result.event,
        traceContext: trace.setSpan(result.event.traceContext, span),
      } as ReceivedEvent<K>;
      yield { event, span };
    }
  }

  return createEventIterable({
    iterateTwiceMessage: "subscribeEvents: iterate a subscription only once",
    events,
    close,
    stats: () => instruments.stats(),
    signal,
  });
}
