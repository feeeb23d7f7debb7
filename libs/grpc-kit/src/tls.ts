import { X509Certificate } from "node:crypto";
import { createSecureContext, type PeerCertificate } from "node:tls";
import { experimental, type ChannelCredentials, type ServerCredentials } from "@grpc/grpc-js";
import { MeshidError } from "@meshid/errors";
import { parseSpiffeId, type SpiffeId } from "@meshid/spiffe";
import { uriSansFromSubjectAltName } from "./peer-identity";

/** The trust bundle used to verify peers. */
export interface BundleMaterial {
  /** Trusted X.509 authorities (one or more CA certificates), PEM. */
  bundlePem: string;
}

/** PEM material of one X509-SVID plus the trust bundle used to verify peers. */
export interface TlsMaterial extends BundleMaterial {
  /** Leaf certificate first, then intermediates, PEM. */
  certChainPem: string;
  /** Private key of the leaf, PEM (PKCS#8). Never logged. */
  keyPem: string;
}

/**
 * Supplies only a trust bundle and announces changes: for clients that verify the server but
 * have no SVID yet (node attestation). Every {@link SvidSource} is also a `BundleSource`.
 */
export interface BundleSource {
  /** Returns the bundle to use now. */
  current(): BundleMaterial;
  /** Calls `listener` after every change; returns a function that unsubscribes. */
  subscribe(listener: (material: BundleMaterial) => void): () => void;
}

/**
 * Supplies the current X509-SVID and bundle and announces rotations. grpc-kit reads `current()`
 * when it starts using the source and then follows `subscribe`; new TLS handshakes use the latest
 * material, established connections keep theirs.
 */
export interface SvidSource {
  /** Returns the material to use now. */
  current(): TlsMaterial;
  /** Calls `listener` after every change; returns a function that unsubscribes. */
  subscribe(listener: (material: TlsMaterial) => void): () => void;
}

/** An {@link SvidSource} whose material is replaced with `set` (agents, tests). */
export interface MutableSvidSource extends SvidSource {
  /**
   * Replaces the material and notifies subscribers synchronously.
   * @throws MeshidError `invalid_argument` / `grpc.tls.material_invalid` when Node cannot build a
   *   TLS context from it, or `grpc.tls.bundle_invalid` when its bundle is unusable (the previous
   *   material stays in use either way).
   */
  set(material: TlsMaterial): void;
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Checks that `bundlePem` holds at least one CA certificate and nothing unparsable (Node's TLS
 * layer silently skips bad CA PEM, which would leave peers unverifiable without any error).
 * @throws MeshidError `invalid_argument` / `grpc.tls.bundle_invalid` otherwise.
 */
export function assertUsableBundle(bundlePem: string): void {
  const blocks = bundlePem.match(PEM_CERTIFICATE) ?? [];
  const invalid = (reason: string, cause?: unknown): MeshidError =>
    new MeshidError("invalid_argument", "grpc.tls.bundle_invalid", `trust bundle ${reason}`, {
      cause,
    });
  if (blocks.length === 0) throw invalid("holds no PEM certificate");
  for (const block of blocks) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw invalid("holds a certificate that does not parse", err);
    }
    if (!cert.ca) throw invalid("holds a certificate that is not a CA");
  }
}

/**
 * Checks that Node can build a TLS context from `material` (PEM parses, key matches the leaf)
 * and that its bundle is usable ({@link assertUsableBundle}).
 * @throws MeshidError `invalid_argument` / `grpc.tls.material_invalid` (or
 *   `grpc.tls.bundle_invalid`) otherwise; messages never contain key material.
 */
export function assertUsableTlsMaterial(material: TlsMaterial): void {
  assertUsableBundle(material.bundlePem);
  try {
    createSecureContext({ cert: material.certChainPem, key: material.keyPem });
  } catch (err) {
    throw new MeshidError(
      "invalid_argument",
      "grpc.tls.material_invalid",
      "TLS material is unusable (certificate chain or key)",
      { cause: err },
    );
  }
}

/**
 * Returns a {@link BundleSource} that always serves `material`.
 * @throws MeshidError `invalid_argument` / `grpc.tls.bundle_invalid` when the bundle is unusable.
 */
export function createStaticBundleSource(material: BundleMaterial): BundleSource {
  assertUsableBundle(material.bundlePem);
  const frozen = Object.freeze({ bundlePem: material.bundlePem });
  return { current: () => frozen, subscribe: () => () => undefined };
}

