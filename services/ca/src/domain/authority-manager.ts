import { X509Certificate } from "node:crypto";
import { MeshidError } from "@meshid/errors";
import type { EventPayload, EventType } from "@meshid/events";
import {
  createCsr,
  createSelfSignedCa,
  createX509SvidIssuer,
  exportSpkiDer,
  readCertificateInfo,
  type KeyType,
} from "@meshid/pki";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { ActiveSigner, AuthorityManager, AuthorityView } from "../api/deps";
import type {
  Clock,
  Datastore,
  EventSink,
  KeyManager,
  ManagedKey,
  UpstreamAuthority,
} from "../ports";
import { checkCaSettings, svidTtlCutShortByRotation } from "./ca-settings";
import { DEFAULT_OLD_AUTHORITY_GRACE_SECONDS, planRotation } from "./rotation-schedule";
import type { AuthorityRecord, BundleAuthority, BundleRecord, CaSettings } from "./types";

/** Default `spiffe_refresh_hint` of the bundle: 5 minutes. */
export const DEFAULT_BUNDLE_REFRESH_HINT_SECONDS = 300;

/** Longest sleep of {@link AuthorityManager.run} between two checks, so clock jumps are seen. */
export const MAX_SCHEDULE_SLEEP_MS = 60_000;

/** Shortest sleep of {@link AuthorityManager.run}: the loop never spins. */
export const MIN_SCHEDULE_SLEEP_MS = 1_000;

/** Sleep of {@link AuthorityManager.run} after a failed step (e.g. upstream unreachable). */
export const RETRY_AFTER_FAILURE_MS = 10_000;

/** Prefix of the key-manager ids of authority keys: `x509-ca-<n>`. */
export const AUTHORITY_KEY_ID_PREFIX = "x509-ca-";

/** Dependencies of {@link createAuthorityManager}. */
export interface AuthorityManagerDeps {
  /** Trust domain name, e.g. `example.org`. */
  readonly trustDomain: string;
  /** Holds the authorities' private keys (`x509-ca-<n>`). */
  readonly keyManager: KeyManager;
  /** Upstream CA; when absent the authorities are self-signed roots. */
  readonly upstream?: UpstreamAuthority;
  /** Where the authorities journal and the bundle are persisted. */
  readonly store: Pick<
    Datastore,
    "listAuthorities" | "saveAuthorities" | "getBundle" | "saveBundle"
  >;
  /** Receives authority.* and bundle.updated events (failures are logged only). */
  readonly events: EventSink;
  /** Time of every decision and certificate; injectable so rotation is tested without sleeps. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** Initial mesh-wide settings; checked like {@link AuthorityManager.applySettings}. */
  readonly settings: CaSettings;
  /**
   * Seconds an old authority stays in the bundle after its notAfter. Default
   * {@link DEFAULT_OLD_AUTHORITY_GRACE_SECONDS} (24 h, SPIRE's safety threshold).
   */
  readonly oldAuthorityGraceSeconds?: number;
  /** `spiffe_refresh_hint` of the bundle. Default {@link DEFAULT_BUNDLE_REFRESH_HINT_SECONDS}. */
  readonly refreshHintSeconds?: number;
}

type AuthorityEventType =
  "authority.prepared" | "authority.activated" | "authority.tainted" | "authority.revoked";

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function skiHex(certDer: Uint8Array): string {
  return hex(readCertificateInfo(certDer).subjectKeyId);
}

function notFound(authorityId: string): MeshidError {
  return new MeshidError("not_found", "ca.authority.not_found", "no such X.509 authority", {
    details: { authorityId },
  });
}

function precondition(code: string, message: string, authorityId: string): MeshidError {
  return new MeshidError("failed_precondition", code, message, { details: { authorityId } });
}

function toView(a: AuthorityRecord): AuthorityView {
  return {
    authorityId: a.authorityId,
    state: a.state,
    notBefore: a.notBefore,
    notAfter: a.notAfter,
    tainted: a.tainted,
    upstreamAuthorityId: a.upstreamAuthorityId,
    keyType: a.keyType,
  };
}

function byNotBefore(a: AuthorityRecord, b: AuthorityRecord): number {
  const d = a.notBefore.getTime() - b.notBefore.getTime();
  if (d !== 0) return d;
  return a.authorityId < b.authorityId ? -1 : a.authorityId > b.authorityId ? 1 : 0;
}

