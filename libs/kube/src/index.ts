export { isKubeConflict, isKubeGone, isKubeNotFound, kubeStatusCode } from "./api-errors";
export { CLUSTER_EVENTS_NAMESPACE, recordKubeEvent, type KubeEventParams } from "./events";
export { loadKubeConfig, type KubeConnectionSettings } from "./kube-config";
