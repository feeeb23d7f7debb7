// TokenReviewer over the Kubernetes API: TokenReview for projected service-account tokens
// (k8s_psat node attestation) and Node lookups for node UIDs.
import { MeshidError } from "@meshid/errors";
import {
  isKubeNotFound,
  kubeStatusCode,
  type KubeClient,
  type KubeNode,
  type KubeObject,
} from "@meshid/kube";
import type { ReviewedServiceAccountToken, TokenReviewer } from "../ports";

/** Dependencies of {@link createKubeTokenReviewer}. */
export interface KubeTokenReviewerDeps {
  /** The cluster's API server, authenticated as the CA. */
  readonly client: KubeClient;
}

/** authentication.k8s.io/v1 TokenReview (the fields the CA sends and reads). */
export interface KubeTokenReview extends KubeObject {
  spec: { token: string; audiences?: string[] };
  status?: {
    authenticated?: boolean;
    audiences?: string[];
    error?: string;
    user?: {
      username?: string;
      uid?: string;
      groups?: string[];
      extra?: Record<string, string[]>;
    };
  };
}

/** Where TokenReviews are created (cluster-scoped). */
const TOKEN_REVIEWS_PATH = "/apis/authentication.k8s.io/v1/tokenreviews";

/** The API path of one Node. */
function nodePath(nodeName: string): string {
  return `/api/v1/nodes/${encodeURIComponent(nodeName)}`;
}

/** Prefix of a service account's username in TokenReview results. */
const SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:";

/** Keys of the TokenReview `user.extra` map set for pod-bound tokens. */
export const TOKEN_REVIEW_EXTRA = {
  podName: "authentication.kubernetes.io/pod-name",
  podUid: "authentication.kubernetes.io/pod-uid",
  nodeName: "authentication.kubernetes.io/node-name",
  nodeUid: "authentication.kubernetes.io/node-uid",
} as const;

function psatInvalid(message: string): MeshidError {
  return new MeshidError("permission_denied", "ca.attestation.psat_invalid", message);
}

function kubeUnavailable(what: string, cause: unknown): MeshidError {
  const code = kubeStatusCode(cause);
  const status = code === undefined ? "" : ` (HTTP ${String(code)})`;
  return new MeshidError(
    "unavailable",
    "ca.attestation.kube_unavailable",
    `${what} failed at the Kubernetes API server${status}`,
    { cause },
  );
}

function firstExtra(extra: Record<string, string[]> | undefined, key: string): string {
  return extra?.[key]?.[0] ?? "";
}

/**
 * Creates a {@link TokenReviewer} for one cluster. `reviewToken` posts a TokenReview with the
 * requested audiences: unauthenticated tokens, tokens for none of the audiences and
 * usernames that are not `system:serviceaccount:<ns>:<sa>` are `ca.attestation.psat_invalid`
 * (permission_denied); the pod and node come from the `authentication.kubernetes.io/*`
 * extras. `getNodeUid` reads the Node (`ca.attestation.node_not_found`, permission_denied,
 * when it does not exist). API server failures are `ca.attestation.kube_unavailable`
 * (unavailable). The token never appears in errors or logs.
 */
export function createKubeTokenReviewer(deps: KubeTokenReviewerDeps): TokenReviewer {
  const { client } = deps;

  return {
    async reviewToken(token, audiences) {
      const body: KubeTokenReview = {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, audiences: [...audiences] },
      };
      let review: KubeTokenReview | undefined;
      try {
        review = await client.request<KubeTokenReview | undefined>({
          method: "POST",
          path: TOKEN_REVIEWS_PATH,
          body,
        });
      } catch (err) {
        throw kubeUnavailable("TokenReview", err);
      }
      const status = review?.status;
      if (status?.authenticated !== true) {
        throw psatInvalid("the service account token was not authenticated by TokenReview");
      }
      // An audience-unaware server returns no audiences: refuse rather than trust it.
      const granted = status.audiences ?? [];
      if (audiences.length > 0 && !audiences.some((a) => granted.includes(a))) {
        throw psatInvalid("the service account token is not valid for the CA's audience");
      }
      const username = status.user?.username ?? "";
      const parts = username.startsWith(SERVICE_ACCOUNT_USER_PREFIX)
        ? username.slice(SERVICE_ACCOUNT_USER_PREFIX.length).split(":")
        : [];
      const [namespace, serviceAccount] = parts;
      if (parts.length !== 2 || !namespace || !serviceAccount) {
        throw psatInvalid("the token does not belong to a service account");
      }
      const extra = status.user?.extra;
      const reviewed: ReviewedServiceAccountToken = {
        namespace,
        serviceAccount,
        podName: firstExtra(extra, TOKEN_REVIEW_EXTRA.podName),
        podUid: firstExtra(extra, TOKEN_REVIEW_EXTRA.podUid),
        nodeName: firstExtra(extra, TOKEN_REVIEW_EXTRA.nodeName),
        nodeUid: firstExtra(extra, TOKEN_REVIEW_EXTRA.nodeUid),
      };
      return reviewed;
    },

    async getNodeUid(nodeName) {
      try {
        const node = await client.request<KubeNode | undefined>({ path: nodePath(nodeName) });
        const uid = node?.metadata?.uid ?? "";
        if (uid === "") throw kubeUnavailable("reading the node", new Error("node has no uid"));
        return uid;
      } catch (err) {
        if (err instanceof MeshidError) throw err;
        if (isKubeNotFound(err)) {
          throw new MeshidError(
            "permission_denied",
            "ca.attestation.node_not_found",
            `node ${JSON.stringify(nodeName)} not found`,
          );
        }
        throw kubeUnavailable("reading the node", err);
      }
    },
  };
}