/**
 * Returns an {@link SvidSource} that always serves `material` and never changes.
 * @throws MeshidError `grpc.tls.material_invalid` when the material is unusable.
 */
export function createStaticSvidSource(material: TlsMaterial): SvidSource {
  assertUsableTlsMaterial(material);
  const frozen = Object.freeze({ ...material });
  return { current: () => frozen, subscribe: () => () => undefined };
}

/**
 * Returns a {@link MutableSvidSource} starting with `initial`.
 * @throws MeshidError `grpc.tls.material_invalid` when `initial` is unusable.
 */
export function createMutableSvidSource(initial: TlsMaterial): MutableSvidSource {
  assertUsableTlsMaterial(initial);
  let material: TlsMaterial = Object.freeze({ ...initial });
  const listeners = new Set<(m: TlsMaterial) => void>();
  return {
    current: () => material,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    set(next) {
      assertUsableTlsMaterial(next);
      material = Object.freeze({ ...next });
      for (const listener of [...listeners]) listener(material);
    },
  };
}

/**
 * Adapts an {@link SvidSource} to grpc-js's `CertificateProvider` (identity and CA updates). It
 * subscribes to the source while grpc-js has listeners and pushes the current material to every
 * new listener at once.
 */
export function certificateProviderFromSvidSource(
  source: SvidSource,
): experimental.CertificateProvider {
  return createCertificateProvider(source, (m) => ({
    certificate: Buffer.from(m.certChainPem),
    privateKey: Buffer.from(m.keyPem),
  }));
}

/**
 * Adapts a {@link BundleSource} to a grpc-js `CertificateProvider` that only supplies CA updates.
 */
export function certificateProviderFromBundleSource(
  source: BundleSource,
): experimental.CertificateProvider {
  return createCertificateProvider<BundleMaterial>(source, undefined);
}

// grpc-js registers its watcher only after adding provider listeners, so a synchronous first
// update would be missed and the server would drop every connection; deliver it on the next
// microtask instead (before any connection can be accepted).
function deliverInitial(deliver: () => void): void {
  queueMicrotask(deliver);
}

interface MaterialSource<M extends BundleMaterial> {
  current(): M;
  subscribe(listener: (material: M) => void): () => void;
}

function createCertificateProvider<M extends BundleMaterial>(
  source: MaterialSource<M>,
  identityOf: ((m: M) => experimental.IdentityCertificateUpdate) | undefined,
): experimental.CertificateProvider {
  const caListeners = new Set<experimental.CaCertificateUpdateListener>();
  const identityListeners = new Set<experimental.IdentityCertificateUpdateListener>();
  let unsubscribe: (() => void) | undefined;

  const caUpdate = (m: M): experimental.CaCertificateUpdate => ({
    caCertificate: Buffer.from(m.bundlePem),
  });
  const identityUpdate = (m: M): experimental.IdentityCertificateUpdate | null =>
    identityOf === undefined ? null : identityOf(m);

  const refresh = (): void => {
    const listening = caListeners.size + identityListeners.size > 0;
    if (listening && unsubscribe === undefined) {
      unsubscribe = source.subscribe((m) => {
        // Identity first, then CA: a server briefly holding the new SVID with the old bundle
        // still verifies every peer it verified before.
        for (const l of [...identityListeners]) l(identityUpdate(m));
        for (const l of [...caListeners]) l(caUpdate(m));
      });
    } else if (!listening && unsubscribe !== undefined) {
      unsubscribe();
      unsubscribe = undefined;
    }
  };

  return {
    addCaCertificateListener(listener) {
      caListeners.add(listener);
      refresh();
      deliverInitial(() => caListeners.has(listener) && listener(caUpdate(source.current())));
    },
    removeCaCertificateListener(listener) {
      caListeners.delete(listener);
      refresh();
    },
    addIdentityCertificateListener(listener) {
      identityListeners.add(listener);
      refresh();
      deliverInitial(
        () => identityListeners.has(listener) && listener(identityUpdate(source.current())),
      );
    },
    removeIdentityCertificateListener(listener) {
      identityListeners.delete(listener);
      refresh();
    },
  };
}

/**
 * Whether a TLS server asks clients for a certificate: `require` rejects handshakes without a
 * valid client X509-SVID; `request` (attestation-style) lets clients without a certificate in,
 * and a certificate that is sent but does not verify against the bundle is never trusted (the
 * call has no `callerSpiffeId`).
 */
