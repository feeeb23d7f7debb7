import { isMeshidError } from "@meshid/errors";
import { formatSelector } from "@meshid/spiffe";
import {
  isJoinTokenShape,
  isServiceAccountAllowed,
  joinTokenAgentId,
  psatAgentId,
  psatSelectors,
} from "./node-attestation";

describe("node attestation naming", () => {
  it("join_token – agent ID is spiffe://<td>/meshid/agent/join_token/<token>", () => {
    expect(joinTokenAgentId("example.org", "0a1b2c").toString()).toBe(
      "spiffe://example.org/meshid/agent/join_token/0a1b2c",
    );
  });

  it.each(["", ".", "..", ".hidden", "a/b", "a b", "x".repeat(129), "tok%2f"])(
    "join_token – %j is not a token and is refused as join_token_invalid",
    (token) => {
      expect(isJoinTokenShape(token)).toBe(false);
      let caught: unknown;
      try {
        joinTokenAgentId("example.org", token);
      } catch (err) {
        caught = err;
      }
      expect(isMeshidError(caught, "ca.attestation.join_token_invalid")).toBe(true);
      expect(caught).toMatchObject({ kind: "permission_denied" });
    },
  );

  it("k8s_psat – agent ID is spiffe://<td>/meshid/agent/k8s_psat/<cluster>/<node-uid>", () => {
    expect(
      psatAgentId("example.org", "prod", "6f1c2d3e-0000-4000-8000-000000000001").toString(),
    ).toBe("spiffe://example.org/meshid/agent/k8s_psat/prod/6f1c2d3e-0000-4000-8000-000000000001");
  });

  it("k8s_psat – a node UID or cluster that is not a path segment is refused", () => {
    for (const [cluster, uid] of [
      ["prod", "a/b"],
      ["..", "uid"],
      ["prod", ""],
    ] as const) {
      let caught: unknown;
      try {
        psatAgentId("example.org", cluster, uid);
      } catch (err) {
        caught = err;
      }
      expect(isMeshidError(caught, "ca.attestation.node_uid_invalid")).toBe(true);
    }
  });

  it("k8s_psat – node selectors are the five k8s_psat selectors, normalised", () => {
    const selectors = psatSelectors({
      cluster: "prod",
      namespace: "meshid",
      serviceAccount: "meshid-agent",
      nodeName: "node-1",
      nodeUid: "uid-1",
    });
    expect(selectors.map(formatSelector)).toEqual([
      "k8s_psat:agent_node_name:node-1",
      "k8s_psat:agent_node_uid:uid-1",
      "k8s_psat:agent_ns:meshid",
      "k8s_psat:agent_sa:meshid-agent",
      "k8s_psat:cluster:prod",
    ]);
  });

  it("k8s_psat – service accounts are matched as namespace:serviceaccount", () => {
    const allowed = ["meshid:meshid-agent"];
    expect(isServiceAccountAllowed(allowed, "meshid", "meshid-agent")).toBe(true);
    expect(isServiceAccountAllowed(allowed, "default", "meshid-agent")).toBe(false);
    expect(isServiceAccountAllowed(allowed, "meshid", "default")).toBe(false);
  });
});
