import { X509Certificate } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { isMeshidError } from "@meshid/errors";
import {
  createCsr,
  exportPkcs8Pem,
  generateKeyPair,
  readCertificateInfo,
  type KeyType,
} from "@meshid/pki";
import { validateX509Svid } from "@meshid/spiffe";
import { createMemoryLogger, createNoopLogger, type Logger } from "@meshid/telemetry";
import { createFakeClock, createTempDir, createTestCa, type FakeClock } from "@meshid/testkit";
import { createDiskKeyManager } from "../src/adapters/disk-key-manager";
import { createDiskUpstreamAuthority } from "../src/adapters/disk-upstream-authority";
import { createMemoryKeyManager } from "../src/adapters/memory-key-manager";
import type { ActiveSigner, AuthorityManager } from "../src/api/deps";
import { createAuthorityManager, MAX_SCHEDULE_SLEEP_MS } from "../src/domain/authority-manager";
import type { BundleRecord, CaSettings } from "../src/domain/types";
import type { KeyManager, UpstreamAuthority } from "../src/ports";
import {
  createMemoryAuthorityStore,
  createRecordingEventSink,
  createTestCaUpstreamAuthority,
  toSpiffeBundle,
  type MemoryAuthorityStore,
  type RecordingEventSink,
} from "../src/testing/authority-fixtures";

const TD = "example.org";
const H = 3_600_000;
const T0 = new Date("2026-03-01T00:00:00.000Z");
// caTTL 120 h: prepare at ½ (≈60 h), activate at ⅚ (≈100 h), expire at 120 h, pruned 1 h later.
const SETTINGS: CaSettings = {
  caTtlSeconds: 120 * 3_600,
  svidTtlSeconds: 3_600,
  caKeyType: "ec-p256",
};
const GRACE_SECONDS = 3_600;

interface Harness {
  readonly clock: FakeClock;
  readonly store: MemoryAuthorityStore;
  readonly events: RecordingEventSink;
  keyManager: KeyManager;
  manager: AuthorityManager;
  /** A new manager on the same store, key manager (unless given) and clock: a restart. */
  restart(params?: { keyManager?: KeyManager }): Promise<void>;
}

async function setup(
  params: {
    upstream?: UpstreamAuthority;
    settings?: CaSettings;
    logger?: Logger;
    clock?: FakeClock;
    keyManager?: KeyManager;
    init?: boolean;
  } = {},
): Promise<Harness> {
  const clock = params.clock ?? createFakeClock(T0);
  const store = createMemoryAuthorityStore();
  const events = createRecordingEventSink(store);
  const make = (keyManager: KeyManager): AuthorityManager =>
    createAuthorityManager({
      trustDomain: TD,
      keyManager,
      ...(params.upstream === undefined ? {} : { upstream: params.upstream }),
      store,
      events,
      clock,
      logger: params.logger ?? createNoopLogger(),
      settings: params.settings ?? SETTINGS,
      oldAuthorityGraceSeconds: GRACE_SECONDS,
    });
  const keyManager = params.keyManager ?? createMemoryKeyManager();
  const h: Harness = {
    clock,
    store,
    events,
    keyManager,
    manager: make(keyManager),
    async restart(p = {}) {
      if (p.keyManager !== undefined) h.keyManager = p.keyManager;
      h.manager = make(h.keyManager);
      await h.manager.init();
    },
  };
  if (params.init !== false) await h.manager.init();
  return h;
}

/** Moves the fake clock to `hours` after T0. */
async function at(clock: FakeClock, hours: number): Promise<void> {
  const target = T0.getTime() + hours * H;
  await clock.advance(Math.max(0, target - clock.now().getTime()));
}

async function issueSvid(
  signer: ActiveSigner,
  now: Date,
  path = "/ns/default/sa/web",
): Promise<readonly Uint8Array[]> {
  const keys = await generateKeyPair("ec-p256");
  const csr = await createCsr({ privateKey: keys.privateKey, publicKey: keys.publicKey });
  const svid = signer.issuer.issueFromCsr(csr, {
    spiffeId: `spiffe://${TD}${path}`,
    ttlSeconds: 3_600,
    now,
  });
  return [svid.certDer, ...signer.chainDer];
}

