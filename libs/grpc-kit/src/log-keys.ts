/**
 * Names of the structured log fields grpc-kit writes, so dashboards and tests match on one
 * spelling.
 */
export const GrpcLogKeys = Object.freeze({
  /** Full method path, e.g. `/grpc.health.v1.Health/Check`. */
  method: "grpc.method",
  /** Numeric gRPC status code of the finished call. */
  statusCode: "grpc.status_code",
  /** Name of the gRPC status, e.g. `NOT_FOUND`. */
  status: "grpc.status",
  /** Call duration in milliseconds. */
  durationMs: "grpc.duration_ms",
  /** Transport peer address as seen by the server. */
  peer: "grpc.peer",
  /** SPIFFE ID of the verified caller, when it presented an X509-SVID. */
  callerSpiffeId: "grpc.caller_spiffe_id",
  /** Stable `MeshidError` code. */
  errorCode: "error.code",
  /** The error object (message, stack, cause) — logs only, never sent to callers. */
  err: "err",
});
