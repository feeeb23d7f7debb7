export {
  startKubeApiServer,
  type FailNextParams,
  type KubeApiRequest,
  type KubeApiServer,
  type KubeApiServerOptions,
  type DeleteKubeObjectParams,
  type KubeObjectRef,
  type ListKubeObjectsParams,
} from "./api-server";
export { startKubeletStandIn, type KubeletStandIn, type KubeletStandInOptions } from "./kubelet";
export type { IssueServiceAccountTokenParams, ServiceAccountTokenClaims } from "./token-review";
export type { KubeObject, KubeObjectMeta } from "./types";
export {
  createSelfSignedStandInTls,
  type SelfSignedStandInTlsParams,
  type StandInTlsOptions,
} from "./tls";
