// CaBundleClient over gRPC: the CA's BundleService on its admin Unix socket, or over TCP with
// mTLS and the notifier's own SVID.
import type { Metadata } from "nice-grpc-common";
import { MeshidError } from "@meshid/errors";
import {
  createGrpcChannel,
  createGrpcClient,
  isAbortError,
  meshidErrorFromClientError,
  type ChannelTlsOptions,
} from "@meshid/grpc-kit";
import { meshidCaV1 } from "@meshid/proto";
import type { NotifierBundle } from "../domain/bundle";
import type { CaBundleClient } from "../ports";

/** Default deadline of GetBundle, in milliseconds. */
export const DEFAULT_GET_BUNDLE_DEADLINE_MS = 10_000;

/** Keepalive pings detect a silently dead stream (idle bundle streams may last days). */
const CHANNEL_OPTIONS = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000,
  "grpc.keepalive_permit_without_calls": 1,
} as const;

/** Dependencies of {@link createGrpcCaBundleClient}. */
export interface GrpcCaBundleClientDeps {
  /** `unix:///path/admin.sock` (plaintext, the CA's admin socket) or `host:port` with `tls`. */
  readonly target: string;
  /** mTLS with a rotating SVID; required for TCP targets. */
  readonly tls?: ChannelTlsOptions;
  /** Deadline of GetBundle, in milliseconds. Default {@link DEFAULT_GET_BUNDLE_DEADLINE_MS}. */
  readonly deadlineMs?: number;
}

function badResponse(message: string): MeshidError {
  return new MeshidError("internal", "bundle_notifier.ca.bad_response", message);
}

/**
 * Converts a GetBundleResponse (also each WatchBundle message) into a {@link NotifierBundle}.
 * @throws MeshidError `bundle_notifier.ca.bad_response` when the bundle, its PEM or JWKS is
 *   missing (an empty bundle is never written to a target).
 */
export function notifierBundleFromProto(msg: meshidCaV1.GetBundleResponse): NotifierBundle {
  const b = msg.bundle;
  if (b === undefined) throw badResponse("the CA sent no bundle");
  if (!msg.pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw badResponse("the CA sent a bundle without X.509 authorities");
  }
  if (msg.spiffeJwks.trim() === "") throw badResponse("the CA sent no SPIFFE bundle");
  return {
    trustDomain: b.trustDomain,
    sequenceNumber: b.sequenceNumber,
    pem: msg.pem,
    spiffeJwks: msg.spiffeJwks,
  };
}

/**
 * Creates a {@link CaBundleClient} over one long-lived channel. Failures are MeshidErrors with
 * the CA's error code (`meshid-error-code` trailer) or `grpc.<status>`; an aborted watch ends
 * quietly.
 */
export function createGrpcCaBundleClient(deps: GrpcCaBundleClientDeps): CaBundleClient {
  const channel = createGrpcChannel({
    target: deps.target,
    ...(deps.tls === undefined ? {} : { tls: deps.tls }),
    channelOptions: CHANNEL_OPTIONS,
  });
  const bundles = createGrpcClient(meshidCaV1.BundleServiceDefinition, channel);
  const deadlineMs = deps.deadlineMs ?? DEFAULT_GET_BUNDLE_DEADLINE_MS;

  return {
    async *watchBundle(signal) {
      let trailer: Metadata | undefined;
      try {
        const stream = bundles.watchBundle(
          {},
          {
            signal,
            onTrailer: (t) => {
              trailer = t;
            },
          },
        );
        for await (const msg of stream) yield notifierBundleFromProto(msg);
      } catch (err) {
        if (signal.aborted && isAbortError(err)) return;
        throw meshidErrorFromClientError(err, trailer);
      }
    },

    async getBundle(signal) {
      let trailer: Metadata | undefined;
      try {
        const msg = await bundles.getBundle(
          {},
          {
            deadline: deadlineMs,
            ...(signal === undefined ? {} : { signal }),
            onTrailer: (t) => {
              trailer = t;
            },
          },
        );
        return notifierBundleFromProto(msg);
      } catch (err) {
        throw meshidErrorFromClientError(err, trailer);
      }
    },

    close() {
      channel.close();
    },
  };
}
