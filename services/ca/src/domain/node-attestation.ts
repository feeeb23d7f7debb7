// Pure naming rules of node attestation: agent SPIFFE IDs, node selectors, token shapes.
import { MeshidError, isMeshidError } from "@meshid/errors";
import { SpiffeId, normalizeSelectors, validateSelector, type Selector } from "@meshid/spiffe";

/** The node attestors the CA accepts. */
export const ATTESTATION_TYPES = ["join_token", "k8s_psat"] as const;

/** Selector type of the node selectors learnt through k8s_psat. */
export const K8S_PSAT_SELECTOR_TYPE = "k8s_psat";

/** Path prefix of every agent SPIFFE ID (`spiffe://<td>/meshid/agent/<type>/…`). */
export const AGENT_ID_PATH_PREFIX = "/meshid/agent";

/** A join token: 1–128 characters of `[A-Za-z0-9._-]`, not starting with a dot. */
const JOIN_TOKEN_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** A path segment of an agent ID (cluster name, node UID). */
const SEGMENT_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/** Reports whether `token` has the shape of a join token (so it fits in an agent ID). */
export function isJoinTokenShape(token: string): boolean {
  return JOIN_TOKEN_RE.test(token);
}

/**
 * Returns the agent ID of a join-token attestation,
 * `spiffe://<td>/meshid/agent/join_token/<token>`. Throws `ca.attestation.join_token_invalid`
 * (permission_denied) when the token cannot be a join token.
 */
export function joinTokenAgentId(trustDomain: string, token: string): SpiffeId {
  if (!isJoinTokenShape(token)) {
    throw new MeshidError(
      "permission_denied",
      "ca.attestation.join_token_invalid",
      "join token is not valid",
    );
  }
  return SpiffeId.fromParts(trustDomain, `${AGENT_ID_PATH_PREFIX}/join_token/${token}`);
}

/**
 * Returns the agent ID of a k8s_psat attestation,
 * `spiffe://<td>/meshid/agent/k8s_psat/<cluster>/<node-uid>`. Throws `ca.attestation.node_uid_invalid`
 * (permission_denied) when the cluster or node UID cannot be a path segment.
 */
export function psatAgentId(trustDomain: string, cluster: string, nodeUid: string): SpiffeId {
  if (!SEGMENT_RE.test(cluster) || !SEGMENT_RE.test(nodeUid)) {
    throw new MeshidError(
      "permission_denied",
      "ca.attestation.node_uid_invalid",
      "the cluster name or node UID cannot be used in an agent SPIFFE ID",
    );
  }
  try {
    return SpiffeId.fromParts(
      trustDomain,
      `${AGENT_ID_PATH_PREFIX}/k8s_psat/${cluster}/${nodeUid}`,
    );
  } catch (err) {
    if (!isMeshidError(err)) throw err;
    throw new MeshidError(
      "permission_denied",
      "ca.attestation.node_uid_invalid",
      "the cluster name or node UID cannot be used in an agent SPIFFE ID",
      { cause: err },
    );
  }
}

/** What k8s_psat attestation learnt about the node (input of {@link psatSelectors}). */
export interface PsatNodeFacts {
  readonly cluster: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly nodeName: string;
  readonly nodeUid: string;
}

/**
 * Returns the node selectors of a k8s_psat agent, validated and normalised:
 * `k8s_psat:cluster:<c>`, `k8s_psat:agent_ns:<ns>`, `k8s_psat:agent_sa:<sa>`,
 * `k8s_psat:agent_node_name:<n>`, `k8s_psat:agent_node_uid:<uid>`. Throws
 * `spiffe.selector.invalid` (invalid_argument) for a value that cannot be a selector.
 */
export function psatSelectors(facts: PsatNodeFacts): Selector[] {
  const selectors: Selector[] = [
    { type: K8S_PSAT_SELECTOR_TYPE, value: `cluster:${facts.cluster}` },
    { type: K8S_PSAT_SELECTOR_TYPE, value: `agent_ns:${facts.namespace}` },
    { type: K8S_PSAT_SELECTOR_TYPE, value: `agent_sa:${facts.serviceAccount}` },
    { type: K8S_PSAT_SELECTOR_TYPE, value: `agent_node_name:${facts.nodeName}` },
    { type: K8S_PSAT_SELECTOR_TYPE, value: `agent_node_uid:${facts.nodeUid}` },
  ];
  for (const s of selectors) validateSelector(s, { allowedTypes: [K8S_PSAT_SELECTOR_TYPE] });
  return normalizeSelectors(selectors);
}

/** Returns `true` when `<ns>:<sa>` is in `allowed` (entries written `namespace:serviceaccount`). */
export function isServiceAccountAllowed(
  allowed: readonly string[],
  namespace: string,
  serviceAccount: string,
): boolean {
  return allowed.includes(`${namespace}:${serviceAccount}`);
}
