import { MeshidError } from "@meshid/errors";
import { type Span, trace } from "@opentelemetry/api";
import {
  AckPolicy,
  type Consumer,
  type ConsumerMessages,
  type ConsumerConfig,
  DeliverPolicy,
  type JsMsg,
  type NatsConnection,
  nanos,
} from "nats";
import { EVENT_CATALOG, EVENT_TYPES, type EventType } from "./catalog";
import { decodeEventMessage, type ReceivedEvent } from "./decode-event";
import { createEventIterable, type TracedEvent } from "./event-iterable";
import { EVENT_STREAM_NAME } from "./event-stream";
import {
  createConsumerInstruments,
  type EventConsumerObservability,
  type EventSubscriptionStats,
} from "./malformed-reporter";
import { ALL_EVENTS_SUBJECT } from "./subjects";
import { subjectsForTypes } from "./subscribe-events";

/** Where a new durable consumer starts; ignored when the durable already exists. */
export type EventDeliverPolicy =
  | "all"
  | "new"
  | "last"
  | "last_per_subject"
  | { readonly startSequence: number }
  | { readonly startTime: Date };

/** Parameters of {@link consumeEventsDurable}. */
export interface ConsumeEventsDurableParams<
  K extends EventType,
> extends EventConsumerObservability {
  /** Connected NATS client (JetStream enabled on the server). */
  nc: NatsConnection;
  /** Name of the durable consumer; reuse it to resume where the last run stopped. */
  durableName: string;
  /** Event types to receive, or "all". */
  types: readonly K[] | "all";
  /** Where a new durable starts. Default "all" (replay everything still stored). */
  deliverPolicy?: EventDeliverPolicy;
  /** Filter subject override (e.g. one agent's wake-up subject). */
  natsSubject?: string;
  /** Seconds before an unacknowledged event is redelivered. Default 30. */
  ackWaitSeconds?: number;
  /** Stream to consume. Default MESHID_EVENTS. */
  stream?: string;
  /** Ends the iteration when aborted. */
  signal?: AbortSignal;
}

/** A meshid event from a durable consumer, to be acknowledged. */
export type DurableEvent<K extends EventType = EventType> = ReceivedEvent<K> & {
  /** Stream sequence number of the event. */
  readonly streamSequence: number;
  /** How often it has been delivered (1 on first delivery). */
  readonly deliveryCount: number;
  /**
   * Acknowledges the event and waits for the server to confirm.
   * Throws MeshidError `unavailable` (`events.ack.failed`) when it cannot confirm.
   */
  ack(): Promise<void>;
  /** Asks for redelivery, after `delayMs` if given. */
  nak(delayMs?: number): void;
  /** Never deliver this event to this consumer again. */
  term(): void;
};

/** A durable JetStream consumption of meshid events. Iterate it once. */
export interface DurableEventConsumer<K extends EventType> extends AsyncIterable<DurableEvent<K>> {
  /** Stops pulling (the durable stays on the server). Safe to call twice. */
  close(): Promise<void>;
  /** Delivered and malformed counts so far. */
  stats(): EventSubscriptionStats;
}

/** How long one pull waits on the server for a message (ms; nats.js minimum is 1000). */
const PULL_EXPIRES_MS = 5_000;