function bundleContentKey(authorities: readonly BundleAuthority[]): string {
  return authorities
    .map((a) => `${hex(a.certDer)}:${a.tainted ? 1 : 0}`)
    .sort()
    .join(",");
}

/**
 * Creates the CA's {@link AuthorityManager}: it keeps the X.509 signing authorities
 * (prepared → active → old) in the store's journal, rotates them on SPIRE's schedule (see
 * rotation-schedule.ts), and maintains the trust bundle.
 *
 * - Authorities are self-signed roots (URI SAN `spiffe://<td>`), or with `upstream`
 *   intermediates minted from a CSR; then the bundle holds the upstream roots instead.
 *   Keys live in the key manager as `x509-ca-<n>`; a key is deleted when its authority
 *   leaves the journal.
 * - `init()` loads the journal; an active or prepared authority whose key is gone from the
 *   key manager (memory key manager after a restart) or no longer matches its certificate is
 *   unusable: the active one becomes old (it stays in the bundle until it expires: its SVIDs
 *   are still out there) and a prepared one is dropped; a new authority is then made and
 *   activated at once when none is usable.
 * - Every change is persisted (journal, then bundle) before listeners are called and events
 *   published; the bundle's sequence number grows by one whenever its authorities change.
 *   A failed publish is logged and never fails the operation.
 * - Operations are serialised: the schedule and manual calls never interleave.
 *
 * Under an upstream, the bundle holds the roots, not the intermediates: every root the
 * upstream returned at its last mint, plus older roots an authority of the journal still
 * chains to. Tainting an intermediate is recorded in the journal and announced
 * (authority.tainted) but does not change the bundle, and revoking it changes the bundle only
 * when no other authority chains to the same (no longer current) root. Throws `ca.settings.invalid` (invalid_argument) for bad settings.
 */