async function validates(
  chain: readonly Uint8Array[],
  bundle: BundleRecord,
  at: Date,
): Promise<boolean> {
  try {
    await validateX509Svid({ chain, bundle: toSpiffeBundle(bundle), at });
    return true;
  } catch {
    return false;
  }
}

function bundleIds(bundle: BundleRecord): string[] {
  return bundle.x509Authorities.map((a) =>
    Buffer.from(readCertificateInfo(a.certDer).subjectKeyId).toString("hex"),
  );
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isMeshidError(err, code)).toBe(true);
}

describe("authority manager", () => {
  test("authority manager – init makes and activates a self-signed root and bundles it", async () => {
    const h = await setup();
    expect(h.events.types()).toEqual([
      "authority.prepared",
      "bundle.updated",
      "authority.activated",
    ]);
    const { active, prepared, old } = h.manager.state();
    expect(prepared).toBeUndefined();
    expect(old).toEqual([]);
    expect(active.keyType).toBe("ec-p256");
    expect(active.upstreamAuthorityId).toBe("");
    expect(active.notAfter.getTime()).toBe(T0.getTime() + 120 * H);

    const signer = h.manager.activeSigner();
    expect(signer.authorityId).toBe(active.authorityId);
    expect(signer.chainDer).toEqual([]);
    const bundle = h.manager.bundle();
    expect(bundle.sequenceNumber).toBe(1);
    expect(bundle.trustDomain).toBe(TD);
    expect(bundleIds(bundle)).toEqual([active.authorityId]);
    const cert = readCertificateInfo(bundle.x509Authorities[0]!.certDer);
    expect(cert.basicConstraints?.ca).toBe(true);
    expect(cert.uris).toEqual([`spiffe://${TD}`]);

    // Persisted before announced: the prepared event already sees the saved journal and bundle.
    const [preparedEvent, bundleEvent, activatedEvent] = h.events.events;
    expect(preparedEvent!.storedSequenceNumber).toBe(1);
    expect(preparedEvent!.storedJournal).toEqual([`${active.authorityId}:prepared`]);
    expect(activatedEvent!.storedJournal).toEqual([`${active.authorityId}:active`]);
    expect(bundleEvent!.payload).toEqual({
      trustDomain: TD,
      sequenceNumber: 1,
      x509AuthorityIds: [active.authorityId],
    });
    expect(activatedEvent!.payload).toEqual({
      authorityId: active.authorityId,
      expiresAt: active.notAfter,
      upstreamAuthorityId: "",
    });
    expect(h.store.savedBundle).toBe(bundle);
    expect((await h.keyManager.listKeys()).map((k) => k.keyId)).toEqual(["x509-ca-1"]);
  });

  test("authority manager – full prepare → activate → prune cycle on the schedule", async () => {
    const h = await setup();
    const first = h.manager.state().active;
    const changes: number[] = [];
    h.manager.onBundleChange((b) => changes.push(b.sequenceNumber));
    h.events.clear();

    await at(h.clock, 59);
    await h.manager.tick();
    expect(h.events.types()).toEqual([]);

    await at(h.clock, 60);
    await h.manager.tick();
    expect(h.events.types()).toEqual(["authority.prepared", "bundle.updated"]);
    const next = h.manager.state().prepared!;
    expect(next).toBeDefined();
    expect(next.notBefore.getTime()).toBe(T0.getTime() + 60 * H - 10_000);
    expect(h.manager.bundle().sequenceNumber).toBe(2);
    expect(bundleIds(h.manager.bundle()).sort()).toEqual(
      [first.authorityId, next.authorityId].sort(),
    );
    expect(h.events.events[1]!.payload).toMatchObject({ sequenceNumber: 2 });
    expect(h.manager.activeSigner().authorityId).toBe(first.authorityId);

    h.events.clear();
    await at(h.clock, 99);
    await h.manager.tick();
    expect(h.events.types()).toEqual([]);
    await at(h.clock, 100);
    await h.manager.tick();
    expect(h.events.types()).toEqual(["authority.activated"]);
    expect(h.manager.activeSigner().authorityId).toBe(next.authorityId);
    expect(h.manager.state().old.map((a) => a.authorityId)).toEqual([first.authorityId]);
    expect(h.manager.bundle().sequenceNumber).toBe(2);

    // The old authority stays until notAfter (120 h) + grace (1 h).
    h.events.clear();
    await at(h.clock, 120.5);
    await h.manager.tick();
    expect(h.events.types()).toEqual(["authority.prepared", "bundle.updated"]);
    h.events.clear();
    await at(h.clock, 121);
    await h.manager.tick();
    expect(h.events.types()).toEqual(["bundle.updated"]);
    expect(bundleIds(h.manager.bundle())).not.toContain(first.authorityId);
    expect(h.manager.state().old).toEqual([]);
    expect(h.manager.bundle().sequenceNumber).toBe(4);
    expect(changes).toEqual([2, 3, 4]);
    expect(h.store.savedBundle?.sequenceNumber).toBe(4);
    expect(h.store.authorities.map((a) => a.authorityId)).not.toContain(first.authorityId);
    // The pruned authority's key is gone from the key manager.
    expect((await h.keyManager.listKeys()).map((k) => k.keyId)).toEqual(["x509-ca-2", "x509-ca-3"]);
  });

  test("authority manager – SVIDs validate against the bundle before and after rotation", async () => {
    const h = await setup();
    const before = await issueSvid(h.manager.activeSigner(), h.clock.now());
    expect(await validates(before, h.manager.bundle(), h.clock.now())).toBe(true);

    await h.manager.prepare();
    const prepared = h.manager.state().prepared!;
    await h.manager.activate(prepared.authorityId);
    const after = await issueSvid(h.manager.activeSigner(), h.clock.now());
    const bundle = h.manager.bundle();
    // The old authority is still in the bundle: SVIDs it signed keep validating.
    expect(await validates(before, bundle, h.clock.now())).toBe(true);
    expect(await validates(after, bundle, h.clock.now())).toBe(true);
    // A bundle with only the new authority would refuse the old SVID: the old root matters.
    const onlyNew: BundleRecord = {
      ...bundle,
      x509Authorities: bundle.x509Authorities.filter(
        (a) =>
          Buffer.from(readCertificateInfo(a.certDer).subjectKeyId).toString("hex") ===
          prepared.authorityId,
      ),
    };
    expect(await validates(before, onlyNew, h.clock.now())).toBe(false);
    expect(await validates(after, onlyNew, h.clock.now())).toBe(true);
  });

  test("authority manager – restart on the same store and keys keeps the active authority", async () => {
    const h = await setup();
    await at(h.clock, 61);
    await h.manager.tick();
    const before = h.manager.state();
    const bundle = h.manager.bundle();
    h.events.clear();

    await h.restart();
    expect(h.manager.state()).toEqual(before);
    expect(h.manager.bundle().sequenceNumber).toBe(bundle.sequenceNumber);
    expect(h.events.types()).toEqual([]);
    const svid = await issueSvid(h.manager.activeSigner(), h.clock.now());
    expect(await validates(svid, h.manager.bundle(), h.clock.now())).toBe(true);
  });

  test("authority manager – restart with the disk key manager keeps the same authority", async () => {
    const dir = await createTempDir("meshid-ca-authority-");
    try {
      const dataDir = path.join(dir.path, "data");
      const h = await setup({ keyManager: await createDiskKeyManager({ dataDir }) });
      const before = h.manager.state();
      const svid = await issueSvid(h.manager.activeSigner(), h.clock.now());
      h.events.clear();

      await h.restart({ keyManager: await createDiskKeyManager({ dataDir }) });
      expect(h.manager.state()).toEqual(before);
      expect(h.manager.bundle().sequenceNumber).toBe(1);
      expect(h.events.types()).toEqual([]);
      const again = await issueSvid(h.manager.activeSigner(), h.clock.now());
      expect(await validates(svid, h.manager.bundle(), h.clock.now())).toBe(true);
      expect(await validates(again, h.manager.bundle(), h.clock.now())).toBe(true);
    } finally {
      await dir.cleanup();
    }
  });

  test("authority manager – restart after downtime catches up with the schedule", async () => {
    const h = await setup();
    const first = h.manager.state().active.authorityId;
    h.events.clear();
    await at(h.clock, 105); // down through prepare (60 h) and activate (100 h) times
    await h.restart();
    expect(h.events.types()).toEqual([
      "authority.prepared",
      "bundle.updated",
      "authority.activated",
    ]);
    expect(h.manager.state().active.authorityId).not.toBe(first);
    expect(h.manager.state().old.map((a) => a.authorityId)).toEqual([first]);
  });

  test("authority manager – a lost memory key manager gives a new authority that the bundle shows", async () => {
    const h = await setup();
    const first = h.manager.state().active.authorityId;
    const oldSvid = await issueSvid(h.manager.activeSigner(), h.clock.now());
    h.events.clear();

    await h.restart({ keyManager: createMemoryKeyManager() });
    const state = h.manager.state();
    expect(state.active.authorityId).not.toBe(first);
    expect(state.old.map((a) => a.authorityId)).toEqual([first]);
    expect(h.events.types()).toEqual([
      "authority.prepared",
      "bundle.updated",
      "authority.activated",
    ]);
    const bundle = h.manager.bundle();
    expect(bundle.sequenceNumber).toBe(2);
    expect(bundleIds(bundle).sort()).toEqual([first, state.active.authorityId].sort());
    const svid = await issueSvid(h.manager.activeSigner(), h.clock.now());
    expect(await validates(svid, bundle, h.clock.now())).toBe(true);
    expect(await validates(oldSvid, bundle, h.clock.now())).toBe(true);
    // The new key does not reuse the id of the lost one.
    expect((await h.keyManager.listKeys()).map((k) => k.keyId)).toEqual(["x509-ca-2"]);
  });

  test("authority manager – a lost prepared key drops the prepared authority", async () => {
    const h = await setup();
    await h.manager.prepare();
    const prepared = h.manager.state().prepared!;
    const keyId = h.store.authorities.find((a) => a.authorityId === prepared.authorityId)!.keyId;
    await h.keyManager.deleteKey(keyId);
    const seq = h.manager.bundle().sequenceNumber;
    await h.restart();
    expect(h.manager.state().prepared).toBeUndefined();
    expect(bundleIds(h.manager.bundle())).not.toContain(prepared.authorityId);
    expect(h.manager.bundle().sequenceNumber).toBe(seq + 1);
  });

  test("authority manager – rotateNow prepares and activates a new authority with new settings", async () => {
    const h = await setup();
    const first = h.manager.state().active;
    h.events.clear();
    await at(h.clock, 10);
    await h.manager.applySettings(
      { caKeyType: "ec-p384", caTtlSeconds: 48 * 3_600 },
      { rotateNow: true },
    );
    const { active, old } = h.manager.state();
    expect(active.authorityId).not.toBe(first.authorityId);
    expect(active.keyType).toBe("ec-p384");
    expect(active.notAfter.getTime()).toBe(T0.getTime() + 58 * H);
    expect(old.map((a) => a.authorityId)).toEqual([first.authorityId]);
    expect(h.events.types()).toEqual([
      "authority.prepared",
      "bundle.updated",
      "authority.activated",
    ]);
    expect(h.manager.settings()).toEqual({
      ...SETTINGS,
      caKeyType: "ec-p384",
      caTtlSeconds: 48 * 3_600,
    });
    // The old authority stays in the bundle until it expires (+ grace).
    expect(bundleIds(h.manager.bundle())).toContain(first.authorityId);
    const leaf = new X509Certificate(
      Buffer.from((await issueSvid(h.manager.activeSigner(), h.clock.now()))[0]!),
    );
    expect(
      leaf.checkIssued(
        new X509Certificate(
          Buffer.from(h.store.authorities.find((a) => a.state === "active")!.certDer),
        ),
      ),
    ).toBe(true);
  });

  test("authority manager – caKeyType and caTTL changes apply to the next prepared authority", async () => {
    const h = await setup();
    const first = h.manager.state().active;
    await h.manager.applySettings({ caKeyType: "rsa-2048", caTtlSeconds: 200 * 3_600 });
    expect(h.manager.state().active).toEqual(first);
    expect(h.manager.state().prepared).toBeUndefined();
    await at(h.clock, 60);
    await h.manager.tick();
    const prepared = h.manager.state().prepared!;
    expect(prepared.keyType).toBe("rsa-2048");
    expect(prepared.notAfter.getTime()).toBe(T0.getTime() + 260 * H);
    const record = h.store.authorities.find((a) => a.authorityId === prepared.authorityId)!;
    const cert = new X509Certificate(Buffer.from(record.certDer));
    expect(cert.publicKey.asymmetricKeyType).toBe("rsa");
    expect(cert.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect((await h.keyManager.getKey(record.keyId))?.keyType).toBe("rsa-2048");
  });

  test("authority manager – svidTTL applies at once, warns when rotation would cut it short", async () => {
    const mem = createMemoryLogger();
    const h = await setup({ logger: mem.logger });
    mem.clear();
    await h.manager.applySettings({ svidTtlSeconds: 10 * 3_600 });
    expect(h.manager.settings().svidTtlSeconds).toBe(36_000);
    expect(mem.entries().filter((e) => e.level === "warn")).toEqual([]);
    await h.manager.applySettings({ svidTtlSeconds: 30 * 3_600 }); // > 120 h / 6 = 20 h
    expect(
      mem
        .entries()
        .filter((e) => e.level === "warn")
        .map((e) => e.msg),
    ).toEqual(["svidTTL is longer than caTTL/6: rotation will cut SVIDs short"]);
    expect(h.events.types()).toEqual([
      "authority.prepared",
      "bundle.updated",
      "authority.activated",
    ]);
  });

  test("authority manager – invalid settings are refused and change nothing", async () => {
    const h = await setup();
    const before = h.manager.state();
    await expectCode(
      h.manager.applySettings({ caTtlSeconds: 3_600 }, { rotateNow: true }),
      "ca.settings.invalid",
    );
    await expectCode(h.manager.applySettings({ svidTtlSeconds: 0 }), "ca.settings.invalid");
    await expectCode(
      h.manager.applySettings({ caKeyType: "rsa-1024" as KeyType }),
      "ca.settings.invalid",
    );
    expect(h.manager.settings()).toEqual(SETTINGS);
    expect(h.manager.state()).toEqual(before);
    expect(() =>
      createAuthorityManager({
        trustDomain: TD,
        keyManager: createMemoryKeyManager(),
        store: createMemoryAuthorityStore(),
        events: createRecordingEventSink(),
        clock: h.clock,
        logger: createNoopLogger(),
        settings: { ...SETTINGS, caTtlSeconds: 23 * 3_600 },
      }),
    ).toThrow(/caTtlSeconds/);
  });

  test("authority manager – taint and revoke rules and refusals", async () => {
    const h = await setup();
    const first = h.manager.state().active.authorityId;
    await expectCode(h.manager.taint("nope"), "ca.authority.not_found");
    await expectCode(h.manager.revoke("nope"), "ca.authority.not_found");
    await expectCode(h.manager.activate("nope"), "ca.authority.not_found");
    await expectCode(h.manager.taint(first), "ca.authority.is_active");
    await expectCode(h.manager.revoke(first), "ca.authority.is_active");
    await expectCode(h.manager.activate(first), "ca.authority.not_prepared");

    const prepared = await h.manager.prepare();
    await expectCode(h.manager.taint(prepared.authorityId), "ca.authority.is_prepared");
    // prepare() again replaces the prepared authority (and drops it from the bundle).
    const replacement = await h.manager.prepare();
    expect(h.manager.state().prepared?.authorityId).toBe(replacement.authorityId);
    expect(bundleIds(h.manager.bundle())).not.toContain(prepared.authorityId);
    await expectCode(h.manager.activate(prepared.authorityId), "ca.authority.not_found");

    await h.manager.activate(replacement.authorityId);
    await expectCode(h.manager.revoke(first), "ca.authority.not_tainted");
    const svid = await issueSvid(h.manager.activeSigner(), h.clock.now());

    h.events.clear();
    const seq = h.manager.bundle().sequenceNumber;
    const tainted = await h.manager.taint(first);
    expect(tainted).toMatchObject({ authorityId: first, state: "old", tainted: true });
    expect(h.events.types()).toEqual(["authority.tainted", "bundle.updated"]);
    expect(h.manager.bundle().sequenceNumber).toBe(seq + 1);
    const flags = h.manager
      .bundle()
      .x509Authorities.map((a) => [
        Buffer.from(readCertificateInfo(a.certDer).subjectKeyId).toString("hex"),
        a.tainted,
      ]);
    expect(flags).toContainEqual([first, true]);
    expect(flags).toContainEqual([replacement.authorityId, false]);
    expect(h.store.authorities.find((a) => a.authorityId === first)?.tainted).toBe(true);
    // Tainting twice changes nothing.
    h.events.clear();
    await h.manager.taint(first);
    expect(h.events.types()).toEqual([]);

    const revoked = await h.manager.revoke(first);
    expect(revoked.authorityId).toBe(first);
    expect(h.events.types()).toEqual(["authority.revoked", "bundle.updated"]);
    expect(bundleIds(h.manager.bundle())).toEqual([replacement.authorityId]);
    expect(h.manager.bundle().sequenceNumber).toBe(seq + 2);
    expect(h.manager.state().old).toEqual([]);
    await expectCode(h.manager.revoke(first), "ca.authority.not_found");
    // SVIDs of the current authority are unaffected.
    expect(await validates(svid, h.manager.bundle(), h.clock.now())).toBe(true);
  });

  test("authority manager – a failed publish is logged and never fails the operation", async () => {
    const mem = createMemoryLogger();
    const h = await setup({ logger: mem.logger });
    h.events.failWith = new Error("nats down");
    const prepared = await h.manager.prepare();
    expect(h.store.authorities.map((a) => a.authorityId)).toContain(prepared.authorityId);
    expect(h.events.types()).toContain("authority.prepared");
    expect(mem.entries().some((e) => e.msg === "could not publish an event")).toBe(true);
  });

  test("authority manager – a failed save changes nothing and announces nothing", async () => {
    const h = await setup();
    const before = h.manager.state();
    const bundle = h.manager.bundle();
    h.events.clear();
    h.store.failNextSaveAuthorities(new Error("disk full"));
    await expect(h.manager.prepare()).rejects.toThrow("disk full");
    expect(h.manager.state()).toEqual(before);
    expect(h.manager.bundle()).toBe(bundle);
    expect(h.events.types()).toEqual([]);
    // The key made for the failed authority is not left behind.
    expect((await h.keyManager.listKeys()).map((k) => k.keyId)).toEqual(["x509-ca-1"]);
  });

  test("authority manager – calls before init are refused as unavailable", async () => {
    const h = await setup({ init: false });
    await expectCode(
      Promise.resolve().then(() => h.manager.activeSigner()),
      "ca.authority.not_ready",
    );
    await expectCode(
      Promise.resolve().then(() => h.manager.bundle()),
      "ca.authority.not_ready",
    );
    await expectCode(
      Promise.resolve().then(() => h.manager.state()),
      "ca.authority.not_ready",
    );
    await expectCode(h.manager.tick(), "ca.authority.not_ready");
    await expectCode(h.manager.prepare(), "ca.authority.not_ready");
  });

  test("authority manager – run follows the schedule on the fake clock and stops on abort", async () => {
    const h = await setup();
    const first = h.manager.state().active.authorityId;
    const ac = new AbortController();
    const running = h.manager.run(ac.signal);
    await h.clock.whenSleeping();
    // Sleeps are bounded so a clock jump is noticed within a minute.
    h.events.clear();
    await at(h.clock, 60);
    await h.clock.whenSleeping();
    await at(h.clock, 60.1);
    await h.clock.whenSleeping();
    expect(h.events.types()).toEqual(["authority.prepared", "bundle.updated"]);

    // Clock jump past the activation time: noticed at the next bounded wake-up.
    h.events.clear();
    h.clock.set(new Date(T0.getTime() + 101 * H));
    await h.clock.advance(MAX_SCHEDULE_SLEEP_MS);
    await h.clock.whenSleeping();
    await h.clock.advance(MAX_SCHEDULE_SLEEP_MS);
    await h.clock.whenSleeping();
    expect(h.events.types()).toEqual(["authority.activated"]);
    expect(h.manager.state().old.map((a) => a.authorityId)).toEqual([first]);

    ac.abort();
    await expect(running).resolves.toBeUndefined();
    expect(h.clock.pendingSleeps()).toBe(0);
  });

  describe("with an upstream authority", () => {
    test("authority manager – upstream: intermediate under the upstream, bundle holds its root", async () => {
      const clock = createFakeClock(T0);
      const testCa = await createTestCa({ trustDomain: TD, ttlSeconds: 1_000 * 3_600, now: T0 });
      const upstreamIntermediate = await testCa.issueIntermediate({ now: T0 });
      const upstream = createTestCaUpstreamAuthority({
        testCa,
        signer: upstreamIntermediate,
        clock,
      });
      const h = await setup({ upstream, clock });

      const state = h.manager.state();
      const upstreamSki = Buffer.from(
        readCertificateInfo(upstreamIntermediate.certDer).subjectKeyId,
      ).toString("hex");
      expect(state.active.upstreamAuthorityId).toBe(upstreamSki);
      const bundle = h.manager.bundle();
      expect(bundle.x509Authorities.map((a) => Buffer.from(a.certDer))).toEqual([
        Buffer.from(testCa.rootCertDer),
      ]);
      const signer = h.manager.activeSigner();
      const caCert = h.store.authorities.find((a) => a.state === "active")!.certDer;
      expect(signer.chainDer.map((d) => Buffer.from(d))).toEqual([
        Buffer.from(caCert),
        Buffer.from(upstreamIntermediate.certDer),
      ]);
      expect(h.events.events.find((e) => e.type === "bundle.updated")?.payload).toMatchObject({
        x509AuthorityIds: [
          Buffer.from(readCertificateInfo(testCa.rootCertDer).subjectKeyId).toString("hex"),
        ],
      });

      const first = await issueSvid(signer, clock.now());
      expect(await validates(first, bundle, clock.now())).toBe(true);

      // Rotation: a new intermediate, the bundle (the root) does not change.
      h.events.clear();
      await at(clock, 60);
      await h.manager.tick();
      await at(clock, 99.5);
      const before = await issueSvid(h.manager.activeSigner(), clock.now());
      await at(clock, 100);
      await h.manager.tick();
      expect(h.events.types()).toEqual(["authority.prepared", "authority.activated"]);
      expect(h.manager.bundle().sequenceNumber).toBe(1);
      expect(h.manager.activeSigner().authorityId).not.toBe(signer.authorityId);
      const after = await issueSvid(h.manager.activeSigner(), clock.now());
      expect(await validates(after, h.manager.bundle(), clock.now())).toBe(true);
      expect(await validates(before, h.manager.bundle(), clock.now())).toBe(true);
      expect(upstream.mintCount()).toBe(2);

      // Restart keeps it; the root is known from the stored bundle.
      await h.restart();
      expect(h.manager.activeSigner().chainDer).toHaveLength(2);
      expect(h.manager.bundle().sequenceNumber).toBe(1);

      // Taint and revoke of an intermediate: announced, journal updated; the bundle keeps the
      // root, which still anchors the active authority.
      h.events.clear();
      const tainted = await h.manager.taint(signer.authorityId);
      expect(tainted.tainted).toBe(true);
      await h.manager.revoke(signer.authorityId);
      expect(h.events.types()).toEqual(["authority.tainted", "authority.revoked"]);
      expect(h.manager.state().old).toEqual([]);
      expect(h.manager.bundle().sequenceNumber).toBe(1);
      expect(await validates(after, h.manager.bundle(), clock.now())).toBe(true);
    });

    test("authority manager – upstream: with the real disk upstream, leaves validate before and after rotation", async () => {
      const dir = await createTempDir("meshid-ca-upstream-");
      try {
        const clock = createFakeClock(T0);
        const testCa = await createTestCa({ trustDomain: TD, ttlSeconds: 1_000 * 3_600, now: T0 });
        const upstreamCa = await testCa.issueIntermediate({ pathLen: 1, now: T0 });
        const certFilePath = path.join(dir.path, "upstream.crt");
        const keyFilePath = path.join(dir.path, "upstream.key");
        const bundleFilePath = path.join(dir.path, "roots.crt");
        await fs.writeFile(certFilePath, upstreamCa.certPem, { mode: 0o600 });
        await fs.writeFile(keyFilePath, exportPkcs8Pem(upstreamCa.privateKey), { mode: 0o600 });
        await fs.writeFile(bundleFilePath, testCa.rootCertPem, { mode: 0o600 });
        const upstream = await createDiskUpstreamAuthority({
          certFilePath,
          keyFilePath,
          bundleFilePath,
          trustDomain: TD,
          clock,
        });
        const h = await setup({ upstream, clock });
        const first = h.manager.activeSigner();
        expect(h.manager.bundle().x509Authorities.map((a) => Buffer.from(a.certDer))).toEqual([
          Buffer.from(testCa.rootCertDer),
        ]);
        expect(first.chainDer.map((d) => Buffer.from(d))).toEqual([
          Buffer.from(h.store.authorities.find((a) => a.state === "active")!.certDer),
          Buffer.from(upstreamCa.certDer),
        ]);
        expect(h.manager.state().active.upstreamAuthorityId).toBe(
          Buffer.from(readCertificateInfo(upstreamCa.certDer).subjectKeyId).toString("hex"),
        );
        await at(clock, 99.5);
        await h.manager.tick();
        const before = await issueSvid(h.manager.activeSigner(), clock.now());
        expect(await validates(before, h.manager.bundle(), clock.now())).toBe(true);
        await at(clock, 100);
        await h.manager.tick();
        expect(h.manager.activeSigner().authorityId).not.toBe(first.authorityId);
        const after = await issueSvid(h.manager.activeSigner(), clock.now());
        expect(await validates(before, h.manager.bundle(), clock.now())).toBe(true);
        expect(await validates(after, h.manager.bundle(), clock.now())).toBe(true);
        expect(h.manager.bundle().sequenceNumber).toBe(1);
        await upstream.close();
      } finally {
        await dir.cleanup();
      }
    });

    test("authority manager – upstream: every root the upstream returns is bundled, across restarts", async () => {
      const clock = createFakeClock(T0);
      const testCa = await createTestCa({ trustDomain: TD, ttlSeconds: 1_000 * 3_600, now: T0 });
      const nextRoot = await createTestCa({ trustDomain: TD, ttlSeconds: 2_000 * 3_600, now: T0 });
      const upstream = createTestCaUpstreamAuthority({
        testCa,
        clock,
        extraRoots: [nextRoot.rootCertDer],
      });
      const h = await setup({ upstream, clock });
      const roots = (b: BundleRecord): Buffer[] =>
        b.x509Authorities.map((a) => Buffer.from(a.certDer));
      const expected = [Buffer.from(testCa.rootCertDer), Buffer.from(nextRoot.rootCertDer)];
      expect(roots(h.manager.bundle())).toEqual(expected);
      expect(h.manager.bundle().sequenceNumber).toBe(1);

      await h.restart();
      expect(roots(h.manager.bundle())).toEqual(expected);
      expect(h.manager.bundle().sequenceNumber).toBe(1);
    });

    test("authority manager – upstream: the authority's lifetime is capped by the upstream certificate", async () => {
      const clock = createFakeClock(T0);
      const testCa = await createTestCa({ trustDomain: TD, ttlSeconds: 50 * 3_600, now: T0 });
      const upstream = createTestCaUpstreamAuthority({ testCa, clock });
      const h = await setup({
        upstream,
        clock,
        settings: { ...SETTINGS, caTtlSeconds: 720 * 3_600 },
      });
      const active = h.manager.state().active;
      expect(active.notAfter.getTime()).toBe(T0.getTime() + 50 * H);
      expect(h.manager.activeSigner().chainDer).toHaveLength(1);
      const svid = await issueSvid(h.manager.activeSigner(), clock.now());
      expect(await validates(svid, h.manager.bundle(), clock.now())).toBe(true);
    });
  });
});
