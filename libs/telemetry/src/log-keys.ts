/**
 * Names of structured log fields shared by every meshid service, so dashboards and queries
 * can rely on them. Use as `logger.info({ [LogKeys.spiffeId]: id }, "svid signed")`.
 */
export const LogKeys = {
  /** Service name (`ca`, `agent`, …); set on every line by `createLogger`. */
  service: "service",
  /** Part of the service that logged (`rotator`, `svid-service`). */
  component: "component",
  /** An error object (pino serialises `err` with message, type and stack). */
  err: "err",
  /** Active trace id (hex), added automatically when a span is active. */
  traceId: "traceId",
  /** Active span id (hex), added automatically when a span is active. */
  spanId: "spanId",
  /** A SPIFFE ID (`spiffe://…`). */
  spiffeId: "spiffeId",
  /** A trust domain name. */
  trustDomain: "trustDomain",
  /** A registration entry id. */
  entryId: "entryId",
  /** An agent's SPIFFE ID or node id. */
  agentId: "agentId",
  /** Certificate serial number (hex). */
  serialNumber: "serialNumber",
  /** Certificate expiry (ISO 8601). */
  notAfter: "notAfter",
  /** gRPC method or HTTP route. */
  method: "method",
  /** gRPC status or HTTP status code. */
  status: "status",
  /** NATS subject or event type. */
  subject: "subject",
  /** Listen or peer address (`host:port`, socket path). */
  address: "address",
  /** How long something took, in milliseconds. */
  durationMs: "durationMs",
  /** A file path. */
  path: "path",
} as const;

/** One of the {@link LogKeys} values. */
export type LogKey = (typeof LogKeys)[keyof typeof LogKeys];
