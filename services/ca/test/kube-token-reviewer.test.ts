// createKubeTokenReviewer against the testkit Kubernetes API server stand-in (real HTTP through
// @meshid/kube's client): TokenReview outcomes, audiences, extras and Node lookups.
import { isMeshidError } from "@meshid/errors";
import { createKubeClient, type KubeClient } from "@meshid/kube";
import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import { createKubeTokenReviewer } from "../src/adapters/kube-token-reviewer";
import type { TokenReviewer } from "../src/ports";

const NODE_UID = "6f1c2d3e-0000-4000-8000-000000000001";
const POD_UID = "9a8b7c6d-0000-4000-8000-000000000002";

async function codeOf(p: Promise<unknown>): Promise<{ code: string; kind: string }> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isMeshidError(err)) throw new Error(`expected a MeshidError, got ${String(err)}`);
  expect(JSON.stringify(err.message)).not.toMatch(/eyJ/); // never the token
  return { code: err.code, kind: err.kind };
}

describe("createKubeTokenReviewer", () => {
  let kube: KubeApiServer;
  let client: KubeClient;
  let reviewer: TokenReviewer;

  beforeAll(async () => {
    kube = await startKubeApiServer();
    kube.apply({
      apiVersion: "v1",
      kind: "Node",
      metadata: { name: "node-1", uid: NODE_UID },
    });
    kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "meshid-agent-x7k2p", namespace: "meshid", uid: POD_UID },
      spec: {
        nodeName: "node-1",
        serviceAccountName: "meshid-agent",
        containers: [{ name: "agent", image: "meshid/agent" }],
      },
      status: { phase: "Running" },
    });
    client = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
    reviewer = createKubeTokenReviewer({ client });
  });

  afterAll(async () => {
    client.close();
    await kube.stop();
  });

  function agentToken(params: { audiences?: string[]; withNodeUid?: boolean; podUid?: string }) {
    return kube.issueServiceAccountToken({
      namespace: "meshid",
      serviceAccount: "meshid-agent",
      podName: "meshid-agent-x7k2p",
      podUid: params.podUid ?? POD_UID,
      nodeName: "node-1",
      ...(params.withNodeUid === false ? {} : { nodeUid: NODE_UID }),
      audiences: params.audiences ?? ["meshid-ca"],
    });
  }

  it("kube token reviewer – a valid pod-bound token yields namespace, SA, pod and node", async () => {
    const review = await reviewer.reviewToken(agentToken({}), ["meshid-ca"]);
    expect(review).toEqual({
      namespace: "meshid",
      serviceAccount: "meshid-agent",
      podName: "meshid-agent-x7k2p",
      podUid: POD_UID,
      nodeName: "node-1",
      nodeUid: NODE_UID,
    });
    const posted = kube.requests.filter((r) => r.path.includes("tokenreviews"));
    expect(posted.length).toBeGreaterThan(0);
    // The wire format the API server sees: a cluster-scoped create with a typed JSON body.
    const last = posted[posted.length - 1];
    expect(last).toMatchObject({
      method: "POST",
      path: "/apis/authentication.k8s.io/v1/tokenreviews",
      verb: "create",
      group: "authentication.k8s.io",
      status: 201,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenReview",
        spec: { audiences: ["meshid-ca"] },
      },
    });
    expect(last?.contentType).toMatch(/^application\/json/);
  });

  it("kube token reviewer – a token without node UID leaves it empty for getNodeUid", async () => {
    const review = await reviewer.reviewToken(agentToken({ withNodeUid: false }), ["meshid-ca"]);
    expect(review.nodeUid).toBe("");
    expect(await reviewer.getNodeUid(review.nodeName)).toBe(NODE_UID);
  });

  it("kube token reviewer – a token for another audience is psat_invalid", async () => {
    const token = agentToken({ audiences: ["vault"] });
    expect(await codeOf(reviewer.reviewToken(token, ["meshid-ca"]))).toEqual({
      code: "ca.attestation.psat_invalid",
      kind: "permission_denied",
    });
  });

  it("kube token reviewer – a forged token is psat_invalid", async () => {
    const forged = `${agentToken({}).slice(0, -4)}AAAA`;
    expect(await codeOf(reviewer.reviewToken(forged, ["meshid-ca"]))).toEqual({
      code: "ca.attestation.psat_invalid",
      kind: "permission_denied",
    });
  });

  it("kube token reviewer – a token whose pod is gone (other pod UID) is psat_invalid", async () => {
    const token = agentToken({ podUid: "00000000-0000-4000-8000-00000000dead" });
    expect((await codeOf(reviewer.reviewToken(token, ["meshid-ca"]))).code).toBe(
      "ca.attestation.psat_invalid",
    );
  });

  it("kube token reviewer – an unknown node is node_not_found", async () => {
    expect(await codeOf(reviewer.getNodeUid("node-404"))).toEqual({
      code: "ca.attestation.node_not_found",
      kind: "permission_denied",
    });
  });

  it("kube token reviewer – a node name is one path segment (no subresource or traversal)", async () => {
    for (const name of ["node-1/status", "../nodes/node-1", "node-1?watch=true"]) {
      expect(await codeOf(reviewer.getNodeUid(name))).toEqual({
        code: "ca.attestation.node_not_found",
        kind: "permission_denied",
      });
    }
  });

  it("kube token reviewer – API server errors are unavailable", async () => {
    kube.failNext({ verb: "create", resource: "tokenreviews", status: 500 });
    const failed: unknown = await reviewer.reviewToken(agentToken({}), ["meshid-ca"]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMeshidError(failed) && failed.message).toMatch(/\(HTTP 500\)$/);
    kube.failNext({ verb: "create", resource: "tokenreviews", status: 500 });
    expect(await codeOf(reviewer.reviewToken(agentToken({}), ["meshid-ca"]))).toEqual({
      code: "ca.attestation.kube_unavailable",
      kind: "unavailable",
    });
    kube.failNext({ verb: "get", resource: "nodes", status: 503 });
    expect((await codeOf(reviewer.getNodeUid("node-1"))).code).toBe(
      "ca.attestation.kube_unavailable",
    );
  });
});
