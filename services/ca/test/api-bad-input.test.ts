// Bad input over the real API: every case gets its precise gRPC status (of the call, or of the
// batch item) and leaves the store exactly as it was.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createCsr, generateKeyPair } from "@meshid/pki";
import type { meshidTypesV1 } from "@meshid/proto";
import {
  createTempDir,
  runCommand,
  startKubeApiServer,
  type KubeApiServer,
  type TempDir,
} from "@meshid/testkit";
import { ClientError, Status } from "nice-grpc-common";
import { startCaHarness, type CaHarness, type TestAgent } from "../src/testing/ca-api-harness";

jest.setTimeout(90_000);

const TD = "example.org";
const NODE_UID = "2f1b7c9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
const POD_UID = "7d3e8f10-2a4b-4c6d-9e8f-1a2b3c4d5e6f";
const MAX_BATCH = 5;

type Outcome = Status | "ok";

interface Case {
  readonly name: string;
  /** Runs the call; returns the call status, or the status of the first batch item. */
  readonly run: () => Promise<Outcome>;
  readonly expected: Status;
}

async function callStatus(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof ClientError) return err.code;
    throw err;
  }
}

async function itemStatus(
  p: Promise<{ results: { status?: { code: number } | undefined }[] }>,
): Promise<Outcome> {
  let res: { results: { status?: { code: number } | undefined }[] };
  try {
    res = await p;
  } catch (err) {
    if (err instanceof ClientError) return err.code;
    throw err;
  }
  const code = res.results[0]?.status?.code;
  if (code === undefined) throw new Error("no item result");
  return code === 0 ? "ok" : code;
}

function entry(
  patch: Partial<meshidTypesV1.RegistrationEntry>,
  parentPath: string,
): Partial<meshidTypesV1.RegistrationEntry> {
  return {
    spiffeId: { trustDomain: TD, path: "/ns/bad/sa/x" },
    parentId: { trustDomain: TD, path: parentPath },
    selectors: [{ type: "k8s", value: "ns:bad" }],
    ...patch,
  };
}

