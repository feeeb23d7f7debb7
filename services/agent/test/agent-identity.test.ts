// The agent's own identity against the real CA process: join-token bootstrap, reuse after a
// restart, renewal at half-life on a fake clock, a banned agent, and an expired persisted SVID.
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { createMutableSvidSource, type MutableSvidSource } from "@meshid/grpc-kit";
import { createCsr, generateKeyPair, pemToCertificates } from "@meshid/pki";
import { createBundle, validateX509Svid } from "@meshid/spiffe";
import { createNoopLogger } from "@meshid/telemetry";
import {
  createFakeClock,
  createTempDir,
  type FakeClock,
  type TempDir,
  startMeshidCa,
  type MeshidCaProcess,
} from "@meshid/testkit";
import {
  AGENT_BUNDLE_FILE,
  AGENT_KEY_FILE,
  AGENT_SVID_FILE,
  createDiskAgentIdentityStore,
} from "../src/adapters/agent-identity-store";
import { readBundleFile } from "../src/adapters/bundle-file";
import {
  createGrpcAgentAttestationClient,
  createGrpcCaClient,
} from "../src/adapters/grpc-ca-client";
import { createNodeAttestationTokenSource } from "../src/adapters/node-attestation-token";
import { createAgentIdentity, type AgentIdentity } from "../src/domain/agent-identity";

jest.setTimeout(60_000);

const TD = "example.org";
const logger = createNoopLogger();

let ca: MeshidCaProcess;
let dir: TempDir;
const aborts: AbortController[] = [];
const runs: Promise<void>[] = [];

beforeAll(async () => {
  ca = await startMeshidCa({ trustDomain: TD });
});

afterAll(async () => {
  await ca.stop();
});

beforeEach(async () => {
  dir = await createTempDir("agent-identity-");
});

afterEach(async () => {
  for (const a of aborts.splice(0)) a.abort();
  await Promise.all(runs.splice(0));
  await dir.cleanup();
});

function makeIdentity(params: {
  token: string;
  clock: FakeClock;
  dataDir?: string;
}): AgentIdentity<MutableSvidSource> {
  return createAgentIdentity({
    trustDomain: TD,
    readBootstrapBundle: () => readBundleFile({ path: ca.bundleFile, trustDomain: TD }),
    tokenSource: createNodeAttestationTokenSource({ type: "join_token", joinToken: params.token }),
    client: createGrpcAgentAttestationClient({
      address: ca.address,
      serverId: ca.serverId,
      logger,
    }),
    store: createDiskAgentIdentityStore({
      dataDir: params.dataDir ?? join(dir.path, "agent"),
      logger,
    }),
    clock: params.clock,
    logger,
    createSvidSource: createMutableSvidSource,
  });
}

function startRun(identity: AgentIdentity<MutableSvidSource>): Promise<void> {
  const ac = new AbortController();
  aborts.push(ac);
  const run = identity.run(ac.signal);
  runs.push(run);
  return run;
}

async function listAgents(): Promise<
  Awaited<ReturnType<ReturnType<MeshidCaProcess["admin"]>["agents"]["listAgents"]>>["agents"]
> {
  const admin = ca.admin();
  try {
    return (await admin.agents.listAgents({ pageSize: 1000 })).agents;
  } finally {
    admin.close();
  }
}

async function agentRecord(spiffeId: string) {
  const agents = await listAgents();
  return agents.find((a) => `spiffe://${a.id?.trustDomain}${a.id?.path}` === spiffeId);
}

async function syncWorks(identity: AgentIdentity<MutableSvidSource>): Promise<boolean> {
  const client = createGrpcCaClient({
    address: ca.address,
    serverId: ca.serverId,
    svidSource: identity.svidSource(),
    logger,
  });
  try {
    for await (const page of client.syncAuthorizedEntries(0)) {
      if (page.done) return true;
    }
    return false;
  } finally {
    client.close();
  }
}

/** Advances the fake clock to the identity's rotateAt and waits for the renewal loop to settle. */
async function advanceToRotation(
  clock: FakeClock,
  identity: AgentIdentity<MutableSvidSource>,
): Promise<void> {
  await clock.whenSleeping(1);
  const ms = identity.current().rotateAt.getTime() - clock.now().getTime() + 1;
  await clock.advance(Math.max(0, ms));
}

