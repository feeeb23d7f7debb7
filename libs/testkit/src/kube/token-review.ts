import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import type { JsonObject } from "./types";

/** Parameters of `issueServiceAccountToken`: what a projected service-account token is bound to. */
export interface IssueServiceAccountTokenParams {
  readonly namespace: string;
  readonly serviceAccount: string;
  /** UID of the ServiceAccount; a fresh one is made up when omitted. */
  readonly serviceAccountUid?: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly nodeName?: string;
  readonly nodeUid?: string;
  /** Audiences (`aud`) the token is valid for; at least one. */
  readonly audiences: readonly string[];
  /** Expiry; default one hour after issue. */
  readonly expiresAt?: Date;
}

/** The claims the stand-in records for an issued token. */
export interface ServiceAccountTokenClaims {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly serviceAccountUid: string;
  readonly podName?: string;
  readonly podUid?: string;
  readonly nodeName?: string;
  readonly nodeUid?: string;
  readonly audiences: readonly string[];
  readonly expiresAt: Date;
  readonly jti: string;
}

/** What a token review concluded. */
export type TokenReviewOutcome =
  | {
      readonly authenticated: true;
      readonly claims: ServiceAccountTokenClaims;
      readonly audiences: string[];
    }
  | { readonly authenticated: false; readonly error: string };

/** Issues and validates service-account tokens (RS256 JWTs shaped like the real API server's). */
export interface ServiceAccountTokenAuthority {
  /** The `iss` claim of issued tokens. */
  readonly issuer: string;
  /** Issues a token; returns the JWT string. */
  issue(params: IssueServiceAccountTokenParams): string;
  /**
   * Reviews a token against the requested audiences (the API server's own audiences when
   * empty), as TokenReview does. `now` defaults to the current time.
   */
  review(token: string, audiences: readonly string[], now?: Date): TokenReviewOutcome;
  /** Claims of a token issued here, if any (no validity checks). */
  claimsOf(token: string): ServiceAccountTokenClaims | undefined;
  /** The JWKS (`/openid/v1/jwks`) holding the signing key. */
  jwks(): JsonObject;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

/** Creates a token authority with a fresh RSA signing key. */
export function createServiceAccountTokenAuthority(
  issuer = "https://kubernetes.default.svc.cluster.local",
): ServiceAccountTokenAuthority {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const kid = randomUUID();
  const tokens = new Map<string, ServiceAccountTokenClaims>();

  const sign = (key: KeyObject, payload: JsonObject): string => {
    const header = base64url(JSON.stringify({ alg: "RS256", kid }));
    const body = base64url(JSON.stringify(payload));
    const signer = createSign("RSA-SHA256");
    signer.update(`${header}.${body}`);
    return `${header}.${body}.${signer.sign(key).toString("base64url")}`;
  };

  return {
    issuer,

    issue(params) {
      if (params.audiences.length === 0) throw new Error("a token needs at least one audience");
      const issuedAt = new Date();
      const claims: ServiceAccountTokenClaims = {
        namespace: params.namespace,
        serviceAccount: params.serviceAccount,
        serviceAccountUid: params.serviceAccountUid ?? randomUUID(),
        ...(params.podName !== undefined ? { podName: params.podName } : {}),
        ...(params.podUid !== undefined ? { podUid: params.podUid } : {}),
        ...(params.nodeName !== undefined ? { nodeName: params.nodeName } : {}),
        ...(params.nodeUid !== undefined ? { nodeUid: params.nodeUid } : {}),
        audiences: [...params.audiences],
        expiresAt: params.expiresAt ?? new Date(issuedAt.getTime() + 3600_000),
        jti: randomUUID(),
      };
      const k8s: JsonObject = {
        namespace: claims.namespace,
        serviceaccount: { name: claims.serviceAccount, uid: claims.serviceAccountUid },
      };
      if (claims.podName !== undefined) {
        k8s.pod = { name: claims.podName, uid: claims.podUid ?? "" };
      }
      if (claims.nodeName !== undefined) {
        k8s.node = { name: claims.nodeName, uid: claims.nodeUid ?? "" };
      }
      const token = sign(privateKey, {
        aud: [...claims.audiences],
        exp: Math.floor(claims.expiresAt.getTime() / 1000),
        iat: Math.floor(issuedAt.getTime() / 1000),
        iss: issuer,
        jti: claims.jti,
        "kubernetes.io": k8s,
        nbf: Math.floor(issuedAt.getTime() / 1000),
        sub: `system:serviceaccount:${claims.namespace}:${claims.serviceAccount}`,
      });
      tokens.set(token, claims);
      return token;
    },

    review(token, audiences, now = new Date()) {
      const claims = tokens.get(token);
      if (!claims)
        return {
          authenticated: false,
          error: "[invalid bearer token, square/go-jose: error in cryptographic primitive]",
        };
      if (claims.expiresAt.getTime() <= now.getTime()) {
        return {
          authenticated: false,
          error: "[invalid bearer token, service account token has expired]",
        };
      }
      const wanted = audiences.length > 0 ? audiences : [issuer];
      const matched = wanted.filter((a) => claims.audiences.includes(a));
      if (matched.length === 0) {
        return {
          authenticated: false,
          error:
            "[invalid bearer token, token audiences " +
            JSON.stringify(claims.audiences) +
            " is invalid for the target audiences " +
            JSON.stringify(wanted) +
            "]",
        };
      }
      return { authenticated: true, claims, audiences: matched };
    },

    claimsOf: (token) => tokens.get(token),

    jwks() {
      const jwk = publicKey.export({ format: "jwk" });
      return {
        keys: [
          { use: "sig", kty: jwk.kty ?? "RSA", kid, alg: "RS256", n: jwk.n ?? "", e: jwk.e ?? "" },
        ],
      };
    },
  };
}

/**
 * Builds the TokenReview `status` the real API server returns for an outcome: username
 * `system:serviceaccount:<ns>:<sa>`, the service-account groups, and `extra` with
 * `authentication.kubernetes.io/pod-name`, `pod-uid`, `node-name`, `node-uid`, `credential-id`.
 */
export function tokenReviewStatus(outcome: TokenReviewOutcome): JsonObject {
  if (!outcome.authenticated) return { user: {}, error: outcome.error };
  const c = outcome.claims;
  const extra: Record<string, string[]> = {};
  if (c.podName !== undefined) {
    extra["authentication.kubernetes.io/pod-name"] = [c.podName];
    extra["authentication.kubernetes.io/pod-uid"] = [c.podUid ?? ""];
  }
  if (c.nodeName !== undefined) {
    extra["authentication.kubernetes.io/node-name"] = [c.nodeName];
    extra["authentication.kubernetes.io/node-uid"] = [c.nodeUid ?? ""];
  }
  extra["authentication.kubernetes.io/credential-id"] = [`JTI=${c.jti}`];
  return {
    authenticated: true,
    user: {
      username: `system:serviceaccount:${c.namespace}:${c.serviceAccount}`,
      uid: c.serviceAccountUid,
      groups: [
        "system:serviceaccounts",
        `system:serviceaccounts:${c.namespace}`,
        "system:authenticated",
      ],
      extra,
    },
    audiences: [...outcome.audiences],
  };
}
