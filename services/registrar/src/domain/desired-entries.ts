// Pure rendering of the entries a pod should have: which pods are meshed, their agent's
// SPIFFE ID, and each matching template rendered against pod, node and Services.
import { tryParseSpiffeId } from "@meshid/spiffe";
import { DEFAULT_IDENTITY_TEMPLATE, type IdentityTemplate } from "./cluster-spiffe-id";
import { matchesLabelSelector } from "./label-selector";
import type { TemplateContext } from "./template";
import type { DesiredEntry, NamespaceInfo, NodeInfo, PodInfo, ServiceInfo } from "./types";

/** Path prefix of agent IDs, which no workload entry may use (the CA refuses them). */
export const AGENT_ID_PATH_PREFIX = "/meshid/agent/";

/** Which pods the registrar registers. */
export interface PodSelection {
  /** `key=value` labels; a pod carrying any of them is meshed. */
  readonly injectLabels: readonly { readonly key: string; readonly value: string }[];
  /** `key=value` annotations; a pod carrying any of them is meshed. */
  readonly injectAnnotations: readonly { readonly key: string; readonly value: string }[];
  /** Namespaces whose pods are never registered. */
  readonly ignoredNamespaces: readonly string[];
}

/** True when `pod` is meshed (an inject label or annotation) and not in an ignored namespace. */
export function isMeshedPod(pod: PodInfo, selection: PodSelection): boolean {
  if (selection.ignoredNamespaces.includes(pod.namespace)) return false;
  return (
    selection.injectLabels.some((l) => pod.labels[l.key] === l.value) ||
    selection.injectAnnotations.some((a) => pod.annotations[a.key] === a.value)
  );
}

/**
 * The SPIFFE ID of the k8s_psat agent of a node:
 * `spiffe://<td>/meshid/agent/k8s_psat/<cluster>/<node-uid>` (as the CA names it).
 */
export function agentIdForNode(trustDomain: string, clusterName: string, nodeUid: string): string {
  return `spiffe://${trustDomain}${AGENT_ID_PATH_PREFIX}k8s_psat/${clusterName}/${nodeUid}`;
}

/** A template that could not be rendered for a pod. */
export interface RenderFailure {
  /** The ClusterSPIFFEID name (or the default's). */
  readonly template: string;
  readonly templateUid: string;
  readonly templateRevision: string;
  readonly namespace: string;
  readonly podName: string;
  readonly error: string;
}

/** Parameters of {@link renderPodEntries}. */
export interface RenderPodEntriesParams {
  readonly trustDomain: string;
  readonly clusterName: string;
  readonly pod: PodInfo;
  /** The pod's node, once known. */
  readonly node: NodeInfo | undefined;
  /** The pod's namespace, once known (namespaceSelector of a template needs its labels). */
  readonly namespace: NamespaceInfo | undefined;
  /** Services of the pod's namespace. */
  readonly services: readonly ServiceInfo[];
  /**
   * The templates to apply: the valid ClusterSPIFFEIDs, or [{@link DEFAULT_IDENTITY_TEMPLATE}]
   * while none exists (see {@link templatesToApply}).
   */
  readonly templates: readonly IdentityTemplate[];
}

/** Outcome of {@link renderPodEntries}. */
export interface RenderPodEntriesResult {
  readonly entries: readonly DesiredEntry[];
  readonly failures: readonly RenderFailure[];
  /** Why the pod has no entries yet although it may get some later. */
  readonly waitingFor?: "scheduling" | "node";
}

/**
 * The templates the registrar applies: the built-in default while no ClusterSPIFFEID exists at
 * all, otherwise the valid ones (a broken resource never brings the default back).
 */
