// Test helpers for the SVID signer and agent manager: a real signing authority (root or
// intermediate), CSRs, a fake clock, a recording event sink and `openssl verify`.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { EventPayload, EventType } from "@meshid/events";
import {
  certificatesToPem,
  createCsr,
  createIntermediateCa,
  createSelfSignedCa,
  createX509SvidIssuer,
  generateKeyPair,
  type KeyPair,
  type KeyType,
} from "@meshid/pki";
import { createBundle, validateX509Svid, type ValidatedX509Svid } from "@meshid/spiffe";
import { createTempDir } from "@meshid/testkit";
import type { ActiveSigner, AuthorityManager } from "../api/deps";
import type { BundleRecord, CaSettings } from "../domain/types";
import type { Clock, EventSink } from "../ports";

/** A real signing authority behind the slice of AuthorityManager the signer needs. */
export interface TestAuthority extends Pick<
  AuthorityManager,
  "activeSigner" | "settings" | "bundle"
> {
  /** The bundle root, DER. */
  readonly rootCertDer: Uint8Array;
  /** The signing CA certificate (the root itself, or the intermediate). */
  readonly signingCertDer: Uint8Array;
  /** Changes the mesh svidTTL returned by settings(). */
  setSvidTtlSeconds(ttlSeconds: number): void;
}

/** Parameters of {@link createTestAuthority}. */
export interface CreateTestAuthorityParams {
  readonly trustDomain?: string;
  readonly now: Date;
  /** Root lifetime. Default 24 h. */
  readonly caTtlSeconds?: number;
  /** Sign under an intermediate below the root (chainDer = [intermediate]). Default false. */
  readonly intermediate?: boolean;
  /** Default svidTTL. Default 1 h. */
  readonly svidTtlSeconds?: number;
}

/** Creates a {@link TestAuthority} with freshly generated ec-p256 keys. */
export async function createTestAuthority(
  params: CreateTestAuthorityParams,
): Promise<TestAuthority> {
  const trustDomain = params.trustDomain ?? "example.org";
  const caTtlSeconds = params.caTtlSeconds ?? 24 * 3600;
  const rootKeys = await generateKeyPair("ec-p256");
  const root = await createSelfSignedCa({
    keyPair: rootKeys,
    trustDomain,
    ttlSeconds: caTtlSeconds,
    now: params.now,
  });
  let signingCertDer = root.certDer;
  let signingKey = rootKeys.privateKey;
  let notAfter = root.notAfter;
  const chainDer: Uint8Array[] = [];
  if (params.intermediate === true) {
    const keys = await generateKeyPair("ec-p256");
    const ca = await createIntermediateCa({
      issuer: { certDer: root.certDer, privateKey: rootKeys.privateKey },
      publicKey: keys.publicKey,
      trustDomain,
      ttlSeconds: caTtlSeconds,
      now: params.now,
    });
    signingCertDer = ca.certDer;
    signingKey = keys.privateKey;
    notAfter = ca.notAfter;
    chainDer.push(ca.certDer);
  }
  const signer: ActiveSigner = {
    authorityId: "test-authority",
    notAfter,
    chainDer,
    issuer: createX509SvidIssuer({ issuerCertDer: signingCertDer, issuerPrivateKey: signingKey }),
  };
  let settings: CaSettings = {
    caTtlSeconds,
    svidTtlSeconds: params.svidTtlSeconds ?? 3600,
    caKeyType: "ec-p256",
  };
  const bundle: BundleRecord = {
    trustDomain,
    x509Authorities: [{ certDer: root.certDer, tainted: false }],
    sequenceNumber: 1,
    refreshHintSeconds: 0,
  };
  return {
    rootCertDer: root.certDer,
    signingCertDer,
    activeSigner: () => signer,
    settings: () => settings,
    bundle: () => bundle,
    setSvidTtlSeconds(ttlSeconds) {
      settings = { ...settings, svidTtlSeconds: ttlSeconds };
    },
  };
}

/** A clock that only moves when told. */
export interface FakeClock extends Clock {
  advance(ms: number): void;
}

/** Creates a {@link FakeClock} starting at `start`; sleep resolves at once after advancing. */
export function createFakeClock(start: Date): FakeClock {
  let nowMs = start.getTime();
  return {
    now: () => new Date(nowMs),
    sleep(ms, signal) {
      if (signal?.aborted === true) return Promise.reject(new Error("aborted"));
      nowMs += ms;
      return Promise.resolve();
    },
    advance(ms) {
      nowMs += ms;
    },
  };
}

/** One published event. */
export interface RecordedEvent {
  readonly type: EventType;
  readonly payload: EventPayload<EventType>;
}

/** An EventSink that records every publish (and can be told to fail). */
export interface RecordingEventSink extends EventSink {
  readonly events: RecordedEvent[];
  /** Every later publish rejects when true. */
  failing: boolean;
  ofType<K extends EventType>(type: K): EventPayload<K>[];
}

