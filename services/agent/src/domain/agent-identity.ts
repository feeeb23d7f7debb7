// The agent's own identity: node attestation, reuse across restarts, renewal at half-life, and
// a TLS material source that follows the SVID and the trust bundle.
import { MeshidError, isMeshidError } from "@meshid/errors";
import {
  certificatesToPem,
  createCsr,
  encodePem,
  exportPkcs8Der,
  generateKeyPair,
  readCertificateInfo,
  type KeyType,
} from "@meshid/pki";
import { createBundle, validateX509Svid, type ValidatedX509Svid } from "@meshid/spiffe";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type {
  AgentAttestationClient,
  AgentIdentityStore,
  AgentTlsMaterial,
  Clock,
  NodeAttestationTokenSource,
} from "../ports";
import { readAuthorityKeyId } from "./authority-key-id";
import type { AgentBundle } from "./types";

/** Default key type of the agent's own SVID. */
export const DEFAULT_AGENT_KEY_TYPE: KeyType = "ec-p256";
/** Default first retry delay after a failed renewal or attestation, in milliseconds. */
export const DEFAULT_IDENTITY_RETRY_MIN_MS = 1000;
/** Default largest retry delay, in milliseconds. */
export const DEFAULT_IDENTITY_RETRY_MAX_MS = 60_000;
/** CA error code of a banned agent. */
export const CA_AGENT_BANNED_CODE = "ca.agent.banned";
/** CA error codes meaning the CA no longer knows the agent (it must attest again). */
export const CA_AGENT_UNKNOWN_CODES: readonly string[] = Object.freeze([
  "ca.authz.agent_unknown",
  "ca.agent.not_found",
]);

/** Error codes of the agent identity. */
export const AgentIdentityErrorCode = {
  notStarted: "agent.identity.not_started",
  banned: "agent.identity.banned",
  svidInvalid: "agent.identity.svid_invalid",
} as const;

/** Where the agent's identity is in its life. */
export type AgentIdentityState = "starting" | "ready" | "banned" | "stopped";

/** What {@link AgentIdentity.status} reports (for health and logs). */
export interface AgentIdentityStatus {
  readonly state: AgentIdentityState;
  /** The agent's SPIFFE ID once it has an SVID. */
  readonly spiffeId?: string;
  readonly serialHex?: string;
  readonly notAfter?: Date;
  /** When the next renewal is due. */
  readonly rotateAt?: Date;
  /** The last renewal / attestation failure, until the next success. */
  readonly lastError?: { readonly code: string; readonly message: string };
}

/** The agent SVID held now. */
export interface AgentSvidSnapshot {
  readonly spiffeId: string;
  /** Leaf first, DER. */
  readonly certChainDer: readonly Uint8Array[];
  readonly serialHex: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly rotateAt: Date;
}

/** Something that takes new TLS material (grpc-kit's `MutableSvidSource` fits). */
export interface AgentTlsMaterialSink {
  set(material: AgentTlsMaterial): void;
}

/** Dependencies of {@link createAgentIdentity}. */
export interface AgentIdentityDeps<S extends AgentTlsMaterialSink> {
  readonly trustDomain: string;
  /** The bootstrap bundle (the mounted bundle file), read at start. */
  readonly readBootstrapBundle: () => Promise<AgentBundle>;
  readonly tokenSource: NodeAttestationTokenSource;
  readonly client: AgentAttestationClient;
  readonly store: AgentIdentityStore;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Creates the TLS material source once the first SVID is known (main: createMutableSvidSource). */
  readonly createSvidSource: (material: AgentTlsMaterial) => S;
  /** Default {@link DEFAULT_AGENT_KEY_TYPE}. */
  readonly keyType?: KeyType;
  /** Default {@link DEFAULT_IDENTITY_RETRY_MIN_MS}. */
  readonly retryMinMs?: number;
  /** Default {@link DEFAULT_IDENTITY_RETRY_MAX_MS}. */
  readonly retryMaxMs?: number;
}

/** The agent's own identity, created by {@link createAgentIdentity}. */
export interface AgentIdentity<S extends AgentTlsMaterialSink> {
  /**
   * Reuses the persisted SVID when it is unexpired and chains to its bundle; otherwise attests
   * the node and persists the result. Resolves once an SVID is held.
   * @throws MeshidError from reading the bundle, the store or attestation (`ca.agent.banned`
   *   sets the state to banned).
   */
  start(signal?: AbortSignal): Promise<void>;
  /**
   * Renews the SVID at half-life (re-attesting when it expired or the CA forgot the agent) until
   * `signal` aborts or the CA says the agent is banned. Never rejects.
   */
  run(signal: AbortSignal): Promise<void>;
  /** The TLS material source of the agent's mTLS channel to the CA. Throws before `start`. */
  svidSource(): S;
  /** The SVID held now. Throws MeshidError `agent.identity.not_started` before `start`. */
  current(): AgentSvidSnapshot;
  /** The bundle the identity trusts now. Throws before `start`. */
  bundle(): AgentBundle;
  /**
   * Takes a new bundle (from the CA's WatchBundle): persisted and pushed to the TLS source. A
   * bundle of another trust domain or an older sequence number is ignored. When it taints the
   * authority that signed the agent SVID, `run` renews the SVID at once.
   */
  applyBundle(bundle: AgentBundle): Promise<void>;
  status(): AgentIdentityStatus;
}

