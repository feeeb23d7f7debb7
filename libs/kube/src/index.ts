export { isKubeConflict, isKubeGone, isKubeNotFound, kubeStatusCode } from "./api-errors";
export { CLUSTER_EVENTS_NAMESPACE, recordKubeEvent, type KubeEventParams } from "./events";
export { loadKubeConfig, type KubeConnectionSettings } from "./kube-config";
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