describe("ca api – bad input", () => {
  let kube: KubeApiServer;
  let kubeDir: TempDir;
  let h: CaHarness;
  let agent: TestAgent;
  let banned: TestAgent;
  let existing: meshidTypesV1.RegistrationEntry;
  let usedToken: string;

  function psatToken(audiences: string[]): string {
    return kube.issueServiceAccountToken({
      namespace: "meshid",
      serviceAccount: "meshid-agent",
      podName: "meshid-agent-1",
      podUid: POD_UID,
      nodeName: "node-1",
      nodeUid: NODE_UID,
      audiences,
    });
  }

  async function snapshot(): Promise<string> {
    const [entries, agents, state, bundle] = await Promise.all([
      h.admin.entry.listEntries({}),
      h.admin.agent.listAgents({}),
      h.admin.authority.getX509AuthorityState({}),
      h.admin.bundle.getBundle({}),
    ]);
    return JSON.stringify({
      entries: entries.entries,
      agents: agents.agents,
      state,
      bundleSequence: bundle.bundle?.sequenceNumber,
    });
  }

  beforeAll(async () => {
    kube = await startKubeApiServer();
    kube.apply({ apiVersion: "v1", kind: "Node", metadata: { name: "node-1", uid: NODE_UID } });
    kube.apply({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "meshid-agent-1", namespace: "meshid", uid: POD_UID },
      spec: {
        nodeName: "node-1",
        serviceAccountName: "meshid-agent",
        containers: [{ name: "agent", image: "meshid/agent" }],
      },
      status: { phase: "Running" },
    });
    kubeDir = await createTempDir("meshid-ca-kube-");
    const kubeconfigFile = join(kubeDir.path, "kubeconfig.yaml");
    await writeFile(kubeconfigFile, kube.kubeConfigYaml());
    h = await startCaHarness({
      maxBatchSize: MAX_BATCH,
      psatClusters: [
        {
          name: "c1",
          allowedServiceAccounts: ["meshid:meshid-agent"],
          kubeconfigFile,
        },
      ],
    });
    agent = await h.attestAgent();
    banned = await h.attestAgent();
    await h.admin.agent.banAgent({ id: { trustDomain: TD, path: banned.spiffeId.path } });
    const created = await h.admin.entry.batchCreateEntry({
      entries: [
        {
          spiffeId: { trustDomain: TD, path: "/ns/default/sa/web" },
          parentId: { trustDomain: TD, path: agent.spiffeId.path },
          selectors: [{ type: "k8s", value: "ns:default" }],
        },
      ],
    });
    existing = created.results[0]?.entry as meshidTypesV1.RegistrationEntry;
    const { token } = await h.admin.agent.createJoinToken({ ttlSeconds: 600 });
    const { csr } = await h.newCsr();
    await h.anonymousClients().agent.attestAgent({
      attestationType: "join_token",
      token,
      csr: Buffer.from(csr),
    });
    usedToken = token;
  });

  afterAll(async () => {
    await h?.close();
    await kube?.stop();
    await kubeDir?.cleanup();
  });

  it("bad input – a valid k8s_psat attestation through the kube stand-in works (control)", async () => {
    const { csr } = await h.newCsr();
    const res = await h.anonymousClients().agent.attestAgent({
      attestationType: "k8s_psat",
      cluster: "c1",
      token: psatToken(["meshid-ca"]),
      csr: Buffer.from(csr),
    });
    expect(res.svid?.spiffeId?.path).toBe(`/meshid/agent/k8s_psat/c1/${NODE_UID}`);
  });

  const cases: Case[] = [
    {
      name: "malformed CSR",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        itemStatus(
          agent.clients.svid.batchNewX509SVID({
            params: [{ entryId: existing.id, csr: Buffer.from("not a csr at all") }],
          }),
        ),
    },
    {
      name: "CSR whose signature does not match its key",
      expected: Status.INVALID_ARGUMENT,
      run: async () => {
        const { csr } = await h.newCsr();
        const bad = Buffer.from(csr);
        bad[bad.length - 3] = (bad[bad.length - 3] ?? 0) ^ 0xff;
        return itemStatus(
          agent.clients.svid.batchNewX509SVID({ params: [{ entryId: existing.id, csr: bad }] }),
        );
      },
    },
    {
      name: "RSA-1024 CSR (built by openssl: pki refuses to build one)",
      expected: Status.INVALID_ARGUMENT,
      run: async () => {
        const der = join(kubeDir.path, "rsa1024.csr.der");
        const out = await runCommand("openssl", [
          "req",
          "-new",
          "-newkey",
          "rsa:1024",
          "-nodes",
          "-keyout",
          join(kubeDir.path, "rsa1024.key"),
          "-outform",
          "DER",
          "-out",
          der,
          "-subj",
          "/CN=rsa1024",
        ]);
        expect(out.code).toBe(0);
        return itemStatus(
          agent.clients.svid.batchNewX509SVID({
            params: [{ entryId: existing.id, csr: await readFile(der) }],
          }),
        );
      },
    },
    {
      name: "invalid SPIFFE ID",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        itemStatus(
          h.admin.entry.batchCreateEntry({
            entries: [
              entry({ spiffeId: { trustDomain: TD, path: "no-slash" } }, agent.spiffeId.path),
            ],
          }),
        ),
    },
    {
      name: "parent in another trust domain",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        itemStatus(
          h.admin.entry.batchCreateEntry({
            entries: [entry({ parentId: { trustDomain: "other.org", path: "/agent" } }, "")],
          }),
        ),
    },
    {
      name: "unknown selector type",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        itemStatus(
          h.admin.entry.batchCreateEntry({
            entries: [
              entry({ selectors: [{ type: "docker", value: "x:y" }] }, agent.spiffeId.path),
            ],
          }),
        ),
    },
    {
      name: "empty selectors",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        itemStatus(
          h.admin.entry.batchCreateEntry({
            entries: [entry({ selectors: [] }, agent.spiffeId.path)],
          }),
        ),
    },
    {
      name: "TTL < 0",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        itemStatus(
          h.admin.entry.batchCreateEntry({
            entries: [entry({ x509SvidTtlSeconds: -5 }, agent.spiffeId.path)],
          }),
        ),
    },
    {
      name: "oversized batch",
      expected: Status.RESOURCE_EXHAUSTED,
      run: () =>
        callStatus(
          h.admin.entry.batchCreateEntry({
            entries: Array.from({ length: MAX_BATCH + 1 }, (_, i) =>
              entry({ spiffeId: { trustDomain: TD, path: `/big/${i}` } }, agent.spiffeId.path),
            ),
          }),
        ),
    },
    {
      name: "empty batch",
      expected: Status.INVALID_ARGUMENT,
      run: () => callStatus(h.admin.entry.batchCreateEntry({ entries: [] })),
    },
    {
      name: "message larger than maxMessageBytes",
      expected: Status.RESOURCE_EXHAUSTED,
      run: () =>
        callStatus(
          h.admin.entry.batchCreateEntry({
            entries: [entry({ hint: "x".repeat(5 * 1024 * 1024) }, agent.spiffeId.path)],
          }),
        ),
    },
    {
      name: "duplicate entry",
      expected: Status.ALREADY_EXISTS,
      run: () =>
        itemStatus(
          h.admin.entry.batchCreateEntry({
            entries: [
              {
                spiffeId: existing.spiffeId,
                parentId: existing.parentId,
                selectors: existing.selectors,
              },
            ],
          }),
        ),
    },
    {
      name: "update of an unknown entry",
      expected: Status.NOT_FOUND,
      run: () =>
        itemStatus(
          h.admin.entry.batchUpdateEntry({
            entries: [{ ...existing, id: "00000000-0000-4000-8000-000000000000" }],
          }),
        ),
    },
    {
      name: "banned agent signs",
      expected: Status.PERMISSION_DENIED,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(
          banned.clients.svid.batchNewX509SVID({
            params: [{ entryId: existing.id, csr: Buffer.from(csr) }],
          }),
        );
      },
    },
    {
      name: "reused join token",
      expected: Status.PERMISSION_DENIED,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(
          h.anonymousClients().agent.attestAgent({
            attestationType: "join_token",
            token: usedToken,
            csr: Buffer.from(csr),
          }),
        );
      },
    },
    {
      name: "wrong PSAT audience (kube stand-in)",
      expected: Status.PERMISSION_DENIED,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(
          h.anonymousClients().agent.attestAgent({
            attestationType: "k8s_psat",
            cluster: "c1",
            token: psatToken(["vault"]),
            csr: Buffer.from(csr),
          }),
        );
      },
    },
    {
      name: "unknown PSAT cluster",
      expected: Status.PERMISSION_DENIED,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(
          h.anonymousClients().agent.attestAgent({
            attestationType: "k8s_psat",
            cluster: "nowhere",
            token: psatToken(["meshid-ca"]),
            csr: Buffer.from(csr),
          }),
        );
      },
    },
    {
      name: "unknown attestation type",
      expected: Status.INVALID_ARGUMENT,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(
          h.anonymousClients().agent.attestAgent({
            attestationType: "aws_iid",
            token: "x",
            csr: Buffer.from(csr),
          }),
        );
      },
    },
    {
      name: "missing fields (AttestAgent without CSR)",
      expected: Status.INVALID_ARGUMENT,
      run: () =>
        callStatus(
          h.anonymousClients().agent.attestAgent({ attestationType: "join_token", token: "abc" }),
        ),
    },
    {
      name: "garbage page token",
      expected: Status.INVALID_ARGUMENT,
      run: () => callStatus(h.admin.entry.listEntries({ pageToken: "%%%garbage%%%" })),
    },
    {
      name: "page size too large",
      expected: Status.INVALID_ARGUMENT,
      run: () => callStatus(h.admin.entry.listEntries({ pageSize: 100_000 })),
    },
    {
      name: "entry id not a UUID",
      expected: Status.INVALID_ARGUMENT,
      run: () => callStatus(h.admin.entry.getEntry({ id: "42" })),
    },
    {
      name: "unknown entry id",
      expected: Status.NOT_FOUND,
      run: () => callStatus(h.admin.entry.getEntry({ id: "00000000-0000-4000-8000-000000000000" })),
    },
    {
      name: "mint for a foreign trust domain",
      expected: Status.INVALID_ARGUMENT,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(
          h.admin.svid.mintX509SVID({
            csr: Buffer.from(csr),
            spiffeId: { trustDomain: "other.org", path: "/x" },
          }),
        );
      },
    },
    {
      name: "join token with TTL 0",
      expected: Status.INVALID_ARGUMENT,
      run: () => callStatus(h.admin.agent.createJoinToken({ ttlSeconds: 0 })),
    },
    {
      name: "ban an unknown agent",
      expected: Status.NOT_FOUND,
      run: () =>
        callStatus(
          h.admin.agent.banAgent({
            id: { trustDomain: TD, path: "/meshid/agent/join_token/nobody" },
          }),
        ),
    },
    {
      name: "activate a non-prepared authority (the active one)",
      expected: Status.FAILED_PRECONDITION,
      run: async () => {
        const state = await h.admin.authority.getX509AuthorityState({});
        return callStatus(
          h.admin.authority.activateX509Authority({ authorityId: state.active?.authorityId ?? "" }),
        );
      },
    },
    {
      name: "activate an unknown authority",
      expected: Status.NOT_FOUND,
      run: () => callStatus(h.admin.authority.activateX509Authority({ authorityId: "abcdef01" })),
    },
    {
      name: "authority id that is not hex",
      expected: Status.INVALID_ARGUMENT,
      run: () => callStatus(h.admin.authority.taintX509Authority({ authorityId: "not-hex!" })),
    },
    {
      name: "revoke the active authority",
      expected: Status.FAILED_PRECONDITION,
      run: async () => {
        const state = await h.admin.authority.getX509AuthorityState({});
        return callStatus(
          h.admin.authority.revokeX509Authority({ authorityId: state.active?.authorityId ?? "" }),
        );
      },
    },
    {
      name: "taint the active authority",
      expected: Status.FAILED_PRECONDITION,
      run: async () => {
        const state = await h.admin.authority.getX509AuthorityState({});
        return callStatus(
          h.admin.authority.taintX509Authority({ authorityId: state.active?.authorityId ?? "" }),
        );
      },
    },
    {
      name: "non-admin calls an admin method",
      expected: Status.PERMISSION_DENIED,
      run: () => callStatus(agent.clients.agent.listAgents({})),
    },
    {
      name: "no client certificate on an agent method",
      expected: Status.UNAUTHENTICATED,
      run: async () => {
        const { csr } = await h.newCsr();
        return callStatus(h.anonymousClients().agent.renewAgent({ csr: Buffer.from(csr) }));
      },
    },
  ];

  it("bad input – the table has at least 20 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(20);
  });

  it.each(cases.map((c) => [c.name, c] as const))(
    "bad input – %s gets its status and changes nothing",
    async (_name, c) => {
      const before = await snapshot();
      expect(await c.run()).toBe(c.expected);
      expect(await snapshot()).toBe(before);
    },
  );

  it("bad input – a P-256 key pair used for a mismatched CSR is refused by the builder or the CA", async () => {
    const a = await generateKeyPair("ec-p256");
    const b = await generateKeyPair("ec-p256");
    let csr: Uint8Array | undefined;
    try {
      csr = await createCsr({ privateKey: a.privateKey, publicKey: b.publicKey });
    } catch {
      csr = undefined;
    }
    if (csr === undefined) return;
    const before = await snapshot();
    expect(
      await itemStatus(
        agent.clients.svid.batchNewX509SVID({
          params: [{ entryId: existing.id, csr: Buffer.from(csr) }],
        }),
      ),
    ).toBe(Status.INVALID_ARGUMENT);
    expect(await snapshot()).toBe(before);
  });
});