interface Held {
  readonly svid: AgentSvidSnapshot;
  readonly privateKeyPkcs8Der: Uint8Array;
}

function bundleOf(b: AgentBundle, trustDomain: string): ReturnType<typeof createBundle> {
  return createBundle({ trustDomain, x509Authorities: b.x509AuthoritiesDer });
}

function sameDer(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** A bundle trusting the authorities of both (for verifying the CA at attestation). */
function unionBundle(a: AgentBundle, b: AgentBundle | undefined): AgentBundle {
  if (b === undefined) return a;
  const all = [...a.x509AuthoritiesDer];
  for (const der of b.x509AuthoritiesDer) {
    if (!all.some((d) => sameDer(d, der))) all.push(der);
  }
  return { ...a, x509AuthoritiesDer: all };
}

function errorSummary(err: unknown): { code: string; message: string } {
  if (isMeshidError(err)) return { code: err.code, message: err.message };
  return { code: "agent.identity.error", message: (err as Error)?.message ?? String(err) };
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true && (err === signal.reason || isMeshidError(err, "grpc.aborted"));
}

/**
 * Creates the agent's identity manager. Nothing happens until `start()`; `run(signal)` keeps
 * the SVID renewed at half of its lifetime (on `deps.clock`), with a fresh key each time.
 */
export function createAgentIdentity<S extends AgentTlsMaterialSink>(
  deps: AgentIdentityDeps<S>,
): AgentIdentity<S> {
  const { trustDomain, clock, logger, store, client } = deps;
  const keyType = deps.keyType ?? DEFAULT_AGENT_KEY_TYPE;
  const retryMinMs = deps.retryMinMs ?? DEFAULT_IDENTITY_RETRY_MIN_MS;
  const retryMaxMs = deps.retryMaxMs ?? DEFAULT_IDENTITY_RETRY_MAX_MS;

  let state: AgentIdentityState = "starting";
  let held: Held | undefined;
  let currentBundle: AgentBundle | undefined;
  let bootstrapBundle: AgentBundle | undefined;
  let source: S | undefined;
  let lastError: { code: string; message: string } | undefined;
  // Set when the SVID's signing authority is tainted: `run` renews at once instead of waiting.
  let renewSoon = false;
  let wake: AbortController | undefined;
  // Renewal, attestation and bundle changes persist and install one at a time.
  let queue: Promise<unknown> = Promise.resolve();
  const serialize = <T>(task: () => Promise<T>): Promise<T> => {
    const next = queue.then(task, task);
    queue = next.catch(() => undefined);
    return next;
  };

  const requireHeld = (): Held => {
    if (held === undefined || currentBundle === undefined) {
      throw new MeshidError(
        "failed_precondition",
        AgentIdentityErrorCode.notStarted,
        "the agent identity has no SVID yet (start() has not completed)",
      );
    }
    return held;
  };

  const material = (h: Held, b: AgentBundle): AgentTlsMaterial => ({
    certChainPem: certificatesToPem(h.svid.certChainDer),
    keyPem: encodePem("PRIVATE KEY", h.privateKeyPkcs8Der),
    bundlePem: certificatesToPem(b.x509AuthoritiesDer),
  });

  /**
   * `rotateAt` is half the lifetime after `lifetimeStart`: the notBefore of a persisted SVID, or
   * the local time a fresh one arrived (so a local clock skewed against the CA's neither renews
   * in a loop nor late).
   */
  const snapshot = (
    v: ValidatedX509Svid,
    chain: readonly Uint8Array[],
    lifetimeStart: Date = v.notBefore,
  ): AgentSvidSnapshot => {
    const half = (v.notAfter.getTime() - v.notBefore.getTime()) / 2;
    return {
      spiffeId: v.spiffeId.toString(),
      certChainDer: chain,
      serialHex: v.leaf.serialNumber.toLowerCase().replace(/^(00)+(?=.)/, ""),
      notBefore: v.notBefore,
      notAfter: v.notAfter,
      rotateAt: new Date(lifetimeStart.getTime() + Math.floor(half)),
    };
  };

  /** Validates a chain the CA just issued: signature chain and trust domain, not the clock. */
  const validateIssued = async (
    chain: readonly Uint8Array[],
    b: AgentBundle,
    serialHex: string,
  ): Promise<AgentSvidSnapshot> => {
    const leaf = chain[0];
    try {
      if (leaf === undefined) throw new Error("empty certificate chain");
      const info = readCertificateInfo(leaf);
      // The CA's clock decides validity; check the chain inside the leaf's own window so a
      // skewed local clock cannot reject a fresh SVID.
      const at = new Date(Math.min(info.notBefore.getTime() + 1000, info.notAfter.getTime()));
      const v = await validateX509Svid({ chain, bundle: bundleOf(b, trustDomain), at });
      return { ...snapshot(v, chain, clock.now()), ...(serialHex === "" ? {} : { serialHex }) };
    } catch (err) {
      throw new MeshidError(
        "internal",
        AgentIdentityErrorCode.svidInvalid,
        `the CA returned an agent SVID that does not validate: ${(err as Error).message}`,
        { cause: err },
      );
    }
  };

  const install = async (h: Held, b: AgentBundle): Promise<void> => {
    await store.save({
      certChainDer: h.svid.certChainDer,
      privateKeyPkcs8Der: h.privateKeyPkcs8Der,
      bundle: b,
    });
    const m = material(h, b);
    if (source === undefined) source = deps.createSvidSource(m);
    else source.set(m);
    held = h;
    currentBundle = b;
    lastError = undefined;
    if (state === "starting") state = "ready";
  };

  const newKeyAndCsr = async (): Promise<{ keyDer: Uint8Array; csrDer: Uint8Array }> => {
    const pair = await generateKeyPair(keyType);
    const csrDer = await createCsr({ privateKey: pair.privateKey, publicKey: pair.publicKey });
    return { keyDer: exportPkcs8Der(pair.privateKey), csrDer };
  };

  const attest = async (signal?: AbortSignal): Promise<void> => {
    const boot = bootstrapBundle ?? (await deps.readBootstrapBundle());
    const trusted = unionBundle(boot, currentBundle);
    const { keyDer, csrDer } = await newKeyAndCsr();
    const token = await deps.tokenSource.token(signal);
    const result = await client.attest(
      {
        attestationType: deps.tokenSource.attestationType,
        token,
        cluster: deps.tokenSource.cluster,
        csrDer,
        bundlePem: certificatesToPem(trusted.x509AuthoritiesDer),
      },
      signal,
    );
    const svid = await validateIssued(
      result.svid.certChainDer,
      result.bundle,
      result.svid.serialHex,
    );
    await install({ svid, privateKeyPkcs8Der: keyDer }, result.bundle);
    logger.info(
      {
        [LogKeys.spiffeId]: svid.spiffeId,
        [LogKeys.serialNumber]: svid.serialHex,
        [LogKeys.notAfter]: svid.notAfter.toISOString(),
        attestationType: deps.tokenSource.attestationType,
      },
      "agent attested",
    );
  };

  const renew = async (signal?: AbortSignal): Promise<void> => {
    const h = requireHeld();
    const b = currentBundle as AgentBundle;
    const { keyDer, csrDer } = await newKeyAndCsr();
    const signed = await client.renew({ csrDer, tls: material(h, b) }, signal);
    const svid = await validateIssued(signed.certChainDer, b, signed.serialHex);
    await install({ svid, privateKeyPkcs8Der: keyDer }, b);
    logger.info(
      {
        [LogKeys.spiffeId]: svid.spiffeId,
        [LogKeys.serialNumber]: svid.serialHex,
        [LogKeys.notAfter]: svid.notAfter.toISOString(),
      },
      "agent SVID renewed",
    );
  };

  const markBanned = (err: unknown): void => {
    state = "banned";
    lastError = errorSummary(err);
    logger.error(
      { [LogKeys.spiffeId]: held?.svid.spiffeId, [LogKeys.err]: err },
      "the CA says this agent is BANNED: it stops renewing its SVID; an operator must delete the agent at the CA and re-attest the node",
    );
  };

  const tryReuse = async (): Promise<boolean> => {
    const persisted = await store.load();
    if (persisted === undefined) return false;
    const bundle = persisted.bundle;
    const boot = bootstrapBundle;
    // A bundle file sharing no authority with the persisted bundle means the CA's trust root
    // was replaced: the persisted SVID is worthless even if it is unexpired.
    const sameRoot =
      boot === undefined ||
      boot.x509AuthoritiesDer.some((a) => bundle.x509AuthoritiesDer.some((b) => sameDer(a, b)));
    if (bundle.trustDomain !== trustDomain || !sameRoot) {
      logger.warn(
        { [LogKeys.trustDomain]: bundle.trustDomain },
        "the bundle file trusts none of the persisted bundle's authorities; attesting again",
      );
      return false;
    }
    let v: ValidatedX509Svid;
    try {
      v = await validateX509Svid({
        chain: persisted.certChainDer,
        bundle: bundleOf(bundle, trustDomain),
        at: clock.now(),
      });
    } catch (err) {
      logger.info(
        { [LogKeys.err]: err },
        "persisted agent SVID is expired or does not chain to its bundle; attesting again",
      );
      return false;
    }
    const svid = snapshot(v, persisted.certChainDer);
    await install({ svid, privateKeyPkcs8Der: persisted.privateKeyPkcs8Der }, bundle);
    logger.info(
      {
        [LogKeys.spiffeId]: svid.spiffeId,
        [LogKeys.serialNumber]: svid.serialHex,
        [LogKeys.notAfter]: svid.notAfter.toISOString(),
      },
      "agent reuses its persisted SVID",
    );
    return true;
  };

  return {
    start(signal) {
      return serialize(async () => {
        bootstrapBundle = await deps.readBootstrapBundle();
        if (await tryReuse()) return;
        try {
          await attest(signal);
        } catch (err) {
          if (isMeshidError(err, CA_AGENT_BANNED_CODE)) markBanned(err);
          else lastError = errorSummary(err);
          throw err;
        }
      });
    },

    async run(signal) {
      let failures = 0;
      while (!signal.aborted && state !== "banned") {
        const h = held;
        if (h === undefined) return;
        wake = new AbortController();
        try {
          const sleepSignal = AbortSignal.any([signal, wake.signal]);
          const waitMs = h.svid.rotateAt.getTime() - clock.now().getTime();
          if (failures > 0) {
            await clock.sleep(Math.min(retryMaxMs, retryMinMs * 2 ** (failures - 1)), sleepSignal);
          } else if (waitMs > 0 && !renewSoon) {
            await clock.sleep(waitMs, sleepSignal);
          }
        } catch {
          // Aborted: by the caller (stop) or by a wake-up (renew now).
        }
        wake = undefined;
        if (signal.aborted) break;
        renewSoon = false;
        const expired = clock.now().getTime() >= (held ?? h).svid.notAfter.getTime();
        try {
          if (expired) {
            logger.warn(
              { [LogKeys.spiffeId]: h.svid.spiffeId },
              "agent SVID expired before it was renewed; attesting again",
            );
            await serialize(() => attest(signal));
          } else {
            try {
              await serialize(() => renew(signal));
            } catch (err) {
              if (!CA_AGENT_UNKNOWN_CODES.some((code) => isMeshidError(err, code))) throw err;
              logger.warn(
                { [LogKeys.spiffeId]: h.svid.spiffeId, [LogKeys.err]: err },
                "the CA no longer knows this agent; attesting again",
              );
              await serialize(() => attest(signal));
            }
          }
          failures = 0;
        } catch (err) {
          if (isAbort(err, signal)) break;
          if (isMeshidError(err, CA_AGENT_BANNED_CODE)) {
            markBanned(err);
            return;
          }
          failures++;
          lastError = errorSummary(err);
          logger.warn(
            { [LogKeys.spiffeId]: h.svid.spiffeId, [LogKeys.err]: err, failures },
            "agent SVID renewal failed; retrying",
          );
        }
      }
      if (state !== "banned") state = "stopped";
    },

    svidSource() {
      requireHeld();
      return source as S;
    },

    current() {
      return requireHeld().svid;
    },

    bundle() {
      requireHeld();
      return currentBundle as AgentBundle;
    },

    applyBundle(bundle) {
      return serialize(async () => {
        const h = requireHeld();
        if (bundle.trustDomain !== trustDomain) {
          logger.warn(
            { [LogKeys.trustDomain]: bundle.trustDomain },
            "ignoring a bundle of another trust domain",
          );
          return;
        }
        const prev = currentBundle as AgentBundle;
        if (bundle.sequenceNumber < prev.sequenceNumber) return;
        await install(h, bundle);
        logger.info({ sequenceNumber: bundle.sequenceNumber }, "agent trust bundle updated");
        const leaf = h.svid.certChainDer[0];
        if (
          bundle.taintedAuthorityIds.length > 0 &&
          leaf !== undefined &&
          bundle.taintedAuthorityIds.includes(readAuthorityKeyId(leaf))
        ) {
          logger.info(
            { [LogKeys.spiffeId]: h.svid.spiffeId },
            "the authority that signed the agent SVID is tainted; renewing now",
          );
          renewSoon = true;
          wake?.abort();
        }
      });
    },

    status() {
      const svid = held?.svid;
      return {
        state,
        ...(svid === undefined
          ? {}
          : {
              spiffeId: svid.spiffeId,
              serialHex: svid.serialHex,
              notAfter: svid.notAfter,
              rotateAt: svid.rotateAt,
            }),
        ...(lastError === undefined ? {} : { lastError }),
      };
    },
  };
}