/** Wraps a span so that end() may be called more than once. */
function endOnce(span: Span): Span {
  let ended = false;
  return new Proxy(span, {
    get(target, prop, receiver) {
      if (prop === "end") {
        return (endTime?: number) => {
          if (ended) return;
          ended = true;
          target.end(endTime);
        };
      }
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function"
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}

/** Maps our deliver policy to consumer config fields. */
function deliverConfig(policy: EventDeliverPolicy): Partial<ConsumerConfig> {
  if (typeof policy === "object") {
    return "startSequence" in policy
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: policy.startSequence }
      : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: policy.startTime.toISOString() };
  }
  const map = {
    all: DeliverPolicy.All,
    new: DeliverPolicy.New,
    last: DeliverPolicy.Last,
    last_per_subject: DeliverPolicy.LastPerSubject,
  } as const;
  return { deliver_policy: map[policy] };
}

/**
 * Creates (or reuses) the durable pull consumer `durableName` on MESHID_EVENTS and yields its
 * events, typed and validated, at least once: an event not acked within ackWaitSeconds is
 * redelivered, so a restarted process with the same durable resumes after its last ack.
 * Events are pulled one at a time (a fetch of one): at most one event is outstanding, and one
 * that races with close() is redelivered after ackWaitSeconds. nats-server 2.9 allows one
 * filter subject per consumer: one type filters on its subject; several types use
 * `meshid.v1.>` and other types are acked and skipped here. Malformed events are terminated
 * (never redelivered) and reported like subscribeEvents does. Each event gets a CONSUMER span
 * that ends on ack/nak/term or when the loop moves on.
 * Throws MeshidError `unavailable` (`events.consumer.failed`) when the consumer cannot be made.
 */
export async function consumeEventsDurable<K extends EventType>(
  params: ConsumeEventsDurableParams<K> & { types: readonly K[] },
): Promise<DurableEventConsumer<K>>;
export async function consumeEventsDurable(
  params: ConsumeEventsDurableParams<EventType> & { types: "all" },
): Promise<DurableEventConsumer<EventType>>;
export async function consumeEventsDurable<K extends EventType>(
  params: ConsumeEventsDurableParams<K>,
): Promise<DurableEventConsumer<K>> {
  const { nc, durableName, types, signal } = params;
  const stream = params.stream ?? EVENT_STREAM_NAME;
  const wanted = new Set<EventType>(types === "all" ? EVENT_TYPES : types);
  const subjects =
    params.natsSubject !== undefined ? [params.natsSubject] : subjectsForTypes(types);
  const filterSubject = subjects.length === 1 ? subjects[0]! : ALL_EVENTS_SUBJECT;
  const instruments = createConsumerInstruments(params);

  let consumer: Consumer;
  try {
    const jsm = await nc.jetstreamManager();
    const existing = await jsm.consumers.info(stream, durableName).catch(() => undefined);
    if (existing === undefined) {
      await jsm.consumers.add(stream, {
        durable_name: durableName,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos((params.ackWaitSeconds ?? 30) * 1000),
        filter_subject: filterSubject,
        ...deliverConfig(params.deliverPolicy ?? "all"),
      });
    } else if (existing.config.filter_subject !== filterSubject) {
      await jsm.consumers.update(stream, durableName, { filter_subject: filterSubject });
    }
    consumer = await nc.jetstream().consumers.get(stream, durableName);
  } catch (err) {
    throw new MeshidError(
      "unavailable",
      "events.consumer.failed",
      `cannot create durable consumer ${durableName} on ${stream}: ${(err as Error).message}`,
      { cause: err },
    );
  }

  let closed = false;
  let activeFetch: ConsumerMessages | undefined;
  const close = async (): Promise<void> => {
    closed = true;
    const fetch = activeFetch;
    activeFetch = undefined;
    // Ends an outstanding pull at once (and its heartbeat timers) instead of at its expiry.
    if (fetch !== undefined) await fetch.close().catch(() => undefined);
  };

  /** Pulls one message, or null when closed or none arrived before the pull expired. */
  async function pull(): Promise<JsMsg | null> {
    const fetch = await consumer.fetch({ max_messages: 1, expires: PULL_EXPIRES_MS });
    if (closed) {
      await fetch.close().catch(() => undefined);
      return null;
    }
    activeFetch = fetch;
    try {
      for await (const m of fetch) return m;
      return null;
    } finally {
      if (activeFetch === fetch) activeFetch = undefined;
    }
  }

  async function* events(): AsyncGenerator<TracedEvent<DurableEvent<K>>> {
    while (!closed && !nc.isClosed()) {
      let m: JsMsg | null;
      try {
        m = await pull();
      } catch (err) {
        if (closed || nc.isClosed()) break;
        params.logger?.warn({ durableName, error: (err as Error).message }, "pull failed");
        continue;
      }
      if (m === null) continue;
      const msg = m;
      const result = decodeEventMessage(msg);
      if (!result.ok) {
        msg.term();
        instruments.reportMalformed({
          natsSubject: msg.subject,
          reason: result.reason,
          message: result.message,
        });
        continue;
      }
      if (!wanted.has(result.event.type)) {
        msg.ack();
        continue;
      }
      const span = endOnce(
        instruments.startConsumerSpan(msg.subject, result.event.traceContext, {
          "messaging.message.id": result.event.id,
          "messaging.consumer.group.name": durableName,
          "cloudevents.event_id": result.event.id,
          "cloudevents.event_type": EVENT_CATALOG[result.event.type].ceType,
          "cloudevents.event_source": result.event.source,
        }),
      );
      instruments.countDelivered();
      const event = {
        ...result.event,
        traceContext: trace.setSpan(result.event.traceContext, span),
        streamSequence: msg.seq,
        deliveryCount: msg.info.redeliveryCount,
        async ack() {
          const ok = await msg.ackAck().catch(() => false);
          span.end();
          if (!ok) {
            throw new MeshidError(
              "unavailable",
              "events.ack.failed",
              `ack of event ${result.event.id} was not confirmed`,
            );
          }
        },
        nak(delayMs?: number) {
          msg.nak(delayMs);
          span.end();
        },
        term() {
          msg.term();
          span.end();
        },
      } as DurableEvent<K>;
      yield { event, span };
    }
  }

  return createEventIterable({
    iterateTwiceMessage: "consumeEventsDurable: iterate a consumer only once",
    events,
    close,
    stats: () => instruments.stats(),
    signal,
  });
}
