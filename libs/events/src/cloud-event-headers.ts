/** NATS header names of the CloudEvents 1.0 NATS binary-mode envelope, and trace headers. */
export const CE_HEADERS = Object.freeze({
  specVersion: "ce-specversion",
  id: "ce-id",
  type: "ce-type",
  source: "ce-source",
  time: "ce-time",
  subject: "ce-subject",
  contentType: "content-type",
  /** JetStream de-duplication key; meshid sets it to the ce-id. */
  natsMsgId: "Nats-Msg-Id",
  traceparent: "traceparent",
  tracestate: "tracestate",
});

/** The only CloudEvents spec version meshid writes and accepts. */
export const CE_SPEC_VERSION = "1.0";

/** Content type of every meshid event body (protobuf JSON). */
export const EVENT_CONTENT_TYPE = "application/json";
