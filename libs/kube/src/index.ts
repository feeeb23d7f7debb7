export {
  KubeApiError,
  isKubeConflict,
  isKubeGone,
  isKubeNotFound,
  kubeStatusCode,
} from "./api-errors";
export {
  KUBE_MAX_RESPONSE_BYTES,
  KUBE_REQUEST_TIMEOUT_MS,
  PATCH_TYPES,
  createKubeClient,
  type KubeClient,
  type KubeQuery,
  type KubeRequest,
  type KubeWatchEvent,
  type KubeWatchRequest,
} from "./client";
export { CLUSTER_EVENTS_NAMESPACE, recordKubeEvent, type KubeEventParams } from "./events";
export {
  INFORMER_RETRY_INITIAL_MS,
  INFORMER_RETRY_MAX_MS,
  createKubeInformer,
  type KubeInformer,
  type KubeInformerParams,
} from "./informer";
export {
  KubeConfigError,
  SERVICE_ACCOUNT_DIR,
  TOKEN_FILE_REFRESH_MS,
  loadKubeConnection,
  type KubeConnection,
  type KubeConnectionEnvironment,
  type KubeConnectionSettings,
} from "./kube-config";
export {
  DEFAULT_LEASE_DURATION_MS,
  DEFAULT_RENEW_DEADLINE_MS,
  DEFAULT_RETRY_PERIOD_MS,
  createLeaderElector,
  type CreateLeaderElectorParams,
  type LeaderElectionClock,
  type LeaderElectionLogger,
  type LeaderElectionStatus,
  type LeaderElector,
} from "./leader-election";
export type * from "./types";
