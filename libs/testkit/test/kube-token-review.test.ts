import * as k8s from "@kubernetes/client-node";
import { startKubeApiServer, type KubeApiServer } from "../src/kube";

describe("kube api server token review", () => {
  let server: KubeApiServer;
  let auth: k8s.AuthenticationV1Api;

  beforeEach(async () => {
    server = await startKubeApiServer();
    auth = server.kubeConfig().makeApiClient(k8s.AuthenticationV1Api);
  });

  afterEach(async () => {
    await server.stop();
  });

  async function review(token: string, audiences?: string[]): Promise<k8s.V1TokenReviewStatus> {
    const result = await auth.createTokenReview({
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { token, ...(audiences ? { audiences } : {}) },
      },
    });
    return result.status!;
  }

  it("token review – right audience authenticates with pod and node extras; wrong audience does not", async () => {
    await server
      .kubeConfig()
      .makeApiClient(k8s.CoreV1Api)
      .createNamespace({ body: { metadata: { name: "meshid-system" } } });
    const pod = server.apply<k8s.V1Pod>({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "agent-x", namespace: "meshid-system" },
      spec: { nodeName: "node-1", containers: [] },
    });
    const token = server.issueServiceAccountToken({
      namespace: "meshid-system",
      serviceAccount: "meshid-agent",
      podName: "agent-x",
      podUid: pod.metadata!.uid!,
      nodeName: "node-1",
      nodeUid: "node-uid-1",
      audiences: ["meshid-ca"],
    });
    expect(token.split(".")).toHaveLength(3);

    const ok = await review(token, ["meshid-ca"]);
    expect(ok.authenticated).toBe(true);
    expect(ok.audiences).toEqual(["meshid-ca"]);
    expect(ok.user?.username).toBe("system:serviceaccount:meshid-system:meshid-agent");
    expect(ok.user?.groups).toContain("system:serviceaccounts:meshid-system");
    expect(ok.user?.extra).toMatchObject({
      "authentication.kubernetes.io/pod-name": ["agent-x"],
      "authentication.kubernetes.io/pod-uid": [pod.metadata!.uid!],
      "authentication.kubernetes.io/node-name": ["node-1"],
      "authentication.kubernetes.io/node-uid": ["node-uid-1"],
    });

    const wrong = await review(token, ["someone-else"]);
    expect(wrong.authenticated).toBeFalsy();
    expect(wrong.error).toContain("audiences");

    const defaultAudience = await review(token);
    expect(defaultAudience.authenticated).toBeFalsy();

    server.delete({ kind: "Pod", name: "agent-x", namespace: "meshid-system" });
    const podGone = await review(token, ["meshid-ca"]);
    expect(podGone.authenticated).toBeFalsy();
    expect(podGone.error).toContain("not found");
  });

  it("token review – unknown and expired tokens are rejected", async () => {
    const unknown = await review("not-a-token", ["meshid-ca"]);
    expect(unknown.authenticated).toBeFalsy();
    const expired = server.issueServiceAccountToken({
      namespace: "default",
      serviceAccount: "x",
      audiences: ["meshid-ca"],
      expiresAt: new Date(Date.now() - 1000),
    });
    const result = await review(expired, ["meshid-ca"]);
    expect(result.authenticated).toBeFalsy();
    expect(result.error).toContain("expired");
    const unbound = server.issueServiceAccountToken({
      namespace: "default",
      serviceAccount: "x",
      audiences: ["meshid-ca"],
    });
    expect((await review(unbound, ["meshid-ca", "other"])).audiences).toEqual(["meshid-ca"]);
  });

  it("token review – the JWT carries the real claims and the JWKS is served", async () => {
    const token = server.issueServiceAccountToken({
      namespace: "default",
      serviceAccount: "sa",
      audiences: ["a"],
    });
    const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as Record<
      string,
      unknown
    >;
    expect(payload).toMatchObject({
      aud: ["a"],
      iss: server.issuer,
      sub: "system:serviceaccount:default:sa",
      "kubernetes.io": { namespace: "default", serviceaccount: { name: "sa" } },
    });
    const res = await fetch(`${server.url}/openid/v1/jwks`, {
      headers: { Authorization: `Bearer ${server.adminToken}` },
    });
    const jwks = (await res.json()) as { keys: Array<{ kty: string; alg: string }> };
    expect(jwks.keys[0]).toMatchObject({ kty: "RSA", alg: "RS256" });
  });
});
