import { ServerInterceptingCall, type ServerInterceptor } from "@grpc/grpc-js";
import { parseSpiffeId, type SpiffeId } from "@meshid/spiffe";
import {
  ServerError,
  Status,
  type CallContext,
  type ServerMiddleware,
  type ServerMiddlewareCall,
} from "nice-grpc-common";
import { GrpcLogKeys } from "./log-keys";
import type { GrpcLogger } from "./logger";

/**
 * Metadata key through which {@link peerIdentityInterceptor} hands the URI SANs of the verified
 * client certificate to {@link peerIdentityMiddleware}. The interceptor always deletes a value
 * sent by the client first, so callers cannot forge it.
 */
export const PEER_URI_SANS_METADATA_KEY = "x-meshid-verified-peer-uri-sans";

/**
 * Metadata key through which {@link peerIdentityInterceptor} hands the serial number of the
 * verified client leaf certificate to {@link peerIdentityMiddleware}; removed from client input
 * like {@link PEER_URI_SANS_METADATA_KEY}.
 */
export const PEER_CERT_SERIAL_METADATA_KEY = "x-meshid-verified-peer-serial";

/** Call context added by {@link peerIdentityMiddleware}. */
export interface PeerIdentityContext {
  /**
   * SPIFFE ID of the caller's verified X509-SVID; `undefined` when the connection is not TLS,
   * the caller sent no certificate, the certificate failed verification, or it does not carry
   * exactly one valid SPIFFE ID URI SAN.
   */
  callerSpiffeId: SpiffeId | undefined;
  /**
   * Serial number (lowercase hex) of the caller's verified leaf certificate when
   * `callerSpiffeId` is set (e.g. to check it is an agent's current SVID); else `undefined`.
   */
  callerCertSerialHex?: string | undefined;
}

/** Call context guaranteed by {@link requirePeerSpiffeId}. */
export interface RequiredPeerIdentityContext {
  /** SPIFFE ID of the caller's verified X509-SVID. */
  callerSpiffeId: SpiffeId;
}

/**
 * Returns the URI SANs listed in Node's `subjectaltname` string (`"URI:spiffe://td/x, DNS:a"`);
 * values Node had to quote (JSON-style) are unquoted.
 */
export function uriSansFromSubjectAltName(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === "") return [];
  const uris: string[] = [];
  // Entries are ", "-separated; an entry whose value contains a comma is JSON-quoted by Node.
  const entry = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const match of subjectAltName.matchAll(entry)) {
    const [, type, raw = ""] = match;
    if (type !== "URI") continue;
    uris.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return uris;
}

/**
 * grpc-js server interceptor that reads the verified peer certificate of the call's TLS
 * connection (`getAuthContext().sslPeerCertificate`, which grpc-js only fills when the chain
 * verified against the trust bundle) and passes its URI SANs to {@link peerIdentityMiddleware}
 * in the metadata. Any client-sent value under the same key is removed first. `createGrpcServer`
 * installs it for every listener.
 */
export const peerIdentityInterceptor: ServerInterceptor = (_methodDescriptor, call) =>
  new ServerInterceptingCall(call, {
    start(next) {
      next({
        onReceiveMetadata(metadata, nextMetadata) {
          metadata.remove(PEER_URI_SANS_METADATA_KEY);
          metadata.remove(PEER_CERT_SERIAL_METADATA_KEY);
          const cert = call.getAuthContext().sslPeerCertificate;
          if (cert !== undefined) {
            metadata.set(
              PEER_URI_SANS_METADATA_KEY,
              JSON.stringify(uriSansFromSubjectAltName(cert.subjectaltname)),
            );
            if (typeof cert.serialNumber === "string" && cert.serialNumber !== "") {
              metadata.set(PEER_CERT_SERIAL_METADATA_KEY, cert.serialNumber.toLowerCase());
            }
          }
          nextMetadata(metadata);
        },
      });
    },
  });

/** Dependencies of {@link peerIdentityMiddleware}. */
export interface PeerIdentityMiddlewareDeps {
  /** Logs certificates that verified but carry no usable SPIFFE ID. */
  logger: GrpcLogger;
}

/**
 * Creates the server middleware that adds `callerSpiffeId` to the call context from what
 * {@link peerIdentityInterceptor} found, and removes the internal metadata key so handlers never
 * see it. It never rejects a call; use {@link requirePeerSpiffeId} for that.
 */
export function peerIdentityMiddleware(
  deps: PeerIdentityMiddlewareDeps,
): ServerMiddleware<PeerIdentityContext> {
  const { logger } = deps;
  return async function* meshidPeerIdentityMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, PeerIdentityContext>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const raw = context.metadata.get(PEER_URI_SANS_METADATA_KEY);
    const serial = context.metadata.get(PEER_CERT_SERIAL_METADATA_KEY);
    context.metadata.delete(PEER_URI_SANS_METADATA_KEY);
    context.metadata.delete(PEER_CERT_SERIAL_METADATA_KEY);
    let callerSpiffeId: SpiffeId | undefined;
    if (raw !== undefined) {
      callerSpiffeId = spiffeIdFromUriSans(parseUriSans(raw));
      if (callerSpiffeId === undefined) {
        logger.warn(
          { [GrpcLogKeys.method]: call.method.path, [GrpcLogKeys.peer]: context.peer },
          "verified client certificate carries no single valid SPIFFE ID; treating caller as anonymous",
        );
      }
    }
    const callerCertSerialHex = callerSpiffeId === undefined ? undefined : serial;
    return yield* call.next(call.request, { ...context, callerSpiffeId, callerCertSerialHex });
  };
}

function parseUriSans(raw: string): string[] {
  try {
    const parsed: unknown = JSON.parse(raw);
    return Array.isArray(parsed) ? parsed.filter((u): u is string => typeof u === "string") : [];
  } catch {
    return [];
  }
}

function spiffeIdFromUriSans(uris: readonly string[]): SpiffeId | undefined {
  if (uris.length !== 1 || uris[0] === undefined) return undefined;
  try {
    return parseSpiffeId(uris[0]);
  } catch {
    return undefined;
  }
}

/**
 * Decides whether the caller `id` may call `methodPath` (`/package.Service/Method`).
 */
export type AuthorizePeer = (id: SpiffeId, methodPath: string) => boolean;

/**
 * Creates a server middleware (attach per service with `server.with(...)`) that requires a
 * verified caller SPIFFE ID: a call without one fails with `UNAUTHENTICATED`, a call whose ID
 * `authorize` rejects fails with `PERMISSION_DENIED`. Neither message reveals the policy.
 * Requires {@link peerIdentityMiddleware} earlier in the chain (`createGrpcServer` adds it).
 */
export function requirePeerSpiffeId(
  authorize: AuthorizePeer,
): ServerMiddleware<RequiredPeerIdentityContext, PeerIdentityContext> {
  return async function* meshidRequirePeerSpiffeId<Request, Response>(
    call: ServerMiddlewareCall<
      Request,
      Response,
      RequiredPeerIdentityContext & PeerIdentityContext
    >,
    context: CallContext & PeerIdentityContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const { callerSpiffeId } = context;
    if (callerSpiffeId === undefined) {
      throw new ServerError(Status.UNAUTHENTICATED, "a verified X509-SVID is required");
    }
    if (!authorize(callerSpiffeId, call.method.path)) {
      throw new ServerError(Status.PERMISSION_DENIED, "caller is not authorized for this method");
    }
    return yield* call.next(call.request, { ...context, callerSpiffeId });
  };
}