describe("agent identity against the real CA", () => {
  it("agent identity – join_token bootstrap persists a valid SVID (0700 dir, 0600 files)", async () => {
    const token = await ca.createJoinToken();
    const identity = makeIdentity({ token, clock: createFakeClock(new Date()) });
    expect(identity.status().state).toBe("starting");
    await identity.start();

    const status = identity.status();
    expect(status.state).toBe("ready");
    expect(status.spiffeId).toBe(`spiffe://${TD}/meshid/agent/join_token/${token}`);

    const dataDir = join(dir.path, "agent");
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    for (const f of [AGENT_SVID_FILE, AGENT_KEY_FILE, AGENT_BUNDLE_FILE]) {
      expect((await stat(join(dataDir, f))).mode & 0o777).toBe(0o600);
    }

    const persisted = await createDiskAgentIdentityStore({ dataDir, logger }).load();
    expect(persisted).toBeDefined();
    const bundlePem = await ca.bundlePem();
    const v = await validateX509Svid({
      chain: persisted?.certChainDer ?? [],
      bundle: createBundle({ trustDomain: TD, x509Authorities: pemToCertificates(bundlePem) }),
      at: new Date(),
    });
    expect(v.spiffeId.toString()).toBe(status.spiffeId);
    expect((await agentRecord(status.spiffeId ?? ""))?.x509SvidSerial).toBe(status.serialHex);
    expect(await syncWorks(identity)).toBe(true);
  });

  it("agent identity – a restart reuses the persisted SVID without attesting", async () => {
    const token = await ca.createJoinToken();
    const first = makeIdentity({ token, clock: createFakeClock(new Date()) });
    await first.start();
    const before = await agentRecord(first.status().spiffeId ?? "");

    const second = makeIdentity({ token, clock: createFakeClock(new Date()) });
    await second.start();
    expect(second.status().state).toBe("ready");
    expect(second.status().serialHex).toBe(first.status().serialHex);
    // An attestation would have minted a new serial (and the single-use token would be
    // refused); the CA's record is untouched.
    const after = await agentRecord(second.status().spiffeId ?? "");
    expect(after?.x509SvidSerial).toBe(before?.x509SvidSerial);
    expect(after?.updatedAt?.getTime()).toBe(before?.updatedAt?.getTime());
    expect(await syncWorks(second)).toBe(true);

    // The token is single-use: had the second start attested, it would have failed like this.
    const pair = await generateKeyPair("ec-p256");
    const attestClient = createGrpcAgentAttestationClient({
      address: ca.address,
      serverId: ca.serverId,
      logger,
    });
    await expect(
      attestClient.attest({
        attestationType: "join_token",
        token,
        cluster: "",
        csrDer: await createCsr({ privateKey: pair.privateKey, publicKey: pair.publicKey }),
        bundlePem: await ca.bundlePem(),
      }),
    ).rejects.toMatchObject({
      kind: "permission_denied",
      code: "ca.attestation.join_token_invalid",
    });
  });

  it("agent identity – renews at half-life on the clock: new serial, persisted, source updated", async () => {
    const token = await ca.createJoinToken();
    const clock = createFakeClock(new Date());
    const identity = makeIdentity({ token, clock });
    await identity.start();
    const old = identity.current();
    const seen: string[] = [];
    identity.svidSource().subscribe((m) => seen.push(m.certChainPem));
    void startRun(identity);

    // Just before the half-life nothing happens.
    await clock.whenSleeping(1);
    await clock.advance(old.rotateAt.getTime() - clock.now().getTime() - 1000);
    expect(identity.current().serialHex).toBe(old.serialHex);

    await clock.advance(2000);
    await clock.whenSleeping(1);
    const renewed = identity.current();
    expect(renewed.serialHex).not.toBe(old.serialHex);
    expect(renewed.spiffeId).toBe(old.spiffeId);
    expect(identity.status()).toMatchObject({ state: "ready", serialHex: renewed.serialHex });
    expect(seen).toHaveLength(1);
    expect(pemToCertificates(identity.svidSource().current().certChainPem)[0]).toEqual(
      renewed.certChainDer[0],
    );
    const persisted = await createDiskAgentIdentityStore({
      dataDir: join(dir.path, "agent"),
      logger,
    }).load();
    expect(persisted?.certChainDer[0]).toEqual(renewed.certChainDer[0]);
    expect((await agentRecord(renewed.spiffeId))?.x509SvidSerial).toBe(renewed.serialHex);
    expect(await syncWorks(identity)).toBe(true);
  });

  it("agent identity – a banned agent stops renewing and reports banned", async () => {
    const token = await ca.createJoinToken();
    const clock = createFakeClock(new Date());
    const identity = makeIdentity({ token, clock });
    await identity.start();
    const svid = identity.current();
    const admin = ca.admin();
    try {
      await admin.agents.banAgent({
        id: { trustDomain: TD, path: `/meshid/agent/join_token/${token}` },
      });
    } finally {
      admin.close();
    }
    const run = startRun(identity);
    await advanceToRotation(clock, identity);
    await run;
    const status = identity.status();
    expect(status.state).toBe("banned");
    expect(status.lastError?.code).toBe("ca.agent.banned");
    expect(identity.current().serialHex).toBe(svid.serialHex);
    expect(clock.pendingSleeps()).toBe(0);
  });

  it("agent identity – an expired persisted SVID makes the agent attest again with a new token", async () => {
    const first = makeIdentity({
      token: await ca.createJoinToken(),
      clock: createFakeClock(new Date()),
    });
    await first.start();
    const old = first.current();

    const token2 = await ca.createJoinToken();
    const clock = createFakeClock(new Date(old.notAfter.getTime() + 60_000));
    const second = makeIdentity({ token: token2, clock });
    await second.start();
    expect(second.current().spiffeId).toBe(`spiffe://${TD}/meshid/agent/join_token/${token2}`);
    expect(second.current().serialHex).not.toBe(old.serialHex);
    expect(await agentRecord(second.current().spiffeId)).toBeDefined();
    const persisted = await createDiskAgentIdentityStore({
      dataDir: join(dir.path, "agent"),
      logger,
    }).load();
    expect(persisted?.certChainDer[0]).toEqual(second.current().certChainDer[0]);
  });
});
