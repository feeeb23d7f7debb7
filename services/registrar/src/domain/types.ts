// The registrar's view of Kubernetes objects and CA entries: only the fields it uses, already
// checked, so the domain never handles raw API objects.

/** A pod as the registrar sees it. */
export interface PodInfo {
  readonly uid: string;
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  readonly serviceAccountName: string;
  /** Empty until the pod is scheduled. */
  readonly nodeName: string;
  /** `Succeeded` or `Failed`: the pod will not run again and needs no identity. */
  readonly terminated: boolean;
}

/** A node: its UID names its agent. */
export interface NodeInfo {
  readonly name: string;
  readonly uid: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A Service: its selector decides which pods get `<svc>.<ns>.svc` as a DNS name. */
export interface ServiceInfo {
  readonly name: string;
  readonly namespace: string;
  /** Empty for Services without a selector (they select no pods). */
  readonly selector: Readonly<Record<string, string>>;
}

/** A namespace and its labels (for `namespaceSelector`). */
export interface NamespaceInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A registration entry the registrar wants to exist (the CA assigns id and revision). */
export interface DesiredEntry {
  readonly spiffeId: string;
  readonly parentId: string;
  /** Always exactly `k8s:pod-uid:<uid>`. */
  readonly podUid: string;
  /** Sorted, without duplicates. */
  readonly dnsNames: readonly string[];
  /** 0 = the CA's mesh-wide svidTTL. */
  readonly ttlSeconds: number;
  readonly hint: string;
  /** The pod, for pod.registered. */
  readonly podName: string;
  readonly namespace: string;
}

/** An entry owned by the registrar as stored at the CA. */
export interface CurrentEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly parentId: string;
  /** The pod UID of its `k8s:pod-uid:` selector, or undefined when it has none (a leftover). */
  readonly podUid: string | undefined;
  /** Every selector, `type:value`, sorted. */
  readonly selectors: readonly string[];
  readonly dnsNames: readonly string[];
  readonly ttlSeconds: number;
  readonly hint: string;
}

/** Selector type and value prefix of the pod-UID selector (`k8s:pod-uid:<uid>`). */
export const POD_UID_SELECTOR_PREFIX = "k8s:pod-uid:";