export function templatesToApply(
  valid: readonly IdentityTemplate[],
  invalidCount: number,
): readonly IdentityTemplate[] {
  return valid.length === 0 && invalidCount === 0 ? [DEFAULT_IDENTITY_TEMPLATE] : valid;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True for a lower-case hostname of at most 253 characters (what the CA accepts). */
export function isValidDnsName(name: string): boolean {
  return name.length <= 253 && name.split(".").every((label) => DNS_LABEL.test(label));
}

function selectingServices(pod: PodInfo, services: readonly ServiceInfo[]): string[] {
  const names: string[] = [];
  for (const svc of services) {
    if (svc.namespace !== pod.namespace) continue;
    const selector = Object.entries(svc.selector);
    if (selector.length === 0) continue;
    if (selector.every(([k, v]) => pod.labels[k] === v))
      names.push(`${svc.name}.${pod.namespace}.svc`);
  }
  return names;
}

/**
 * Renders the entries `pod` should have: one per matching template, parented to its node's agent, selected by `k8s:pod-uid:<uid>`. Pods not yet
 * scheduled, or whose node is not known yet, get none (`waitingFor` says which). A template
 * that renders no valid SPIFFE ID (in the trust domain, outside the agent namespace) or DNS
 * name is a failure for this pod only. Identical IDs from two templates give one entry.
 */
export function renderPodEntries(params: RenderPodEntriesParams): RenderPodEntriesResult {
  const { pod, node, trustDomain, clusterName } = params;
  if (pod.nodeName === "") return { entries: [], failures: [], waitingFor: "scheduling" };
  if (node === undefined) return { entries: [], failures: [], waitingFor: "node" };
  const parentId = agentIdForNode(trustDomain, clusterName, node.uid);
  const ctx: TemplateContext = {
    trustDomain,
    clusterName,
    pod: {
      name: pod.name,
      namespace: pod.namespace,
      uid: pod.uid,
      labels: pod.labels,
      annotations: pod.annotations,
      serviceAccountName: pod.serviceAccountName,
      nodeName: pod.nodeName,
    },
    node: { name: node.name, uid: node.uid, labels: node.labels },
  };
  const templates = params.templates;
  const entries: DesiredEntry[] = [];
  const failures: RenderFailure[] = [];
  const seen = new Set<string>();
  for (const template of templates) {
    if (!matchesLabelSelector(template.podSelector, pod.labels)) continue;
    if (
      template.namespaceSelector.matchExpressions.length > 0 ||
      Object.keys(template.namespaceSelector.matchLabels).length > 0
    ) {
      if (params.namespace === undefined) continue;
      if (!matchesLabelSelector(template.namespaceSelector, params.namespace.labels)) continue;
    }
    const fail = (error: string): void => {
      failures.push({
        template: template.name,
        templateUid: template.uid,
        templateRevision: template.revision,
        namespace: pod.namespace,
        podName: pod.name,
        error,
      });
    };
    const id = template.spiffeId.render(ctx);
    if (!id.ok) {
      fail(`spiffeIDTemplate: ${id.error}`);
      continue;
    }
    const parsed = tryParseSpiffeId(id.value);
    if (!parsed.ok) {
      fail(`spiffeIDTemplate rendered an invalid SPIFFE ID: ${parsed.error.message}`);
      continue;
    }
    if (parsed.id.trustDomain.name !== trustDomain) {
      fail(`spiffeIDTemplate rendered "${id.value}", outside trust domain "${trustDomain}"`);
      continue;
    }
    if (parsed.id.path === "" || parsed.id.path.startsWith(AGENT_ID_PATH_PREFIX)) {
      fail(`spiffeIDTemplate rendered "${id.value}", which no workload may use`);
      continue;
    }
    const dnsNames = new Set<string>();
    let dnsError: string | undefined;
    for (const [i, dns] of template.dnsNames.entries()) {
      const name = dns.render(ctx);
      if (!name.ok) {
        dnsError = `dnsNameTemplates[${i}]: ${name.error}`;
        break;
      }
      if (!isValidDnsName(name.value)) {
        dnsError = `dnsNameTemplates[${i}] rendered "${name.value}", not a lower-case DNS name`;
        break;
      }
      dnsNames.add(name.value);
    }
    if (dnsError !== undefined) {
      fail(dnsError);
      continue;
    }
    if (template.serviceDnsNames) {
      for (const name of selectingServices(pod, params.services)) dnsNames.add(name);
    }
    const spiffeId = parsed.id.toString();
    if (seen.has(spiffeId)) continue;
    seen.add(spiffeId);
    entries.push({
      spiffeId,
      parentId,
      podUid: pod.uid,
      dnsNames: [...dnsNames].sort(),
      ttlSeconds: template.ttlSeconds,
      hint: template.hint,
      podName: pod.name,
      namespace: pod.namespace,
    });
  }
  return { entries, failures };
}
