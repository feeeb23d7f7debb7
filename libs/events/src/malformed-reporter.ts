import {
  type Context,
  type Meter,
  metrics,
  type Span,
  SpanKind,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { type EventsLogger, TRACER_NAME } from "./events-logger";
import { type MalformedReason } from "./decode-event";

/** A message that was skipped because it is not a valid meshid event. */
export interface MalformedEventInfo {
  /** NATS subject it arrived on. */
  readonly natsSubject: string;
  /** Machine-readable reason. */
  readonly reason: MalformedReason;
  /** Human-readable detail (never contains the body). */
  readonly message: string;
}

/** Counters of one subscription. */
export interface EventSubscriptionStats {
  /** Valid events handed to the iterator. */
  readonly delivered: number;
  /** Messages skipped as malformed. */
  readonly malformed: number;
}

/** Observability deps shared by subscribeEvents and consumeEventsDurable. */
export interface EventConsumerObservability {
  /** Logger for skipped messages. */
  logger?: EventsLogger;
  /** Tracer for the CONSUMER spans. Default: the global tracer `@meshid/events`. */
  tracer?: Tracer;
  /** Meter for the `meshid.events.malformed` counter. Default: the global meter. */
  meter?: Meter;
  /** Called for every skipped malformed message (exceptions it throws are ignored). */
  onMalformed?: (info: MalformedEventInfo) => void;
}

/** Metric name of the skipped-message counter (attribute `reason`). */
export const MALFORMED_COUNTER_NAME = "meshid.events.malformed";

/** Internal: counts, logs and traces what a subscription does. */
export interface ConsumerInstruments {
  reportMalformed(info: MalformedEventInfo): void;
  /** Starts the CONSUMER span `process <subject>` under the event's remote parent. */
  startConsumerSpan(natsSubject: string, parent: Context, attrs: Record<string, string>): Span;
  countDelivered(): void;
  stats(): EventSubscriptionStats;
}

/** Builds the instruments of one subscription. */
export function createConsumerInstruments(deps: EventConsumerObservability): ConsumerInstruments {
  const tracer = deps.tracer ?? trace.getTracer(TRACER_NAME);
  const counter = (deps.meter ?? metrics.getMeter(TRACER_NAME)).createCounter(
    MALFORMED_COUNTER_NAME,
    { description: "Messages on meshid event subjects skipped because they are malformed." },
  );
  let delivered = 0;
  let malformed = 0;
  return {
    reportMalformed(info) {
      malformed += 1;
      counter.add(1, { reason: info.reason });
      deps.logger?.warn(
        { natsSubject: info.natsSubject, reason: info.reason, detail: info.message },
        "skipped malformed event",
      );
      try {
        deps.onMalformed?.(info);
      } catch {
        // a faulty callback must not stop the subscription
      }
    },
    startConsumerSpan(natsSubject, parent, attrs) {
      return tracer.startSpan(
        `process ${natsSubject}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": natsSubject,
            ...attrs,
          },
        },
        parent,
      );
    },
    countDelivered() {
      delivered += 1;
    },
    stats: () => ({ delivered, malformed }),
  };
}
