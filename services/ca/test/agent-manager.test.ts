// AgentManager on the real SQLite datastore, with real certificates and k8s_psat through the
// real Kubernetes token reviewer against the testkit API server stand-in.
import type { MeshidError } from "@meshid/errors";
import { formatSelector, parseSpiffeId } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import { createKubeClient, type KubeClient } from "@meshid/kube";
import { startKubeApiServer, type KubeApiServer } from "@meshid/testkit";
import { createKubeTokenReviewer } from "../src/adapters/kube-token-reviewer";
import { createSqliteDatastore } from "../src/adapters/sqlite-datastore";
import type { AgentManager } from "../src/api/deps";
import { createAgentManager, type PsatClusterConfig } from "../src/domain/agent-manager";
import type { Datastore } from "../src/ports";
import {
  certificateNames,
  createFakeClock,
  createRecordingEventSink,
  createTestAuthority,
  makeCsr,
  opensslVerify,
  rsa1024CsrDer,
  validateIssuedSvid,
  type FakeClock,
  type RecordingEventSink,
  type TestAuthority,
} from "../src/testing/signing-fixtures";

const TD = "example.org";
// Whole seconds: certificates have second precision. Real time, so openssl can check validity.
const START = new Date(Math.floor(Date.now() / 1000) * 1000);
const NODE_UID = "6f1c2d3e-0000-4000-8000-000000000001";
const NODE2_UID = "6f1c2d3e-0000-4000-8000-000000000002";

