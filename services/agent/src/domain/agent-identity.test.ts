import { MeshidError } from "@meshid/errors";
import { createX509SvidIssuer, pemToCertificates, readCertificateInfo } from "@meshid/pki";
import { createNoopLogger } from "@meshid/telemetry";
import { createFakeClock, createTestCa, type FakeClock, type TestCa } from "@meshid/testkit";
import type {
  AgentAttestationClient,
  AgentIdentityStore,
  AgentTlsMaterial,
  AttestAgentParams,
  PersistedAgentIdentity,
  SignedAgentSvid,
} from "../ports";
import {
  AgentIdentityErrorCode,
  createAgentIdentity,
  type AgentIdentity,
  type AgentTlsMaterialSink,
} from "./agent-identity";
import type { AgentBundle } from "./types";

/** The root's SKI: the authority key id of every SVID the test CA signs. */
function readAuthorityKeyIdHex(c: TestCa): string {
  return Buffer.from(readCertificateInfo(c.rootCertDer).subjectKeyId).toString("hex");
}

const TD = "example.org";
const AGENT_ID = `spiffe://${TD}/meshid/agent/join_token/tok`;
const TTL_SECONDS = 3600;

interface RecordingSink extends AgentTlsMaterialSink {
  readonly sets: AgentTlsMaterial[];
  readonly initial: AgentTlsMaterial;
}

interface Harness {
  readonly identity: AgentIdentity<RecordingSink>;
  readonly clock: FakeClock;
  readonly store: AgentIdentityStore & { saved: PersistedAgentIdentity | undefined };
  readonly attests: AttestAgentParams[];
  readonly renews: number[];
  /** Errors the next attest / renew calls throw, in order. */
  readonly attestErrors: Error[];
  readonly renewErrors: Error[];
}

let ca: TestCa;
let otherCa: TestCa;

beforeAll(async () => {
  ca = await createTestCa({ trustDomain: TD });
  otherCa = await createTestCa({ trustDomain: TD });
});

function agentBundle(c: TestCa, sequenceNumber = 1): AgentBundle {
  return {
    trustDomain: TD,
    x509AuthoritiesDer: [c.rootCertDer],
    taintedAuthorityIds: [],
    sequenceNumber,
  };
}

function createHarness(
  opts: { persisted?: PersistedAgentIdentity; clock?: FakeClock } = {},
): Harness {
  const clock = opts.clock ?? createFakeClock(new Date());
  const issuer = createX509SvidIssuer({
    issuerCertDer: ca.rootCertDer,
    issuerPrivateKey: ca.rootPrivateKey,
  });
  const sign = (csrDer: Uint8Array): SignedAgentSvid => {
    const svid = issuer.issueFromCsr(csrDer, {
      spiffeId: AGENT_ID,
      ttlSeconds: TTL_SECONDS,
      now: clock.now(),
    });
    return { certChainDer: [svid.certDer], serialHex: svid.serialHex, expiresAt: svid.notAfter };
  };
  const attests: AttestAgentParams[] = [];
  const renews: number[] = [];
  const attestErrors: Error[] = [];
  const renewErrors: Error[] = [];
  const client: AgentAttestationClient = {
    attest(params) {
      attests.push(params);
      const err = attestErrors.shift();
      if (err !== undefined) return Promise.reject(err);
      return Promise.resolve({ svid: sign(params.csrDer), bundle: agentBundle(ca, 2) });
    },
    renew(params) {
      renews.push(renews.length);
      const err = renewErrors.shift();
      if (err !== undefined) return Promise.reject(err);
      expect(params.tls.keyPem).toContain("PRIVATE KEY");
      return Promise.resolve(sign(params.csrDer));
    },
  };
  const store = {
    saved: opts.persisted,
    load() {
      return Promise.resolve(this.saved);
    },
    save(identity: PersistedAgentIdentity) {
      this.saved = identity;
      return Promise.resolve();
    },
  };
  const identity = createAgentIdentity<RecordingSink>({
    trustDomain: TD,
    readBootstrapBundle: () => Promise.resolve(agentBundle(ca, 1)),
    tokenSource: {
      attestationType: "join_token",
      cluster: "",
      token: () => Promise.resolve("tok"),
    },
    client,
    store,
    clock,
    logger: createNoopLogger(),
    createSvidSource: (initial) => {
      const sets: AgentTlsMaterial[] = [];
      return { initial, sets, set: (m) => sets.push(m) };
    },
    retryMinMs: 1000,
    retryMaxMs: 8000,
  });
  return { identity, clock, store, attests, renews, attestErrors, renewErrors };
}

