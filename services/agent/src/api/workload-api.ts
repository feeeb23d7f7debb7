// SPIFFE Workload API handlers (grpc-js shape): header check, per-call attestation, full-state
// X509-SVID and bundle streams, JWT methods UNIMPLEMENTED. See /work/shared/SPIFFE.md.
import {
  status,
  type Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type StatusObject,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { MeshidError, isMeshidError } from "@meshid/errors";
import { statusForErrorKind } from "@meshid/grpc-kit";
import type { spiffeWorkload } from "@meshid/proto";
import type { Selector } from "@meshid/spiffe";
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import type { Meter, ObservableResult } from "@opentelemetry/api";
import type { AgentBundle, WorkloadIdentity, WorkloadProcess } from "../domain/types";
import type { WorkloadAttestation, WorkloadIdentitySource } from "./deps";

type X509SVIDRequest = spiffeWorkload.X509SVIDRequest;
type X509SVIDResponse = spiffeWorkload.X509SVIDResponse;
type X509BundlesRequest = spiffeWorkload.X509BundlesRequest;
type X509BundlesResponse = spiffeWorkload.X509BundlesResponse;
type JWTSVIDRequest = spiffeWorkload.JWTSVIDRequest;
type JWTSVIDResponse = spiffeWorkload.JWTSVIDResponse;
type JWTBundlesRequest = spiffeWorkload.JWTBundlesRequest;
type JWTBundlesResponse = spiffeWorkload.JWTBundlesResponse;
type ValidateJWTSVIDRequest = spiffeWorkload.ValidateJWTSVIDRequest;
type ValidateJWTSVIDResponse = spiffeWorkload.ValidateJWTSVIDResponse;

/** Metadata key every Workload API call must carry with the value `true`. */
export const WORKLOAD_API_HEADER = "workload.spiffe.io";

/** Default bound on how long a first FetchX509SVID message waits for an SVID being minted. */
export const DEFAULT_MINT_WAIT_MS = 5_000;

/** Gauge (up-down counter) of open Workload API streams, by `method`. */
export const METRIC_WORKLOAD_API_OPEN_STREAMS = "meshid_agent_workload_api_open_streams";

/** Stable error codes of the Workload API handlers. */
export const WorkloadApiErrorCode = {
  /** The `workload.spiffe.io: true` header is missing (INVALID_ARGUMENT). */
  missingHeader: "agent.workload_api.missing_header",
  /** The call's connection has no recorded peer credentials (PERMISSION_DENIED). */
  unknownPeer: "agent.workload_api.unknown_peer",
  /** Attestation of the caller failed (PERMISSION_DENIED). */
  attestationFailed: "agent.workload_api.attestation_failed",
  /** Attestation could not reach a source such as the kubelet (UNAVAILABLE). */
  attestationUnavailable: "agent.workload_api.attestation_unavailable",
  /** The caller is entitled to no SVID, or all were withdrawn (PERMISSION_DENIED). */
  noIdentity: "agent.workload_api.no_identity",
  /** Too many open streams (UNAVAILABLE, clients retry). */
  overloaded: "agent.workload_api.overloaded",
  /** The server is shutting down or the identity source stopped (UNAVAILABLE). */
  shuttingDown: "agent.workload_api.shutting_down",
} as const;

/** Message of the JWT methods' UNIMPLEMENTED status. */
export const JWT_UNIMPLEMENTED_MESSAGE = "JWT-SVIDs are not supported yet";

/** Message of the PERMISSION_DENIED status sent when the caller has no SVID. */
export const NO_IDENTITY_MESSAGE = "no identity issued";

/** Log field names of the Workload API (besides {@link LogKeys}). */
export const WorkloadApiLogKeys = {
  pid: "pid",
  uid: "uid",
  gid: "gid",
  svidCount: "svidCount",
  errorCode: "errorCode",
  grpcStatus: "grpcStatus",
} as const;

/** Dependencies of {@link createWorkloadApiHandlers}. */
export interface WorkloadApiDeps {
  /** Attests each caller (per call). */
  readonly attestation: WorkloadAttestation;
  /** The SVID cache as workloads see it. */
  readonly identities: WorkloadIdentitySource;
  readonly logger: Logger;
  /**
   * Returns the process on the other end of a call's connection from the call's peer string
   * (`call.getPeer()`), or undefined when the connection is unknown.
   */
  readonly peerProcess: (peer: string) => WorkloadProcess | undefined;
  /** Bound on the first FetchX509SVID message's wait for minting SVIDs. Default {@link DEFAULT_MINT_WAIT_MS}. */
  readonly mintWaitMs?: number;
  /**
   * Most streams (FetchX509SVID + FetchX509Bundles) open at once; beyond it a new stream gets
   * UNAVAILABLE. Default: unlimited.
   */
  readonly maxConcurrentStreams?: number;
  /** Aborting it ends every open stream with UNAVAILABLE (server shutdown). */
  readonly shutdownSignal?: AbortSignal;
  /** Meter for {@link METRIC_WORKLOAD_API_OPEN_STREAMS}. Default: the global `@meshid/agent` meter. */
  readonly meter?: Meter;
}

/**
 * The grpc-js implementation of `SpiffeWorkloadAPI`, keyed like the ts-proto definition (a type
 * alias so it fits grpc-js `UntypedServiceImplementation`).
 */
export type WorkloadApiHandlers = {
  fetchX509SVID(call: ServerWritableStream<X509SVIDRequest, X509SVIDResponse>): void;
  fetchX509Bundles(call: ServerWritableStream<X509BundlesRequest, X509BundlesResponse>): void;
  fetchJWTSVID(
    call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>,
    callback: sendUnaryData<JWTSVIDResponse>,
  ): void;
  fetchJWTBundles(call: ServerWritableStream<JWTBundlesRequest, JWTBundlesResponse>): void;
  validateJWTSVID(
    call: ServerUnaryCall<ValidateJWTSVIDRequest, ValidateJWTSVIDResponse>,
    callback: sendUnaryData<ValidateJWTSVIDResponse>,
  ): void;
};

/** The trust-domain ID (`spiffe://<td>`) a bundle is keyed by on the Workload API. */
export function trustDomainIdOf(bundle: AgentBundle): string {
  return `spiffe://${bundle.trustDomain}`;
}

/** The concatenated X.509 authorities of each bundle object, shared by every response. */
const bundleDers = new WeakMap<AgentBundle, Buffer>();

/** The bundle's X.509 authorities as DER concatenated: one copy per bundle object. */
function bundleDerOf(bundle: AgentBundle): Buffer {
  let der = bundleDers.get(bundle);
  if (der === undefined) {
    der = Buffer.concat(bundle.x509AuthoritiesDer);
    bundleDers.set(bundle, der);
  }
  return der;
}

/**
 * Converts a workload's identity into the X509SVIDResponse it is sent as: per SVID the SPIFFE
 * ID, the chain as DER certificates concatenated leaf first, the PKCS#8 DER key, the bundle's
 * X.509 authorities as DER concatenated, and the hint. Bytes, never PEM. CRLs and federated
 * bundles stay empty.
 */
export function identityToX509SvidResponse(identity: WorkloadIdentity): X509SVIDResponse {
  const bundleDer = bundleDerOf(identity.bundle);
  return {
    svids: identity.svids.map((svid) => ({
      spiffeId: svid.spiffeId,
      x509Svid: Buffer.concat(svid.certChainDer),
      x509SvidKey: Buffer.from(svid.privateKeyPkcs8Der),
      bundle: bundleDer,
      hint: svid.hint,
    })),
    crl: [],
    federatedBundles: {},
  };
}

/** Default of {@link createX509SvidResponseCache}'s `maxBytes`: 1 MiB of DER. */
export const DEFAULT_RESPONSE_CACHE_MAX_BYTES = 1024 * 1024;

/**
 * A memo of {@link identityToX509SvidResponse}: workloads with the same identity (the same
 * cached SVID records and the same bundle object) get the very same response object, so it is
 * built (and, through the server's definition, encoded) once instead of once per caller. A
 * rotation, a new or withdrawn SVID or a new bundle makes different records or another bundle
 * object, which misses and builds afresh. The least recently used responses are dropped once
 * the DER they hold passes `maxBytes` (their encoded bytes, kept alongside, count twice).
 */
export function createX509SvidResponseCache(
  maxBytes = DEFAULT_RESPONSE_CACHE_MAX_BYTES,
): (identity: WorkloadIdentity) => X509SVIDResponse {
  interface Cached {
    readonly identity: WorkloadIdentity;
    readonly response: X509SVIDResponse;
    readonly bytes: number;
  }
  const cache = new Map<string, Cached>();
  let total = 0;
  const same = (a: WorkloadIdentity, b: WorkloadIdentity): boolean =>
    a.bundle === b.bundle &&
    a.svids.length === b.svids.length &&
    a.svids.every((svid, i) => svid === b.svids[i]);
  const drop = (key: string, cached: Cached): void => {
    cache.delete(key);
    total -= cached.bytes;
  };
  return (identity) => {
    let key = "";
    // Entry IDs only: `same` tells a rotated record or another bundle apart (the entry is
    // then built afresh and replaces the stale one).
    for (const svid of identity.svids) key += `${svid.entryId};`;
    const hit = cache.get(key);
    if (hit !== undefined) {
      drop(key, hit);
      if (same(hit.identity, identity)) {
        cache.set(key, hit);
        total += hit.bytes;
        return hit.response;
      }
    }
    const response = identityToX509SvidResponse(identity);
    let bytes = response.svids[0]?.bundle.byteLength ?? 0;
    for (const svid of response.svids)
      bytes += svid.x509Svid.byteLength + svid.x509SvidKey.byteLength;
    bytes *= 2;
    if (bytes > maxBytes) return response;
    // Only what the response needs: not the caller's identity object.
    cache.set(key, {
      identity: { svids: [...identity.svids], bundle: identity.bundle },
      response,
      bytes,
    });
    total += bytes;
    for (const [oldKey, old] of cache) {
      if (total <= maxBytes) break;
      drop(oldKey, old);
    }
    return response;
  };
}

/**
 * Converts the agent's bundle into an X509BundlesResponse: the X.509 authorities as DER
 * concatenated, keyed by the trust-domain ID (`spiffe://<td>`).
 */
export function bundleToX509BundlesResponse(bundle: AgentBundle): X509BundlesResponse {
  return {
    crl: [],
    bundles: { [trustDomainIdOf(bundle)]: bundleDerOf(bundle) },
  };
}

/** Reports whether `metadata` carries `workload.spiffe.io: true`. */
export function hasWorkloadApiHeader(metadata: Metadata): boolean {
  return metadata.get(WORKLOAD_API_HEADER).some((value) => String(value) === "true");
}

function missingHeaderError(): MeshidError {
  return new MeshidError(
    "invalid_argument",
    WorkloadApiErrorCode.missingHeader,
    `security header missing from request: every Workload API call must carry "${WORKLOAD_API_HEADER}: true"`,
  );
}

function noIdentityError(): MeshidError {
  return new MeshidError("permission_denied", WorkloadApiErrorCode.noIdentity, NO_IDENTITY_MESSAGE);
}

function shuttingDownError(): MeshidError {
  return new MeshidError(
    "unavailable",
    WorkloadApiErrorCode.shuttingDown,
    "the Workload API is shutting down; retry",
  );
}

/** Why a stream's abort controller fired. */
type StopReason = "cancelled" | "shutdown";

/**
 * The abort reason of a stream's controller: one shared Error, because `abort()` without a
 * reason builds a DOMException with a stack trace per stream. Never sent to a client.
 */
const STREAM_STOPPED = new Error("Workload API stream stopped");

/** Writes one message, settling when grpc-js took it or the stream stopped. */
function writeMessage<Response>(
  call: ServerWritableStream<unknown, Response>,
  message: Response,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => resolve();
    signal.addEventListener("abort", onAbort, { once: true });
    call.write(message, (err: Error | null | undefined) => {
      signal.removeEventListener("abort", onAbort);
      if (err === null || err === undefined || signal.aborted) resolve();
      else reject(err);
    });
  });
}