/** Creates a {@link RecordingEventSink}. */
export function createRecordingEventSink(): RecordingEventSink {
  const events: RecordedEvent[] = [];
  const sink: RecordingEventSink = {
    events,
    failing: false,
    publish(type, payload) {
      if (sink.failing) return Promise.reject(new Error("NATS is down"));
      events.push({ type, payload: payload as EventPayload<EventType> });
      return Promise.resolve({ id: String(events.length) });
    },
    ofType<K extends EventType>(type: K) {
      return events.filter((e) => e.type === type).map((e) => e.payload as EventPayload<K>);
    },
  };
  return sink;
}

/** A key pair and a CSR signed by it. */
export interface TestCsr {
  readonly keys: KeyPair;
  readonly csrDer: Uint8Array;
}

/** Generates a key of `keyType` (default ec-p256) and a CSR for it (optionally with SANs). */
export async function makeCsr(
  keyType: KeyType = "ec-p256",
  sans: { spiffeId?: string; dnsNames?: readonly string[] } = {},
): Promise<TestCsr> {
  const keys = await generateKeyPair(keyType);
  const csrDer = await createCsr({
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    ...sans,
  });
  return { keys, csrDer };
}

/**
 * Runs `openssl verify -purpose <purpose>` on a leaf with its chain against `rootDer`;
 * returns openssl's output, throws when verification fails.
 */
export async function opensslVerify(
  certChainDer: readonly Uint8Array[],
  rootDer: Uint8Array,
  purpose: "sslclient" | "sslserver",
  atTime?: Date,
): Promise<string> {
  const dir = await createTempDir("meshid-ca-verify-");
  try {
    const [leaf, ...intermediates] = certChainDer;
    if (leaf === undefined) throw new Error("empty chain");
    writeFileSync(join(dir.path, "root.pem"), certificatesToPem([rootDer]));
    writeFileSync(join(dir.path, "leaf.pem"), certificatesToPem([leaf]));
    const args = ["verify", "-purpose", purpose, "-CAfile", join(dir.path, "root.pem")];
    if (intermediates.length > 0) {
      writeFileSync(join(dir.path, "chain.pem"), certificatesToPem(intermediates));
      args.push("-untrusted", join(dir.path, "chain.pem"));
    }
    if (atTime !== undefined) args.push("-attime", String(Math.floor(atTime.getTime() / 1000)));
    args.push(join(dir.path, "leaf.pem"));
    return execFileSync("openssl", args, { encoding: "utf8", stdio: "pipe" });
  } finally {
    await dir.cleanup();
  }
}

/**
 * Validates an issued chain with @meshid/spiffe validateX509Svid against the authority's
 * bundle at `at`; returns the validated SVID (throws when invalid).
 */
export function validateIssuedSvid(
  certChainDer: readonly Uint8Array[],
  authority: Pick<TestAuthority, "rootCertDer" | "bundle">,
  at: Date,
): Promise<ValidatedX509Svid> {
  const bundle = createBundle({
    trustDomain: authority.bundle().trustDomain,
    x509Authorities: [authority.rootCertDer],
    jwtAuthorities: [],
    sequenceNumber: 1,
    refreshHintSeconds: 0,
  });
  return validateX509Svid({ chain: certChainDer, bundle, at });
}

/** The URI and DNS SANs and the serial (lowercase hex, no leading zeros) of a certificate. */
export function certificateNames(certDer: Uint8Array): {
  uris: string[];
  dnsNames: string[];
  serialHex: string;
} {
  const cert = new X509Certificate(certDer);
  const sans = (cert.subjectAltName ?? "").split(", ").filter((s) => s !== "");
  return {
    uris: sans.filter((s) => s.startsWith("URI:")).map((s) => s.slice(4)),
    dnsNames: sans.filter((s) => s.startsWith("DNS:")).map((s) => s.slice(4)),
    serialHex: cert.serialNumber.toLowerCase().replace(/^0+/, ""),
  };
}

/** A CSR for a fresh RSA-1024 key (made by openssl: meshid's pki refuses to create one). */
export function rsa1024CsrDer(): Uint8Array {
  const der = execFileSync(
    "openssl",
    [
      "req",
      "-new",
      "-newkey",
      "rsa:1024",
      "-nodes",
      "-keyout",
      "/dev/null",
      "-subj",
      "/CN=weak",
      "-outform",
      "DER",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  return new Uint8Array(der);
}

/** A CSR that carries key A's public key but is signed by key B (no proof of possession). */
export async function mismatchedCsrDer(): Promise<Uint8Array> {
  const a = await generateKeyPair("ec-p256");
  const b = await generateKeyPair("ec-p256");
  return createCsr({ privateKey: b.privateKey, publicKey: a.publicKey });
}