function denied(code: string): MeshidError {
  return new MeshidError("permission_denied", code, "refused");
}

async function runUntilSleeping(h: Harness): Promise<{ stop: () => Promise<void> }> {
  const ac = new AbortController();
  const run = h.identity.run(ac.signal);
  await h.clock.whenSleeping(1);
  return {
    stop: async () => {
      ac.abort();
      await run;
    },
  };
}

describe("agent identity", () => {
  it("agent identity – start without a persisted SVID attests and persists", async () => {
    const h = createHarness();
    await h.identity.start();
    expect(h.attests).toHaveLength(1);
    expect(h.attests[0]).toMatchObject({
      attestationType: "join_token",
      token: "tok",
      cluster: "",
    });
    expect(pemToCertificates(h.attests[0]?.bundlePem ?? "")).toEqual([ca.rootCertDer]);
    expect(h.identity.status()).toMatchObject({ state: "ready", spiffeId: AGENT_ID });
    expect(h.store.saved?.certChainDer).toEqual(h.identity.current().certChainDer);
    expect(h.store.saved?.bundle.sequenceNumber).toBe(2);
    const svid = h.identity.current();
    expect(svid.rotateAt.getTime()).toBe(
      h.clock.now().getTime() + (TTL_SECONDS * 1000 + 10_000) / 2,
    );
    expect(h.identity.svidSource().initial.certChainPem).toContain("BEGIN CERTIFICATE");
  });

  it("agent identity – start reuses a valid persisted SVID without attesting", async () => {
    const first = createHarness();
    await first.identity.start();
    const h = createHarness({ persisted: first.store.saved, clock: first.clock });
    await h.identity.start();
    expect(h.attests).toHaveLength(0);
    expect(h.identity.current().serialHex).toBe(first.identity.current().serialHex);
  });

  it("agent identity – a persisted SVID of another CA or an expired one is replaced by attestation", async () => {
    const foreign = await otherCa.issueSvid({ spiffeId: AGENT_ID });
    const h = createHarness({
      persisted: {
        certChainDer: foreign.certChainDer,
        privateKeyPkcs8Der: foreign.keyPkcs8Der,
        bundle: agentBundle(otherCa),
      },
    });
    await h.identity.start();
    expect(h.attests).toHaveLength(1);

    const first = createHarness();
    await first.identity.start();
    const later = createFakeClock(new Date(first.identity.current().notAfter.getTime() + 1000));
    const expired = createHarness({ persisted: first.store.saved, clock: later });
    await expired.identity.start();
    expect(expired.attests).toHaveLength(1);
  });

  it("agent identity – before start the SVID and source are unavailable", () => {
    const h = createHarness();
    expect(() => h.identity.current()).toThrow(
      expect.objectContaining({ code: AgentIdentityErrorCode.notStarted }) as Error,
    );
    expect(() => h.identity.svidSource()).toThrow(/start/);
    expect(h.identity.status()).toEqual({ state: "starting" });
  });

  it("agent identity – a banned agent at start rejects and reports banned", async () => {
    const h = createHarness();
    h.attestErrors.push(denied("ca.agent.banned"));
    await expect(h.identity.start()).rejects.toMatchObject({ code: "ca.agent.banned" });
    expect(h.identity.status().state).toBe("banned");
  });

  it("agent identity – renewal retries with backoff after a failure and clears the error", async () => {
    const h = createHarness();
    await h.identity.start();
    const old = h.identity.current();
    h.renewErrors.push(new MeshidError("unavailable", "grpc.unavailable", "down"));
    const r = await runUntilSleeping(h);
    await h.clock.advance(old.rotateAt.getTime() - h.clock.now().getTime());
    await h.clock.whenSleeping(1);
    expect(h.renews).toHaveLength(1);
    expect(h.identity.status().lastError?.code).toBe("grpc.unavailable");
    expect(h.identity.current().serialHex).toBe(old.serialHex);

    await h.clock.advance(1000);
    await h.clock.whenSleeping(1);
    expect(h.renews).toHaveLength(2);
    expect(h.identity.current().serialHex).not.toBe(old.serialHex);
    expect(h.identity.status().lastError).toBeUndefined();
    expect(h.identity.svidSource().sets).toHaveLength(1);
    expect(h.attests).toHaveLength(1);
    await r.stop();
    expect(h.identity.status().state).toBe("stopped");
  });

  it("agent identity – an unknown agent re-attests instead of renewing", async () => {
    const h = createHarness();
    await h.identity.start();
    h.renewErrors.push(denied("ca.authz.agent_unknown"));
    const r = await runUntilSleeping(h);
    await h.clock.advance(h.identity.current().rotateAt.getTime() - h.clock.now().getTime());
    await h.clock.whenSleeping(1);
    expect(h.renews).toHaveLength(1);
    expect(h.attests).toHaveLength(2);
    await r.stop();
  });

  it("agent identity – an SVID that expired while renewals failed is replaced by attestation", async () => {
    const h = createHarness();
    await h.identity.start();
    for (let i = 0; i < 10_000; i++)
      h.renewErrors.push(new MeshidError("unavailable", "x.y", "down"));
    const r = await runUntilSleeping(h);
    const notAfter = h.identity.current().notAfter.getTime();
    // Step in retry-sized increments: each retry does async crypto before sleeping again.
    for (let i = 0; i < 2000 && h.attests.length < 2; i++) {
      await h.clock.whenSleeping(1);
      await h.clock.advance(Math.max(8000, notAfter - h.clock.now().getTime() - 60_000));
    }
    await h.clock.whenSleeping(1);
    expect(h.renews.length).toBeGreaterThan(1);
    expect(h.attests).toHaveLength(2);
    expect(h.identity.current().notAfter.getTime()).toBeGreaterThan(h.clock.now().getTime());
    await r.stop();
  });

  it("agent identity – banned during renewal stops the loop", async () => {
    const h = createHarness();
    await h.identity.start();
    h.renewErrors.push(denied("ca.agent.banned"));
    const ac = new AbortController();
    const run = h.identity.run(ac.signal);
    await h.clock.whenSleeping(1);
    await h.clock.advance(h.identity.current().rotateAt.getTime() - h.clock.now().getTime());
    await run;
    expect(h.identity.status()).toMatchObject({
      state: "banned",
      lastError: { code: "ca.agent.banned" },
    });
    expect(h.clock.pendingSleeps()).toBe(0);
  });

  it("agent identity – applyBundle persists newer bundles of its trust domain and updates the source", async () => {
    const h = createHarness();
    await h.identity.start();
    await h.identity.applyBundle({ ...agentBundle(otherCa, 9), trustDomain: "other.org" });
    await h.identity.applyBundle(agentBundle(otherCa, 1));
    expect(h.identity.svidSource().sets).toHaveLength(0);

    const rotated: AgentBundle = {
      trustDomain: TD,
      x509AuthoritiesDer: [ca.rootCertDer, otherCa.rootCertDer],
      taintedAuthorityIds: ["ab"],
      sequenceNumber: 3,
    };
    await h.identity.applyBundle(rotated);
    expect(h.identity.bundle()).toEqual(rotated);
    expect(h.store.saved?.bundle).toEqual(rotated);
    const sets = h.identity.svidSource().sets;
    expect(sets).toHaveLength(1);
    expect(pemToCertificates(sets[0]?.bundlePem ?? "")).toEqual(rotated.x509AuthoritiesDer);
  });

  it("agent identity – a bundle tainting the SVID's authority makes run renew at once", async () => {
    const h = createHarness();
    await h.identity.start();
    const old = h.identity.current();
    const r = await runUntilSleeping(h);
    await h.identity.applyBundle({ ...agentBundle(ca, 5), taintedAuthorityIds: ["00ff"] });
    await h.clock.whenSleeping(1);
    expect(h.renews).toHaveLength(0);

    await h.identity.applyBundle({
      ...agentBundle(ca, 6),
      taintedAuthorityIds: [readAuthorityKeyIdHex(ca)],
    });
    // The wake-up cancelled the pending sleep; the loop sleeps again once it has renewed.
    expect(h.clock.pendingSleeps()).toBe(0);
    await h.clock.whenSleeping(1);
    expect(h.renews).toHaveLength(1);
    expect(h.identity.current().serialHex).not.toBe(old.serialHex);
    expect(h.clock.now().getTime()).toBeLessThan(old.rotateAt.getTime());
    await r.stop();
  });
});