export type ClientCertificateMode = "require" | "request";

/** TLS options of a gRPC server. */
export interface ServerTlsOptions {
  /** The server's rotating X509-SVID and the bundle that verifies client certificates. */
  source: SvidSource;
  /** See {@link ClientCertificateMode}. */
  clientCertificate: ClientCertificateMode;
}

/**
 * Builds grpc-js server credentials that follow `options.source`.
 *
 * Why this mechanism: grpc-js 1.14's `createCertificateProviderServerCredentials` registers a
 * watcher on each listening `http2.SecureServer` and calls `setSecureContext()` on every provider
 * update. Node applies a new secure context to new handshakes only, so rotation neither restarts
 * the listener nor drops live connections (no reconnect storm), and it needs no private grpc-js
 * API. The alternative — `createConnectionInjector` with our own `tls.Server` — would also work
 * but duplicates grpc-js's listener, channelz and shutdown handling.
 */
export function createServerTlsCredentials(options: ServerTlsOptions): ServerCredentials {
  const provider = certificateProviderFromSvidSource(options.source);
  // The same provider serves identity and CA, which also sidesteps grpc-js's swapped parameter
  // names in this factory.
  return experimental.createCertificateProviderServerCredentials(
    provider,
    provider,
    options.clientCertificate === "require",
  );
}

/**
 * Which server SPIFFE IDs a client accepts: one exact ID, or a predicate. Without it any
 * SPIFFE ID whose certificate chains to the bundle is accepted.
 */
export type ServerIdMatcher = SpiffeId | ((id: SpiffeId) => boolean);

/**
 * TLS options of a gRPC channel: `source` for mTLS (the client's rotating X509-SVID is sent as
 * client certificate), or `bundleSource` for server-authenticated TLS without a client
 * certificate (node attestation).
 */
export type ChannelTlsOptions =
  | {
      /** The client's rotating X509-SVID and the bundle verifying the server. */
      source: SvidSource;
      /** See {@link ServerIdMatcher}. */
      serverId?: ServerIdMatcher;
    }
  | {
      /** The bundle verifying the server; no client certificate is sent. */
      bundleSource: BundleSource;
      /** See {@link ServerIdMatcher}. */
      serverId?: ServerIdMatcher;
    };

/**
 * Verifies the server certificate's SPIFFE ID (its single URI SAN) instead of its hostname;
 * Node calls it only after the chain verified against the bundle. Returns an error to abort the
 * handshake, `undefined` to accept.
 */
export function checkServerSpiffeId(
  cert: PeerCertificate,
  serverId: ServerIdMatcher | undefined,
): Error | undefined {
  const uris = uriSansFromSubjectAltName(cert.subjectaltname);
  if (uris.length !== 1 || uris[0] === undefined) {
    return new Error("server certificate does not carry exactly one SPIFFE ID URI SAN");
  }
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uris[0]);
  } catch {
    return new Error("server certificate URI SAN is not a valid SPIFFE ID");
  }
  if (serverId === undefined) return undefined;
  const accepted =
    typeof serverId === "function" ? serverId(id) : serverId.toString() === id.toString();
  return accepted ? undefined : new Error(`unexpected server SPIFFE ID ${id.toString()}`);
}

/**
 * Builds grpc-js channel credentials that present the client SVID of `options.source` (none with
 * `bundleSource`), verify the server chain against the bundle and the server SPIFFE ID with {@link checkServerSpiffeId}.
 * grpc-js builds a fresh secure context from the latest material for each new connection, so
 * rotation leaves working connections alone.
 */
export function createChannelTlsCredentials(options: ChannelTlsOptions): ChannelCredentials {
  const { serverId } = options;
  const verifyOptions = {
    checkServerIdentity: (_hostname: string, cert: PeerCertificate) =>
      checkServerSpiffeId(cert, serverId),
  };
  if ("bundleSource" in options) {
    const caProvider = certificateProviderFromBundleSource(options.bundleSource);
    return experimental.createCertificateProviderChannelCredentials(
      caProvider,
      null,
      verifyOptions,
    );
  }
  const provider = certificateProviderFromSvidSource(options.source);
  return experimental.createCertificateProviderChannelCredentials(
    provider,
    provider,
    verifyOptions,
  );
}
