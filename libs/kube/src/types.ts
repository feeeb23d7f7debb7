// The Kubernetes object shapes meshid reads and writes, as the API server sends them (JSON:
// timestamps are RFC 3339 strings). Only the fields our services use are spelled out; every
// object keeps whatever else the server sent.

/** metav1.ObjectMeta (the part we use). */
export interface KubeObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: KubeOwnerReference[];
  finalizers?: string[];
}

/** metav1.OwnerReference. */
export interface KubeOwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** Any API object. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: KubeObjectMeta;
}

/** A list response (`…List`). */
export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** metav1.Status, the body of every failed request and of watch ERROR events. */
export interface KubeStatus {
  kind?: "Status";
  status?: "Success" | "Failure";
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: { field?: string; message?: string }[] };
}

/** core/v1 ObjectReference. */
export interface KubeObjectReference {
  apiVersion?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

/** core/v1 Container (the part we use). */
export interface KubeContainer {
  name: string;
  image?: string;
  ports?: { name?: string; containerPort: number; protocol?: string }[];
}

/** core/v1 ContainerStatus (the part we use). */
export interface KubeContainerStatus {
  name: string;
  image?: string;
  imageID?: string;
  containerID?: string;
  ready?: boolean;
}

/** core/v1 Pod (the part we use). */
export interface KubePod extends KubeObject {
  spec?: {
    nodeName?: string;
    serviceAccountName?: string;
    hostNetwork?: boolean;
    containers?: KubeContainer[];
    initContainers?: KubeContainer[];
  };
  status?: {
    phase?: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    containerStatuses?: KubeContainerStatus[];
    initContainerStatuses?: KubeContainerStatus[];
  };
}

/** core/v1 Node (the part we use). */
export interface KubeNode extends KubeObject {
  spec?: { providerID?: string };
  status?: { addresses?: { type: string; address: string }[] };
}

/** core/v1 ConfigMap. */
export interface KubeConfigMap extends KubeObject {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** coordination.k8s.io/v1 Lease. Times are RFC 3339 strings with microseconds. */
export interface KubeLease extends KubeObject {
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

/** core/v1 Event (the fields we write). */
export interface KubeEvent extends KubeObject {
  involvedObject: KubeObjectReference;
  type?: string;
  reason?: string;
  message?: string;
  source?: { component?: string; host?: string };
  reportingComponent?: string;
  reportingInstance?: string;
  firstTimestamp?: string;
  lastTimestamp?: string;
  count?: number;
}