/**
 * Creates the grpc-js handlers of the SPIFFE Workload API. Every call must carry
 * `workload.spiffe.io: true` (else INVALID_ARGUMENT). Streams attest the caller first
 * (PERMISSION_DENIED on failure, UNAVAILABLE when the attestation error is `unavailable`), then:
 * FetchX509SVID sends the caller's full identity at once and on every change, ending with
 * PERMISSION_DENIED `no identity issued` when the caller has (or is left with) no SVID;
 * FetchX509Bundles sends the bundle keyed by `spiffe://<td>` at once and on every change to any
 * attested caller. The JWT methods answer UNIMPLEMENTED. A client going away aborts its watch;
 * {@link WorkloadApiDeps.shutdownSignal} ends every stream with UNAVAILABLE. Key material is
 * never logged.
 */
export function createWorkloadApiHandlers(deps: WorkloadApiDeps): WorkloadApiHandlers {
  const { attestation, identities, peerProcess, shutdownSignal } = deps;
  const logger = deps.logger.child({ [LogKeys.component]: "workload-api" });
  const mintWaitMs = deps.mintWaitMs ?? DEFAULT_MINT_WAIT_MS;
  const meter = deps.meter ?? getMeter("@meshid/agent");
  // Counted here and reported when metrics are collected: recording on the instrument per
  // stream (twice) hashed its attributes every time, ≈ 5 % of the agent's CPU per call.
  const openByMethod = new Map<string, number>();
  const openStreamsGauge = meter.createObservableUpDownCounter(METRIC_WORKLOAD_API_OPEN_STREAMS, {
    description: "Open SPIFFE Workload API streams",
  });
  const observeOpenStreams = (result: ObservableResult): void => {
    for (const [method, count] of openByMethod) result.observe(count, { method });
  };
  openStreamsGauge.addCallback(observeOpenStreams);
  shutdownSignal?.addEventListener(
    "abort",
    () => openStreamsGauge.removeCallback(observeOpenStreams),
    { once: true },
  );
  let openStreams = 0;
  const x509SvidResponse = createX509SvidResponseCache();

  async function attestCaller(
    peer: string,
    signal: AbortSignal,
  ): Promise<{ process: WorkloadProcess; selectors: Selector[] }> {
    const process = peerProcess(peer);
    if (process === undefined) {
      throw new MeshidError(
        "permission_denied",
        WorkloadApiErrorCode.unknownPeer,
        "the caller's peer credentials are unknown",
      );
    }
    try {
      return { process, selectors: await attestation.attest(process, signal) };
    } catch (err) {
      if (signal.aborted) throw err;
      const unavailable = isMeshidError(err) && err.kind === "unavailable";
      logger.warn(
        {
          [WorkloadApiLogKeys.pid]: process.pid,
          [WorkloadApiLogKeys.uid]: process.uid,
          [LogKeys.err]: err,
        },
        "workload attestation failed",
      );
      const reason = isMeshidError(err) ? `: ${err.message}` : "";
      throw unavailable
        ? new MeshidError(
            "unavailable",
            WorkloadApiErrorCode.attestationUnavailable,
            `workload attestation is unavailable${reason}`,
            { cause: err },
          )
        : new MeshidError(
            "permission_denied",
            WorkloadApiErrorCode.attestationFailed,
            `workload attestation failed${reason}`,
            { cause: err },
          );
    }
  }

  /** Sends the final status of a stream unless the client already went away. */
  function finishStream<Request, Response>(
    call: ServerWritableStream<Request, Response>,
    method: string,
    err: unknown,
  ): void {
    if (call.cancelled || call.destroyed || call.writableEnded) return;
    if (err === undefined) {
      call.end();
      return;
    }
    const statusObject = statusOf(err, method);
    call.emit("error", statusObject);
  }

  function statusOf(err: unknown, method: string): Partial<StatusObject> {
    if (isMeshidError(err) && err.kind !== "internal") {
      return { code: statusForErrorKind(err.kind), details: err.message };
    }
    logger.error({ [LogKeys.method]: method, [LogKeys.err]: err }, "Workload API call failed");
    return { code: status.INTERNAL, details: "internal error" };
  }

  /**
   * Runs a server stream: header check, stream limit, cancellation and shutdown wiring, the
   * open-streams gauge, and the final status. `body` returns when the stream should end OK.
   */
  function serveStream<Request, Response>(
    method: string,
    call: ServerWritableStream<Request, Response>,
    body: (signal: AbortSignal, stopped: () => StopReason | undefined) => Promise<void>,
  ): void {
    const controller = new AbortController();
    let stopReason: StopReason | undefined;
    const stop = (reason: StopReason): void => {
      stopReason ??= reason;
      controller.abort(STREAM_STOPPED);
    };
    const onCancelled = (): void => stop("cancelled");
    const onShutdown = (): void => stop("shutdown");
    call.on("cancelled", onCancelled);
    shutdownSignal?.addEventListener("abort", onShutdown, { once: true });
    openStreams += 1;
    openByMethod.set(method, (openByMethod.get(method) ?? 0) + 1);

    const run = async (): Promise<void> => {
      if (!hasWorkloadApiHeader(call.metadata)) throw missingHeaderError();
      if (shutdownSignal?.aborted === true) throw shuttingDownError();
      if (deps.maxConcurrentStreams !== undefined && openStreams > deps.maxConcurrentStreams) {
        throw new MeshidError(
          "unavailable",
          WorkloadApiErrorCode.overloaded,
          "too many open Workload API streams; retry",
        );
      }
      await body(controller.signal, () => stopReason);
      if (stopReason === "shutdown") throw shuttingDownError();
    };

    run()
      .then(
        () => finishStream(call, method, undefined),
        (err: unknown) => {
          const shutdown = stopReason === "shutdown";
          finishStream(call, method, shutdown ? shuttingDownError() : err);
        },
      )
      .finally(() => {
        openStreams -= 1;
        openByMethod.set(method, (openByMethod.get(method) ?? 1) - 1);
        call.off("cancelled", onCancelled);
        shutdownSignal?.removeEventListener("abort", onShutdown);
        controller.abort(STREAM_STOPPED);
      })
      .catch((err: unknown) => {
        logger.error(
          { [LogKeys.method]: method, [LogKeys.err]: err },
          "Workload API stream failed",
        );
      });
  }

  /** An identity source that ended on its own (not through our abort) means the agent stops. */
  function sourceEnded(stopped: () => StopReason | undefined): void {
    if (stopped() === undefined) throw shuttingDownError();
  }

  return {
    fetchX509SVID(call) {
      serveStream("FetchX509SVID", call, async (signal, stopped) => {
        const { process, selectors } = await attestCaller(call.getPeer(), signal);
        const fields = {
          [WorkloadApiLogKeys.pid]: process.pid,
          [WorkloadApiLogKeys.uid]: process.uid,
        };
        let sent = 0;
        for await (const identity of identities.watchIdentity(selectors, { signal, mintWaitMs })) {
          if (signal.aborted) return;
          if (identity.svids.length === 0) {
            logger.info(
              fields,
              sent === 0
                ? "workload has no identity: PERMISSION_DENIED"
                : "every identity of the workload was withdrawn: ending the stream",
            );
            throw noIdentityError();
          }
          await writeMessage(call, x509SvidResponse(identity), signal);
          sent += 1;
          logger.debug(
            {
              ...fields,
              [WorkloadApiLogKeys.svidCount]: identity.svids.length,
              [LogKeys.spiffeId]: identity.svids.map((svid) => svid.spiffeId),
            },
            "sent X509-SVIDs to a workload",
          );
        }
        sourceEnded(stopped);
      });
    },

    fetchX509Bundles(call) {
      serveStream("FetchX509Bundles", call, async (signal, stopped) => {
        await attestCaller(call.getPeer(), signal);
        for await (const bundle of identities.watchBundle(signal)) {
          if (signal.aborted) return;
          await writeMessage(call, bundleToX509BundlesResponse(bundle), signal);
        }
        sourceEnded(stopped);
      });
    },

    fetchJWTSVID(call, callback) {
      callback(jwtStatus(call.metadata), null);
    },

    fetchJWTBundles(call) {
      if (call.cancelled) return;
      call.emit("error", jwtStatus(call.metadata));
    },

    validateJWTSVID(call, callback) {
      callback(jwtStatus(call.metadata), null);
    },
  };
}

function jwtStatus(metadata: Metadata): Partial<StatusObject> {
  return hasWorkloadApiHeader(metadata)
    ? { code: status.UNIMPLEMENTED, details: JWT_UNIMPLEMENTED_MESSAGE }
    : { code: status.INVALID_ARGUMENT, details: missingHeaderError().message };
}