export function createAuthorityManager(deps: AuthorityManagerDeps): AuthorityManager {
  const { trustDomain, keyManager, upstream, store, events, clock } = deps;
  const logger = deps.logger.child({ [LogKeys.component]: "authority-manager" });
  const graceSeconds = deps.oldAuthorityGraceSeconds ?? DEFAULT_OLD_AUTHORITY_GRACE_SECONDS;
  const refreshHintSeconds = deps.refreshHintSeconds ?? DEFAULT_BUNDLE_REFRESH_HINT_SECONDS;
  checkCaSettings(deps.settings);
  let settings: CaSettings = Object.freeze({ ...deps.settings });
  warnIfSvidTtlCutShort(settings);

  let journal: readonly AuthorityRecord[] = [];
  let bundle: BundleRecord | undefined;
  let signer: ActiveSigner | undefined;
  let initialized = false;
  /** Upstream roots seen (from the stored bundle and every mint), by DER hex: anchors. */
  const upstreamRoots = new Map<string, Uint8Array>();
  /**
   * The roots the upstream currently returns (all go into the bundle, also those no authority
   * chains to yet, e.g. during an upstream root rotation): from the last mint, or at start the
   * stored bundle's certificates that are not self-signed authorities of the journal.
   */
  let currentUpstreamRoots: readonly Uint8Array[] = [];
  const listeners = new Set<(bundle: BundleRecord) => void>();
  let queue: Promise<unknown> = Promise.resolve();

  function warnIfSvidTtlCutShort(s: CaSettings): void {
    if (svidTtlCutShortByRotation(s)) {
      logger.warn(
        { svidTtlSeconds: s.svidTtlSeconds, caTtlSeconds: s.caTtlSeconds },
        "svidTTL is longer than caTTL/6: rotation will cut SVIDs short",
      );
    }
  }

  /** Runs `fn` after every operation queued before it. */
  function serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  }

  function requireReady(): void {
    if (!initialized || signer === undefined || bundle === undefined) {
      throw new MeshidError(
        "unavailable",
        "ca.authority.not_ready",
        "the CA has no active authority yet",
      );
    }
  }

  function find(authorityId: string): AuthorityRecord {
    const a = journal.find((r) => r.authorityId === authorityId);
    if (a === undefined) throw notFound(authorityId);
    return a;
  }

  async function keyFor(a: AuthorityRecord): Promise<ManagedKey | undefined> {
    const key = await keyManager.getKey(a.keyId);
    if (key === undefined) return undefined;
    const certSpki = readCertificateInfo(a.certDer).spkiDer;
    return Buffer.compare(exportSpkiDer(key.publicKey), certSpki) === 0 ? key : undefined;
  }

  async function nextKeyId(): Promise<string> {
    let max = 0;
    const ids = [
      ...journal.map((a) => a.keyId),
      ...(await keyManager.listKeys()).map((k) => k.keyId),
    ];
    for (const id of ids) {
      if (!id.startsWith(AUTHORITY_KEY_ID_PREFIX)) continue;
      const n = Number(id.slice(AUTHORITY_KEY_ID_PREFIX.length));
      if (Number.isSafeInteger(n) && n > max) max = n;
    }
    return `${AUTHORITY_KEY_ID_PREFIX}${max + 1}`;
  }

  async function deleteKeyQuietly(keyId: string): Promise<void> {
    try {
      await keyManager.deleteKey(keyId);
    } catch (err) {
      logger.warn({ [LogKeys.err]: err, keyId }, "could not delete an authority key");
    }
  }

  /** The roots (known so far) that issued the top of an upstream authority's chain. */
  function anchorsOf(a: AuthorityRecord): Uint8Array[] {
    const top = new X509Certificate(a.upstreamChainDer.at(-1) ?? a.certDer);
    const out: Uint8Array[] = [];
    for (const der of upstreamRoots.values()) {
      const root = new X509Certificate(der);
      if (top.checkIssued(root) && top.verify(root.publicKey)) out.push(der);
    }
    return out;
  }

  function bundleAuthoritiesFor(records: readonly AuthorityRecord[]): BundleAuthority[] {
    const out = new Map<string, BundleAuthority>();
    for (const a of [...records].sort(byNotBefore)) {
      if (a.upstreamAuthorityId === "") {
        out.set(hex(a.certDer), { certDer: a.certDer, tainted: a.tainted });
        continue;
      }
      const anchors = anchorsOf(a);
      if (anchors.length === 0) {
        logger.error(
          { authorityId: a.authorityId },
          "no known upstream root anchors this authority; it is missing from the bundle",
        );
      }
      for (const der of anchors) {
        const k = hex(der);
        if (!out.has(k)) out.set(k, { certDer: der, tainted: false });
      }
    }
    for (const der of currentUpstreamRoots) {
      const k = hex(der);
      if (!out.has(k)) out.set(k, { certDer: der, tainted: false });
    }
    return [...out.values()];
  }

  async function publish<K extends EventType>(
    type: K,
    payload: EventPayload<K>,
    subject: string,
  ): Promise<void> {
    try {
      await events.publish(type, payload, { subject });
    } catch (err) {
      logger.warn({ [LogKeys.err]: err, [LogKeys.subject]: type }, "could not publish an event");
    }
  }

  /**
   * Makes `next` the journal: builds the signer of its active authority (when it changed),
   * persists the journal and (when its authorities changed) the next bundle, then tells
   * listeners and publishes `announce` followed by bundle.updated.
   */
  async function commit(
    next: readonly AuthorityRecord[],
    announce: readonly { readonly type: AuthorityEventType; readonly authority: AuthorityRecord }[],
  ): Promise<void> {
    const active = next.find((a) => a.state === "active");
    let nextSigner = signer;
    if (active === undefined) nextSigner = undefined;
    else if (signer?.authorityId !== active.authorityId) nextSigner = await buildSigner(active);

    const authorities = bundleAuthoritiesFor(next);
    const changed =
      bundle === undefined ||
      bundle.trustDomain !== trustDomain ||
      bundle.refreshHintSeconds !== refreshHintSeconds ||
      bundleContentKey(bundle.x509Authorities) !== bundleContentKey(authorities);
    const nextBundle: BundleRecord =
      changed || bundle === undefined
        ? Object.freeze({
            trustDomain,
            x509Authorities: Object.freeze(authorities),
            sequenceNumber: (bundle?.sequenceNumber ?? 0) + 1,
            refreshHintSeconds,
          })
        : bundle;

    await store.saveAuthorities(next);
    if (changed) await store.saveBundle(nextBundle);
    journal = Object.freeze([...next]);
    bundle = nextBundle;
    signer = nextSigner;

    if (changed) {
      for (const listener of listeners) {
        try {
          listener(nextBundle);
        } catch (err) {
          logger.warn({ [LogKeys.err]: err }, "a bundle listener threw");
        }
      }
    }
    for (const { type, authority: a } of announce) {
      logger.info(
        { authorityId: a.authorityId, [LogKeys.notAfter]: a.notAfter.toISOString() },
        type,
      );
      await publish(
        type,
        {
          authorityId: a.authorityId,
          expiresAt: a.notAfter,
          upstreamAuthorityId: a.upstreamAuthorityId,
        },
        a.authorityId,
      );
    }
    if (changed) {
      logger.info(
        { sequenceNumber: nextBundle.sequenceNumber, [LogKeys.trustDomain]: trustDomain },
        "bundle.updated",
      );
      await publish(
        "bundle.updated",
        {
          trustDomain,
          sequenceNumber: nextBundle.sequenceNumber,
          x509AuthorityIds: nextBundle.x509Authorities.map((x) => skiHex(x.certDer)),
        },
        trustDomain,
      );
    }
  }

  async function buildSigner(a: AuthorityRecord): Promise<ActiveSigner> {
    const key = await keyFor(a);
    if (key === undefined) {
      throw new MeshidError(
        "internal",
        "ca.authority.key_missing",
        "the key of the authority is missing",
        {
          details: { authorityId: a.authorityId },
        },
      );
    }
    return Object.freeze({
      authorityId: a.authorityId,
      notAfter: a.notAfter,
      chainDer: Object.freeze(
        a.upstreamAuthorityId === "" ? [] : [a.certDer, ...a.upstreamChainDer],
      ),
      issuer: createX509SvidIssuer({ issuerCertDer: a.certDer, issuerPrivateKey: key.privateKey }),
    });
  }

  /** Makes a new authority (state prepared, not yet in the journal) with the current settings. */
  async function mintAuthority(): Promise<AuthorityRecord> {
    const keyType: KeyType = settings.caKeyType;
    const ttlSeconds = settings.caTtlSeconds;
    const keyId = await nextKeyId();
    const key = await keyManager.generateKey(keyId, keyType);
    try {
      const now = clock.now();
      if (upstream === undefined) {
        const ca = await createSelfSignedCa({
          keyPair: { privateKey: key.privateKey, publicKey: key.publicKey },
          trustDomain,
          ttlSeconds,
          now,
        });
        return {
          authorityId: skiHex(ca.certDer),
          state: "prepared",
          certDer: ca.certDer,
          upstreamChainDer: [],
          keyId,
          keyType,
          notBefore: ca.notBefore,
          notAfter: ca.notAfter,
          tainted: false,
          upstreamAuthorityId: "",
        };
      }
      const csrDer = await createCsr({
        privateKey: key.privateKey,
        publicKey: key.publicKey,
        spiffeId: `spiffe://${trustDomain}`,
      });
      const minted = await upstream.mintX509Ca({ csrDer, ttlSeconds });
      const [certDer, ...upstreamChainDer] = minted.x509CaChain;
      if (certDer === undefined || minted.upstreamX509Roots.length === 0) {
        throw new MeshidError(
          "internal",
          "ca.upstream.bad_response",
          "the upstream authority returned no CA certificate or no roots",
        );
      }
      const info = readCertificateInfo(certDer);
      if (
        info.basicConstraints?.ca !== true ||
        Buffer.compare(info.spkiDer, exportSpkiDer(key.publicKey)) !== 0 ||
        info.notAfter.getTime() <= now.getTime()
      ) {
        throw new MeshidError(
          "internal",
          "ca.upstream.bad_response",
          "the upstream authority returned a certificate that is not a valid CA for the requested key",
        );
      }
      for (const root of minted.upstreamX509Roots) upstreamRoots.set(hex(root), root);
      currentUpstreamRoots = [...minted.upstreamX509Roots];
      const record: AuthorityRecord = {
        authorityId: hex(info.subjectKeyId),
        state: "prepared",
        certDer,
        upstreamChainDer,
        keyId,
        keyType,
        notBefore: info.notBefore,
        notAfter: info.notAfter,
        tainted: false,
        upstreamAuthorityId: "",
      };
      const signerCert = upstreamChainDer[0] ?? anchorsOf(record)[0];
      if (signerCert === undefined) {
        throw new MeshidError(
          "internal",
          "ca.upstream.bad_response",
          "the upstream authority's CA certificate does not chain to the roots it returned",
        );
      }
      return { ...record, upstreamAuthorityId: skiHex(signerCert) };
    } catch (err) {
      await deleteKeyQuietly(keyId);
      throw err;
    }
  }

  async function prepareLocked(): Promise<AuthorityRecord> {
    const created = await mintAuthority();
    const replaced = journal.find((a) => a.state === "prepared");
    try {
      await commit(
        [...journal.filter((a) => a.state !== "prepared"), created],
        [{ type: "authority.prepared", authority: created }],
      );
    } catch (err) {
      await deleteKeyQuietly(created.keyId);
      throw err;
    }
    if (replaced !== undefined) await deleteKeyQuietly(replaced.keyId);
    return created;
  }

  async function activateLocked(authorityId: string): Promise<AuthorityRecord> {
    const target = find(authorityId);
    if (target.state !== "prepared") {
      throw precondition(
        "ca.authority.not_prepared",
        "only the prepared authority can be activated",
        authorityId,
      );
    }
    if (target.notAfter.getTime() <= clock.now().getTime()) {
      throw precondition("ca.authority.expired", "the prepared authority has expired", authorityId);
    }
    const activated: AuthorityRecord = { ...target, state: "active" };
    await commit(
      journal.map((a) =>
        a.authorityId === authorityId
          ? activated
          : a.state === "active"
            ? { ...a, state: "old" }
            : a,
      ),
      [{ type: "authority.activated", authority: activated }],
    );
    return activated;
  }

  function requireOld(a: AuthorityRecord): void {
    if (a.state === "active") {
      throw precondition(
        "ca.authority.is_active",
        "the active authority cannot be tainted or revoked",
        a.authorityId,
      );
    }
    if (a.state === "prepared") {
      throw precondition(
        "ca.authority.is_prepared",
        "the prepared authority cannot be tainted or revoked",
        a.authorityId,
      );
    }
  }

  async function pruneLocked(authorityId: string): Promise<void> {
    const gone = journal.find((a) => a.authorityId === authorityId);
    if (gone === undefined) return;
    await commit(
      journal.filter((a) => a.authorityId !== authorityId),
      [],
    );
    logger.info({ authorityId }, "old authority pruned");
    await deleteKeyQuietly(gone.keyId);
  }

  async function tickLocked(): Promise<void> {
    const plan = planRotation({
      authorities: journal,
      now: clock.now(),
      caTtlSeconds: settings.caTtlSeconds,
      oldAuthorityGraceSeconds: graceSeconds,
    });
    for (const action of plan.actions) {
      if (action.kind === "prepare") {
        await prepareLocked();
      } else if (action.kind === "activate") {
        const prepared = journal.find((a) => a.state === "prepared");
        if (prepared !== undefined) await activateLocked(prepared.authorityId);
      } else {
        await pruneLocked(action.authorityId);
      }
    }
  }

  /** Repairs a loaded journal: unusable active/prepared authorities, several actives. */
  async function repair(records: readonly AuthorityRecord[]): Promise<AuthorityRecord[]> {
    const out: AuthorityRecord[] = [];
    const actives = records.filter((a) => a.state === "active").sort(byNotBefore);
    const newestActive = actives.at(-1)?.authorityId;
    const prepareds = records.filter((a) => a.state === "prepared").sort(byNotBefore);
    const newestPrepared = prepareds.at(-1)?.authorityId;
    for (const a of records) {
      if (a.state === "old") {
        out.push(a);
        continue;
      }
      const newest = a.state === "active" ? newestActive : newestPrepared;
      const usable = a.authorityId === newest && (await keyFor(a)) !== undefined;
      if (usable) out.push(a);
      else if (a.state === "active") {
        logger.warn(
          { authorityId: a.authorityId },
          "active authority unusable (key gone or duplicate): it becomes old",
        );
        out.push({ ...a, state: "old" });
      } else {
        logger.warn(
          { authorityId: a.authorityId },
          "prepared authority unusable (key gone or duplicate): dropped",
        );
      }
    }
    return out;
  }

  const manager: AuthorityManager = {
    init(): Promise<void> {
      return serialize(async () => {
        const [records, stored] = await Promise.all([store.listAuthorities(), store.getBundle()]);
        bundle = stored;
        if (stored !== undefined) {
          for (const a of stored.x509Authorities) upstreamRoots.set(hex(a.certDer), a.certDer);
        }
        journal = Object.freeze(await repair(records));
        if (upstream !== undefined && stored !== undefined) {
          const own = new Set(
            journal.filter((a) => a.upstreamAuthorityId === "").map((a) => hex(a.certDer)),
          );
          currentUpstreamRoots = stored.x509Authorities
            .map((a) => a.certDer)
            .filter((der) => !own.has(hex(der)));
        }
        signer = undefined;
        await tickLocked();
        // Persist repairs, build the signer, and bump the bundle if it differs from the journal.
        await commit(journal, []);
        initialized = true;
        const active = journal.find((a) => a.state === "active");
        logger.info(
          { authorityId: active?.authorityId, sequenceNumber: bundle?.sequenceNumber },
          "authorities loaded",
        );
      });
    },

    activeSigner(): ActiveSigner {
      requireReady();
      return signer as ActiveSigner;
    },

    bundle(): BundleRecord {
      requireReady();
      return bundle as BundleRecord;
    },

    onBundleChange(listener: (bundle: BundleRecord) => void): () => void {
      const wrapped = (b: BundleRecord): void => listener(b);
      listeners.add(wrapped);
      return () => {
        listeners.delete(wrapped);
      };
    },

    state() {
      requireReady();
      const active = journal.find((a) => a.state === "active") as AuthorityRecord;
      const prepared = journal.find((a) => a.state === "prepared");
      return {
        active: toView(active),
        ...(prepared === undefined ? {} : { prepared: toView(prepared) }),
        old: journal
          .filter((a) => a.state === "old")
          .sort(byNotBefore)
          .map(toView),
      };
    },

    prepare(): Promise<AuthorityView> {
      return serialize(async () => {
        requireReady();
        return toView(await prepareLocked());
      });
    },

    activate(authorityId: string): Promise<AuthorityView> {
      return serialize(async () => {
        requireReady();
        return toView(await activateLocked(authorityId));
      });
    },

    taint(authorityId: string): Promise<AuthorityView> {
      return serialize(async () => {
        requireReady();
        const target = find(authorityId);
        requireOld(target);
        if (target.tainted) return toView(target);
        const tainted: AuthorityRecord = { ...target, tainted: true };
        await commit(
          journal.map((a) => (a.authorityId === authorityId ? tainted : a)),
          [{ type: "authority.tainted", authority: tainted }],
        );
        return toView(tainted);
      });
    },

    revoke(authorityId: string): Promise<AuthorityView> {
      return serialize(async () => {
        requireReady();
        const target = find(authorityId);
        requireOld(target);
        if (!target.tainted) {
          throw precondition(
            "ca.authority.not_tainted",
            "only a tainted authority can be revoked",
            authorityId,
          );
        }
        await commit(
          journal.filter((a) => a.authorityId !== authorityId),
          [{ type: "authority.revoked", authority: target }],
        );
        await deleteKeyQuietly(target.keyId);
        return toView(target);
      });
    },

    settings(): CaSettings {
      return settings;
    },

    applySettings(
      update: Partial<CaSettings>,
      options?: { readonly rotateNow?: boolean },
    ): Promise<void> {
      return serialize(async () => {
        const defined = Object.fromEntries(
          Object.entries(update).filter(([, v]) => v !== undefined),
        ) as Partial<CaSettings>;
        checkCaSettings(defined);
        if (options?.rotateNow === true) requireReady();
        const next: CaSettings = Object.freeze({ ...settings, ...defined });
        settings = next;
        logger.info(
          {
            caTtlSeconds: next.caTtlSeconds,
            svidTtlSeconds: next.svidTtlSeconds,
            caKeyType: next.caKeyType,
          },
          "CA settings applied",
        );
        warnIfSvidTtlCutShort(next);
        if (options?.rotateNow === true) {
          const created = await prepareLocked();
          await activateLocked(created.authorityId);
        }
      });
    },

    tick(): Promise<void> {
      return serialize(async () => {
        requireReady();
        await tickLocked();
      });
    },

    async run(signal: AbortSignal): Promise<void> {
      while (!signal.aborted) {
        let waitMs = MAX_SCHEDULE_SLEEP_MS;
        try {
          await manager.tick();
          const now = clock.now();
          const plan = planRotation({
            authorities: journal,
            now,
            caTtlSeconds: settings.caTtlSeconds,
            oldAuthorityGraceSeconds: graceSeconds,
          });
          if (plan.nextDecisionAt !== undefined)
            waitMs = plan.nextDecisionAt.getTime() - now.getTime();
          else if (plan.actions.length > 0) waitMs = MIN_SCHEDULE_SLEEP_MS;
        } catch (err) {
          if (signal.aborted) return;
          logger.error({ [LogKeys.err]: err }, "rotation step failed; retrying");
          waitMs = RETRY_AFTER_FAILURE_MS;
        }
        waitMs = Math.min(MAX_SCHEDULE_SLEEP_MS, Math.max(MIN_SCHEDULE_SLEEP_MS, waitMs));
        try {
          await clock.sleep(waitMs, signal);
        } catch (err) {
          if (signal.aborted) return;
          throw err;
        }
      }
    },
  };
  return manager;
}
