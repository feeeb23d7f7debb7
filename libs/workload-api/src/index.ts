export {
  DEFAULT_BACKOFF_INITIAL_MS,
  DEFAULT_BACKOFF_MAX_MS,
  backoffDelayMs,
  type BackoffOptions,
} from "./backoff";
export {
  ENDPOINT_INVALID_CODE,
  SPIFFE_ENDPOINT_SOCKET_ENV,
  parseSpiffeEndpointSocket,
  socketPathFromEnv,
} from "./endpoint";
export {
  CALL_REFUSED_CODE,
  DEFAULT_FETCH_TIMEOUT_MS,
  STREAM_ENDED_CODE,
  WORKLOAD_API_HEADER,
  fetchX509Context,
  watchX509Context,
  type FetchX509ContextParams,
  type WatchRetryEvent,
  type WatchX509ContextParams,
} from "./workload-api-client";
export {
  SOURCE_CLOSED_CODE,
  createWorkloadX509Source,
  type CreateWorkloadX509SourceParams,
  type WorkloadX509Source,
  type WorkloadX509SourceOutcome,
} from "./workload-x509-source";
export {
  RESPONSE_INVALID_CODE,
  describeSvid,
  pickDefaultSvid,
  pickSvidById,
  x509ContextFromResponse,
  type PickSvid,
  type WorkloadX509Svid,
  type X509Context,
  type X509SvidResponseLike,
} from "./x509-context";
