// Where a service finds its Kubernetes API server.
import { KubeConfig } from "@kubernetes/client-node";

/** How to reach the API server: a kubeconfig file, or the pod's in-cluster service account. */
export interface KubeConnectionSettings {
  /** A kubeconfig file; when absent the in-cluster configuration is used. */
  readonly kubeconfigFile?: string;
}

/**
 * Loads the client configuration: the kubeconfig file when given, otherwise the in-cluster
 * service account (`KUBERNETES_SERVICE_HOST` and the mounted token).
 */
export function loadKubeConfig(settings: KubeConnectionSettings): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (settings.kubeconfigFile === undefined) kubeConfig.loadFromCluster();
  else kubeConfig.loadFromFile(settings.kubeconfigFile);
  return kubeConfig;
}
