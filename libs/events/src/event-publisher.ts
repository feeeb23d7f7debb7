import { randomUUID } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import { injectTraceContext } from "@meshid/telemetry";
import { context, SpanKind, SpanStatusCode, type Tracer, trace } from "@opentelemetry/api";
import { headers as natsHeaders, type NatsConnection } from "nats";
import { EVENT_CATALOG, type EventPayload, type EventType } from "./catalog";
import { CE_HEADERS, CE_SPEC_VERSION, EVENT_CONTENT_TYPE } from "./cloud-event-headers";
import { type EventsLogger, TRACER_NAME } from "./events-logger";
import { assertNoSecretMaterial } from "./secret-guard";
import { isAgentWakeupSubject } from "./subjects";

/** Dependencies of {@link createEventPublisher}. */
export interface EventPublisherDeps {
  /** Connected NATS client. */
  nc: NatsConnection;
  /** CloudEvents `source` of everything published, e.g. `meshid/ca/<pod name>`. */
  source: string;
  /**
   * Publish through JetStream and wait for the stream's acknowledgement (fails when no stream
   * captures the subject). Default false: core NATS publish, which the MESHID_EVENTS stream
   * still captures and de-duplicates when it exists.
   */
  useJetStream?: boolean;
  /** Logger for debug lines (no payloads are logged). */
  logger?: EventsLogger;
  /** Clock for `ce-time`. Default `() => new Date()`. */
  now?: () => Date;
  /** Tracer for the PRODUCER spans. Default: the global tracer `@meshid/events`. */
  tracer?: Tracer;
}

/** Per-call options of {@link EventPublisher.publish}. */
export interface PublishEventOptions {
  /** CloudEvents `subject`: what the event is about (e.g. the entry ID). */
  subject?: string;
  /** NATS subject override; required for per-agent events (use agentWakeupSubject). */
  natsSubject?: string;
  /**
   * CloudEvents `id` (also Nats-Msg-Id). Default: a new UUID. Pass the id of an earlier
   * attempt when retrying so JetStream drops the duplicate.
   */
  id?: string;
}

/** Publishes typed meshid events as CloudEvents on NATS. */
export interface EventPublisher {
  /**
   * Publishes one event of catalog type `type` and resolves with its CloudEvents id: with core
   * NATS once the client has queued it (at most once), with useJetStream once the stream has
   * stored it (or recognised it as a duplicate of the same id).
   * Throws MeshidError `invalid_argument` (`events.payload.secret`, `events.subject.invalid`)
   * before sending anything, or `unavailable` (`events.publish.failed`) when NATS refuses.
   */
  publish<K extends EventType>(
    type: K,
    payload: EventPayload<K>,
    opts?: PublishEventOptions,
  ): Promise<{ id: string }>;
}

/** A NATS subject token list without wildcards or empty tokens. */
const VALID_SUBJECT = /^[^\s*>.]+(\.[^\s*>.]+)*$/;

/**
 * Creates a publisher of meshid events in CloudEvents 1.0 binary mode: attributes in `ce-*`
 * headers, `content-type: application/json`, body = protobuf JSON of the payload,
 * `Nats-Msg-Id` = ce-id, and `traceparent`/`tracestate` of a PRODUCER span
 * (`publish <subject>`) that is a child of the active context.
 */
export function createEventPublisher(deps: EventPublisherDeps): EventPublisher {
  const { nc, source, useJetStream = false, logger, now = () => new Date() } = deps;
  if (source.trim() === "") {
    throw new MeshidError("invalid_argument", "events.source.invalid", "ce-source is empty");
  }
  const tracer = deps.tracer ?? trace.getTracer(TRACER_NAME);
  const js = useJetStream ? nc.jetstream() : undefined;
  const encoder = new TextEncoder();

  return {
    async publish(type, payload, opts = {}) {
      const definition = EVENT_CATALOG[type];
      if (definition === undefined) {
        throw new MeshidError(
          "invalid_argument",
          "events.type.unknown",
          `unknown event type ${String(type)}`,
        );
      }
      const natsSubject = resolveSubject(definition.subject, definition.perAgent, opts);
      const body = JSON.stringify((definition.codec.toJSON as (m: unknown) => unknown)(payload));
      assertNoSecretMaterial(body, "payload");
      if (opts.subject !== undefined) assertNoSecretMaterial(opts.subject, "ce-subject");
      const id = opts.id ?? randomUUID();

      const span = tracer.startSpan(
        `publish ${natsSubject}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": natsSubject,
            "messaging.message.id": id,
            "cloudevents.event_id": id,
            "cloudevents.event_type": definition.ceType,
            "cloudevents.event_source": source,
          },
        },
        context.active(),
      );
      const spanContext = trace.setSpan(context.active(), span);
      try {
        const h = natsHeaders();
        h.set(CE_HEADERS.specVersion, CE_SPEC_VERSION);
        h.set(CE_HEADERS.id, id);
        h.set(CE_HEADERS.type, definition.ceType);
        h.set(CE_HEADERS.source, source);
        h.set(CE_HEADERS.time, now().toISOString());
        if (opts.subject !== undefined) h.set(CE_HEADERS.subject, opts.subject);
        h.set(CE_HEADERS.contentType, EVENT_CONTENT_TYPE);
        h.set(CE_HEADERS.natsMsgId, id);
        injectTraceContext(h, spanContext);
        const data = encoder.encode(body);
        if (js !== undefined) {
          const ack = await js.publish(natsSubject, data, { headers: h, msgID: id });
          if (ack.duplicate) logger?.debug?.({ eventId: id, type }, "event was a duplicate");
        } else {
          nc.publish(natsSubject, data, { headers: h });
        }
        logger?.debug?.({ eventId: id, type, natsSubject }, "event published");
        return { id };
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw new MeshidError(
          "unavailable",
          "events.publish.failed",
          `publishing ${type} failed: ${(err as Error).message}`,
          { cause: err },
        );
      } finally {
        span.end();
      }
    },
  };
}

/** Picks the NATS subject for a publish and checks it. */
function resolveSubject(
  catalogSubject: string,
  perAgent: boolean,
  opts: PublishEventOptions,
): string {
  const subject = opts.natsSubject ?? catalogSubject;
  if (perAgent && !isAgentWakeupSubject(subject)) {
    throw new MeshidError(
      "invalid_argument",
      "events.subject.invalid",
      "per-agent events need natsSubject = agentWakeupSubject(agentId)",
    );
  }
  if (!VALID_SUBJECT.test(subject)) {
    throw new MeshidError(
      "invalid_argument",
      "events.subject.invalid",
      `"${subject.slice(0, 100)}" is not a publishable NATS subject`,
    );
  }
  return subject;
}