describe("AgentManager", () => {
  let kube: KubeApiServer;
  let kubeClient: KubeClient;
  let store: Datastore;
  let authority: TestAuthority;
  let events: RecordingEventSink;
  let clock: FakeClock;
  let agents: AgentManager;

  beforeAll(async () => {
    kube = await startKubeApiServer();
    for (const [name, uid] of [
      ["node-1", NODE_UID],
      ["node-2", NODE2_UID],
    ] as const) {
      kube.apply({ apiVersion: "v1", kind: "Node", metadata: { name, uid } });
      kube.apply({
        apiVersion: "v1",
        kind: "Pod",
        metadata: {
          name: `agent-${name}`,
          namespace: "meshid",
          uid: `0000000${name.slice(-1)}-0000-4000-8000-000000000000`,
        },
        spec: { nodeName: name, containers: [{ name: "agent", image: "meshid/agent" }] },
        status: { phase: "Running" },
      });
    }
    store = await createSqliteDatastore({ path: ":memory:" });
    authority = await createTestAuthority({ now: START });
    events = createRecordingEventSink();
    clock = createFakeClock(START);
    kubeClient = createKubeClient({ kubeconfigYaml: kube.kubeConfigYaml() });
    const prod: PsatClusterConfig = {
      reviewer: createKubeTokenReviewer({ client: kubeClient }),
      audience: "meshid-ca",
      allowedServiceAccounts: ["meshid:meshid-agent"],
    };
    agents = createAgentManager({
      trustDomain: TD,
      store,
      authority,
      tokenReviewers: new Map([["prod", prod]]),
      events,
      clock,
      logger: createNoopLogger(),
      agentSvidTtlSeconds: 1800,
      joinTokenMaxTtlSeconds: 3600,
    });
  });

  afterAll(async () => {
    await store.close();
    kubeClient.close();
    await kube.stop();
  });

  beforeEach(() => {
    events.events.length = 0;
  });

  function psatToken(
    node: "node-1" | "node-2",
    over: { audiences?: string[]; serviceAccount?: string; withNodeUid?: boolean } = {},
  ): string {
    return kube.issueServiceAccountToken({
      namespace: "meshid",
      serviceAccount: over.serviceAccount ?? "meshid-agent",
      podName: `agent-${node}`,
      podUid: `0000000${node.slice(-1)}-0000-4000-8000-000000000000`,
      nodeName: node,
      ...(over.withNodeUid === false ? {} : { nodeUid: node === "node-1" ? NODE_UID : NODE2_UID }),
      audiences: over.audiences ?? ["meshid-ca"],
    });
  }

  async function joinTokenAgent(token?: string) {
    const jt = await agents.createJoinToken({ ttlSeconds: 600, ...(token ? { token } : {}) });
    const { csrDer } = await makeCsr();
    return agents.attest({ attestationType: "join_token", token: jt.token, cluster: "", csrDer });
  }

  it("join_token – attests once: agent ID, stored agent, verifiable SVID, agent.attested", async () => {
    const jt = await agents.createJoinToken({ ttlSeconds: 600 });
    expect(jt.token).toMatch(/^[0-9a-f]{32}$/);
    expect(jt.expiresAt.getTime() - START.getTime()).toBe(600_000);
    const { csrDer } = await makeCsr();
    const { agent, svid } = await agents.attest({
      attestationType: "join_token",
      token: jt.token,
      cluster: "",
      csrDer,
    });
    const id = `spiffe://example.org/meshid/agent/join_token/${jt.token}`;
    expect(agent.spiffeId.toString()).toBe(id);
    expect(agent).toMatchObject({ attestationType: "join_token", banned: false, selectors: [] });
    expect(agent.x509SvidSerial).toBe(svid.serialHex);
    expect(svid.expiresAt.getTime() - START.getTime()).toBe(1_800_000);
    expect(await store.getAgent(id)).toMatchObject({
      x509SvidSerial: svid.serialHex,
      x509SvidExpiresAt: svid.expiresAt,
      banned: false,
    });
    const names = certificateNames(svid.certChainDer[0] as Uint8Array);
    expect(names).toMatchObject({ uris: [id], dnsNames: [] });
    await validateIssuedSvid(svid.certChainDer, authority, START);
    for (const purpose of ["sslclient", "sslserver"] as const) {
      expect(await opensslVerify(svid.certChainDer, authority.rootCertDer, purpose, START)).toMatch(
        /OK/,
      );
    }
    expect(events.ofType("agent.attested")).toEqual([
      { agentId: id, attestationType: "join_token", nodeName: "" },
    ]);
    expect(await agents.checkAgent(agent.spiffeId, svid.serialHex)).toBe("ok");
  });

  it("k8s_psat – attests a node: agent ID from cluster and node UID, node selectors", async () => {
    const { csrDer } = await makeCsr();
    const token = psatToken("node-1");
    const { agent, svid } = await agents.attest({
      attestationType: "k8s_psat",
      token,
      cluster: "prod",
      csrDer,
    });
    const id = `spiffe://example.org/meshid/agent/k8s_psat/prod/${NODE_UID}`;
    expect(agent.spiffeId.toString()).toBe(id);
    expect(agent.selectors.map(formatSelector)).toEqual([
      "k8s_psat:agent_node_name:node-1",
      `k8s_psat:agent_node_uid:${NODE_UID}`,
      "k8s_psat:agent_ns:meshid",
      "k8s_psat:agent_sa:meshid-agent",
      "k8s_psat:cluster:prod",
    ]);
    expect((await store.getAgent(id))?.selectors.map(formatSelector)).toEqual(
      agent.selectors.map(formatSelector),
    );
    await validateIssuedSvid(svid.certChainDer, authority, START);
    await opensslVerify(svid.certChainDer, authority.rootCertDer, "sslclient", START);
    const attested = events.ofType("agent.attested");
    expect(attested).toEqual([{ agentId: id, attestationType: "k8s_psat", nodeName: "node-1" }]);
    expect(JSON.stringify(events.events)).not.toContain(token);
  });

  it("k8s_psat – looks the node UID up when the token does not carry it; re-attestation keeps createdAt", async () => {
    const first = await agents.attest({
      attestationType: "k8s_psat",
      token: psatToken("node-2", { withNodeUid: false }),
      cluster: "prod",
      csrDer: (await makeCsr()).csrDer,
    });
    expect(first.agent.spiffeId.toString()).toBe(
      `spiffe://example.org/meshid/agent/k8s_psat/prod/${NODE2_UID}`,
    );
    clock.advance(60_000);
    const again = await agents.attest({
      attestationType: "k8s_psat",
      token: psatToken("node-2"),
      cluster: "prod",
      csrDer: (await makeCsr()).csrDer,
    });
    expect(again.agent.createdAt).toEqual(first.agent.createdAt);
    expect(again.agent.updatedAt.getTime()).toBe(first.agent.updatedAt.getTime() + 60_000);
    expect(await agents.checkAgent(again.agent.spiffeId, first.svid.serialHex)).toBe("unknown");
    expect(await agents.checkAgent(again.agent.spiffeId, again.svid.serialHex)).toBe("ok");
    clock.advance(-60_000);
  });

  it("renew – new serial; the current and the just-replaced serial are ok, older ones unknown", async () => {
    const { agent, svid: first } = await joinTokenAgent();
    const second = await agents.renew(agent.spiffeId, (await makeCsr()).csrDer);
    expect(second.serialHex).not.toBe(first.serialHex);
    expect(second.spiffeId.toString()).toBe(agent.spiffeId.toString());
    await validateIssuedSvid(second.certChainDer, authority, START);
    expect((await store.getAgent(agent.spiffeId.toString()))?.x509SvidSerial).toBe(
      second.serialHex,
    );
    expect(await agents.checkAgent(agent.spiffeId, second.serialHex)).toBe("ok");
    expect(await agents.checkAgent(agent.spiffeId, first.serialHex)).toBe("ok");
    // Serial spelled as TLS reports it: uppercase, maybe with a leading zero octet.
    expect(await agents.checkAgent(agent.spiffeId, `00${second.serialHex.toUpperCase()}`)).toBe(
      "ok",
    );
    const third = await agents.renew(agent.spiffeId, (await makeCsr()).csrDer);
    expect(await agents.checkAgent(agent.spiffeId, third.serialHex)).toBe("ok");
    expect(await agents.checkAgent(agent.spiffeId, second.serialHex)).toBe("ok");
    expect(await agents.checkAgent(agent.spiffeId, first.serialHex)).toBe("unknown");
    expect(await agents.checkAgent(agent.spiffeId, "")).toBe("unknown");
    expect(
      await agents.checkAgent(
        parseSpiffeId("spiffe://example.org/meshid/agent/join_token/nobody"),
        third.serialHex,
      ),
    ).toBe("unknown");
  });

  it("ban – agent.banned, renew and checkAgent refuse it; delete – agent.deleted, then it may attest again", async () => {
    const token = "rack-7-bootstrap";
    const { agent, svid } = await joinTokenAgent(token);
    const banned = await agents.ban(agent.spiffeId);
    expect(banned.banned).toBe(true);
    expect((await store.getAgent(agent.spiffeId.toString()))?.banned).toBe(true);
    expect(events.ofType("agent.banned")).toEqual([{ agentId: agent.spiffeId.toString() }]);
    expect(await agents.checkAgent(agent.spiffeId, svid.serialHex)).toBe("banned");
    const listed = await agents.list({ onlyBanned: true });
    expect(listed.items.map((a) => a.spiffeId.toString())).toContain(agent.spiffeId.toString());

    await agents.delete(agent.spiffeId);
    expect(events.ofType("agent.deleted")).toEqual([{ agentId: agent.spiffeId.toString() }]);
    expect(await store.getAgent(agent.spiffeId.toString())).toBeUndefined();
    const back = await joinTokenAgent(token);
    expect(back.agent.spiffeId.toString()).toBe(agent.spiffeId.toString());
    expect(back.agent.banned).toBe(false);
  });

  it("ban / delete – an unknown agent is not_found", async () => {
    const nobody = parseSpiffeId("spiffe://example.org/meshid/agent/join_token/nobody");
    await expect(agents.ban(nobody)).rejects.toMatchObject({
      kind: "not_found",
      code: "ca.agent.not_found",
    });
    await expect(agents.delete(nobody)).rejects.toMatchObject({
      kind: "not_found",
      code: "ca.agent.not_found",
    });
    expect(events.events).toHaveLength(0);
  });

  it("createJoinToken – TTL in (0, max], token shape checked, duplicates refused", async () => {
    for (const ttlSeconds of [0, -5, 3601, Number.NaN]) {
      await expect(agents.createJoinToken({ ttlSeconds })).rejects.toMatchObject({
        kind: "invalid_argument",
        code: "ca.join_token.ttl_invalid",
      });
    }
    await expect(agents.createJoinToken({ ttlSeconds: 60, token: "a/b" })).rejects.toMatchObject({
      kind: "invalid_argument",
      code: "ca.join_token.invalid",
    });
    const jt = await agents.createJoinToken({ ttlSeconds: 3600, token: "fixed-token" });
    expect(jt).toEqual({ token: "fixed-token", expiresAt: new Date(START.getTime() + 3_600_000) });
    await expect(
      agents.createJoinToken({ ttlSeconds: 60, token: "fixed-token" }),
    ).rejects.toMatchObject({ kind: "already_exists" });
  });

  describe("bad input", () => {
    type Case = {
      name: string;
      kind: MeshidError["kind"];
      code: string;
      run: () => Promise<unknown>;
      /** Extra check that the input changed nothing (e.g. a join token not burnt). */
      after?: () => Promise<void>;
    };

    const attestJoin = async (token: string, csrDer?: Uint8Array) =>
      agents.attest({
        attestationType: "join_token",
        token,
        cluster: "",
        csrDer: csrDer ?? (await makeCsr()).csrDer,
      });
    const attestPsat = async (token: string, cluster = "prod") =>
      agents.attest({
        attestationType: "k8s_psat",
        token,
        cluster,
        csrDer: (await makeCsr()).csrDer,
      });

    const cases: Case[] = [
      {
        name: "malformed CSR on attest (the join token is not burnt)",
        kind: "invalid_argument",
        code: "pki.csr.malformed",
        run: async () => {
          await agents.createJoinToken({ ttlSeconds: 60, token: "keep-me-1" });
          return attestJoin("keep-me-1", new Uint8Array([1, 2, 3]));
        },
        after: async () => {
          await expect(attestJoin("keep-me-1")).resolves.toBeDefined();
        },
      },
      {
        name: "RSA-1024 CSR on attest (the join token is not burnt)",
        kind: "invalid_argument",
        code: "pki.key.unsupported",
        run: async () => {
          await agents.createJoinToken({ ttlSeconds: 60, token: "keep-me-2" });
          return attestJoin("keep-me-2", rsa1024CsrDer());
        },
        after: async () => {
          await expect(attestJoin("keep-me-2")).resolves.toBeDefined();
        },
      },
      {
        name: "reused join token",
        kind: "permission_denied",
        code: "ca.attestation.join_token_invalid",
        run: async () => {
          await joinTokenAgent("used-once");
          return attestJoin("used-once");
        },
      },
      {
        name: "unknown join token",
        kind: "permission_denied",
        code: "ca.attestation.join_token_invalid",
        run: () => attestJoin("never-created"),
      },
      {
        name: "expired join token",
        kind: "permission_denied",
        code: "ca.attestation.join_token_invalid",
        run: async () => {
          await agents.createJoinToken({ ttlSeconds: 60, token: "short-lived" });
          clock.advance(61_000);
          try {
            return await attestJoin("short-lived");
          } finally {
            clock.advance(-61_000);
          }
        },
      },
      {
        name: "join token that cannot be an agent ID",
        kind: "permission_denied",
        code: "ca.attestation.join_token_invalid",
        run: () => attestJoin("../../admin"),
      },
      {
        name: "banned agent re-attesting (its re-issued token is not burnt)",
        kind: "permission_denied",
        code: "ca.agent.banned",
        run: async () => {
          const { agent } = await joinTokenAgent("banned-node");
          await agents.ban(agent.spiffeId);
          await agents.createJoinToken({ ttlSeconds: 60, token: "banned-node" });
          return attestJoin("banned-node");
        },
        after: async () => {
          await expect(
            agents.createJoinToken({ ttlSeconds: 60, token: "banned-node" }),
          ).rejects.toMatchObject({ kind: "already_exists" });
        },
      },
      {
        name: "banned agent renewing",
        kind: "permission_denied",
        code: "ca.agent.banned",
        run: async () => {
          const { agent } = await joinTokenAgent();
          await agents.ban(agent.spiffeId);
          return agents.renew(agent.spiffeId, (await makeCsr()).csrDer);
        },
      },
      {
        name: "unknown agent renewing",
        kind: "permission_denied",
        code: "ca.agent.not_found",
        run: async () =>
          agents.renew(
            parseSpiffeId("spiffe://example.org/meshid/agent/join_token/ghost"),
            (await makeCsr()).csrDer,
          ),
      },
      {
        name: "wrong PSAT audience",
        kind: "permission_denied",
        code: "ca.attestation.psat_invalid",
        run: () => attestPsat(psatToken("node-1", { audiences: ["vault"] })),
      },
      {
        name: "service account not allowed",
        kind: "permission_denied",
        code: "ca.attestation.service_account_not_allowed",
        run: () => attestPsat(psatToken("node-1", { serviceAccount: "default" })),
      },
      {
        name: "unknown cluster",
        kind: "permission_denied",
        code: "ca.attestation.unknown_cluster",
        run: () => attestPsat(psatToken("node-1"), "staging"),
      },
      {
        name: "unknown attestation type",
        kind: "invalid_argument",
        code: "ca.attestation.unknown_type",
        run: async () =>
          agents.attest({
            attestationType: "aws_iid",
            token: "x",
            cluster: "",
            csrDer: (await makeCsr()).csrDer,
          }),
      },
    ];

    it.each(cases)("agents – bad input: $name → $kind ($code), store unchanged", async (c) => {
      // Setup steps inside run() may change the store; snapshot around the refused call only.
      let snapshot: unknown;
      const originalAttest = agents.attest.bind(agents);
      const originalRenew = agents.renew.bind(agents);
      const takeSnapshot = async () =>
        JSON.stringify((await store.listAgents({ pageSize: 1000 })).items);
      // Wrap the two calls that bad input reaches so the snapshot is taken right before.
      const wrapped: AgentManager = {
        ...agents,
        attest: async (p) => {
          snapshot = await takeSnapshot();
          return originalAttest(p);
        },
        renew: async (id, csr) => {
          snapshot = await takeSnapshot();
          return originalRenew(id, csr);
        },
      };
      const saved = agents;
      agents = wrapped;
      let error: unknown;
      try {
        error = await c.run().then(
          () => undefined,
          (e: unknown) => e,
        );
      } finally {
        agents = saved;
      }
      expect(error).toMatchObject({ kind: c.kind, code: c.code });
      expect(await takeSnapshot()).toBe(snapshot);
      await c.after?.();
    });
  });
});
