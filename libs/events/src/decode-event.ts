import { extractTraceContext } from "@meshid/telemetry";
import { type Context, ROOT_CONTEXT } from "@opentelemetry/api";
import { type MsgHdrs } from "nats";
import { EVENT_CATALOG, type EventPayload, type EventType, eventTypeFromCeType } from "./catalog";
import { CE_HEADERS, CE_SPEC_VERSION, EVENT_CONTENT_TYPE } from "./cloud-event-headers";
import { isAgentWakeupSubject } from "./subjects";

/** One meshid event as received: CloudEvents attributes plus the decoded payload. */
export type ReceivedEvent<K extends EventType = EventType> = {
  [T in K]: {
    /** Catalog key of the event. */
    readonly type: T;
    /** CloudEvents `id` (a UUID; also the JetStream Nats-Msg-Id). */
    readonly id: string;
    /** CloudEvents `source`, e.g. `meshid/ca/ca-0`. */
    readonly source: string;
    /** CloudEvents `time`: when the publisher created the event. */
    readonly time: Date;
    /** CloudEvents `subject` (what the event is about), when set. */
    readonly subject?: string;
    /** NATS subject the message arrived on. */
    readonly natsSubject: string;
    /** The payload, decoded from protobuf JSON. */
    readonly data: EventPayload<T>;
    /**
     * OpenTelemetry context to handle the event in (`context.with(ev.traceContext, …)`): the
     * consumer span when received by subscribeEvents/consumeEventsDurable, otherwise the remote
     * parent from `traceparent`.
     */
    readonly traceContext: Context;
  };
}[K];

/** Why a message is not a valid meshid event. */
export type MalformedReason =
  | "missing_headers"
  | "bad_specversion"
  | "missing_id"
  | "unknown_type"
  | "missing_source"
  | "bad_time"
  | "bad_content_type"
  | "subject_mismatch"
  | "bad_body";

/** Outcome of decoding one NATS message: the event or why it was rejected. */
export type DecodeEventResult =
  | { readonly ok: true; readonly event: ReceivedEvent }
  | { readonly ok: false; readonly reason: MalformedReason; readonly message: string };

/** The parts of a NATS message (core or JetStream) that decoding reads. */
export interface EventMessage {
  readonly subject: string;
  readonly headers?: MsgHdrs;
  readonly data: Uint8Array;
}

/** RFC 3339 date-time (CloudEvents `time`), with a zone designator. */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** Returns a header value, or undefined when absent or empty. */
function header(headers: MsgHdrs, name: string): string | undefined {
  const value = headers.get(name);
  return value === "" ? undefined : value;
}

/** True when a decoded payload holds an Invalid Date (ts-proto parses bad timestamps so). */
function hasInvalidDate(value: unknown): boolean {
  if (value instanceof Date) return Number.isNaN(value.getTime());
  if (typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasInvalidDate);
}

function fail(reason: MalformedReason, message: string): DecodeEventResult {
  return { ok: false, reason, message };
}

/**
 * Validates the CloudEvents envelope of a NATS message and decodes its payload. Checks: spec
 * version 1.0, non-empty id and source, a ce-type in the catalog, RFC 3339 time, JSON content
 * type, a subject that matches the type, and a JSON object body. Never throws; the result is a
 * tagged union. `traceContext` is the remote parent extracted from `traceparent` (or ROOT).
 */
export function decodeEventMessage(msg: EventMessage): DecodeEventResult {
  const h = msg.headers;
  if (h === undefined) return fail("missing_headers", "message has no headers");
  const specVersion = header(h, CE_HEADERS.specVersion);
  if (specVersion !== CE_SPEC_VERSION) {
    return fail("bad_specversion", `ce-specversion must be ${CE_SPEC_VERSION}`);
  }
  const id = header(h, CE_HEADERS.id);
  if (id === undefined) return fail("missing_id", "ce-id is missing");
  const ceType = header(h, CE_HEADERS.type) ?? "";
  const type = eventTypeFromCeType(ceType);
  if (type === undefined) return fail("unknown_type", `unknown ce-type "${ceType.slice(0, 80)}"`);
  const source = header(h, CE_HEADERS.source);
  if (source === undefined) return fail("missing_source", "ce-source is missing");
  const timeText = header(h, CE_HEADERS.time) ?? "";
  const time = new Date(timeText);
  if (!RFC3339.test(timeText) || Number.isNaN(time.getTime())) {
    return fail("bad_time", "ce-time is not an RFC 3339 timestamp");
  }
  const contentType = (header(h, CE_HEADERS.contentType) ?? "").split(";")[0]!.trim();
  if (contentType.toLowerCase() !== EVENT_CONTENT_TYPE) {
    return fail("bad_content_type", `content-type must be ${EVENT_CONTENT_TYPE}`);
  }
  const definition = EVENT_CATALOG[type];
  const subjectOk = definition.perAgent
    ? isAgentWakeupSubject(msg.subject)
    : msg.subject === definition.subject;
  if (!subjectOk) {
    return fail("subject_mismatch", `ce-type ${ceType} does not belong on ${msg.subject}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(textDecoder.decode(msg.data));
  } catch {
    return fail("bad_body", "body is not UTF-8 JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return fail("bad_body", "body is not a JSON object");
  }
  let data: unknown;
  try {
    data = definition.codec.fromJSON(body);
  } catch (err) {
    return fail("bad_body", `body does not decode: ${(err as Error).message}`);
  }
  if (hasInvalidDate(data)) return fail("bad_body", "body has an invalid timestamp");
  const subject = header(h, CE_HEADERS.subject);
  const event = {
    type,
    id,
    source,
    time,
    ...(subject === undefined ? {} : { subject }),
    natsSubject: msg.subject,
    data,
    traceContext: extractTraceContext(h, ROOT_CONTEXT),
  } as ReceivedEvent;
  return { ok: true, event };
}
