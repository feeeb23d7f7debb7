// Who is calling proxy-config: admins (the admin Unix socket, or `adminIds` over mTLS) and any
// other workload of the trust domain with a verified X509-SVID.
import { MeshidError } from "@meshid/errors";
import type { PeerIdentityContext } from "@meshid/grpc-kit";
import type { SpiffeId } from "@meshid/spiffe";
import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from "nice-grpc-common";

/** The authorised caller, as handlers see it. */
export interface Caller {
  readonly admin: boolean;
  /** Undefined on the admin socket. */
  readonly spiffeId: SpiffeId | undefined;
}

/** Call context added by the authorisation middleware. */
export interface ProxyConfigCallContext {
  readonly caller: Caller;
}

/** Error codes of authorisation failures. */
export const AuthzErrorCode = {
  unauthenticated: "proxy_config.authz.unauthenticated",
  denied: "proxy_config.authz.denied",
} as const;

/**
 * Middleware of the TCP (mTLS) listener: the caller must present a verified SVID of
 * `trustDomain`; it is an admin when its SPIFFE ID is in `adminIds`.
 */
export function tcpAuthzMiddleware(params: {
  readonly trustDomain: string;
  readonly adminIds: readonly string[];
}): ServerMiddleware<ProxyConfigCallContext, PeerIdentityContext> {
  const admins = new Set(params.adminIds);
  return async function* proxyConfigTcpAuthz<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, ProxyConfigCallContext & PeerIdentityContext>,
    context: CallContext & PeerIdentityContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const id = context.callerSpiffeId;
    if (id === undefined) {
      throw new MeshidError(
        "unauthenticated",
        AuthzErrorCode.unauthenticated,
        "a verified X509-SVID is required",
      );
    }
    if (id.trustDomain.name !== params.trustDomain) {
      throw new MeshidError(
        "permission_denied",
        AuthzErrorCode.denied,
        "caller is not in this trust domain",
      );
    }
    const caller: Caller = { admin: admins.has(id.toString()), spiffeId: id };
    return yield* call.next(call.request, { ...context, caller });
  };
}

/** Middleware of the admin Unix socket: every caller is an admin (file modes decide who). */
export function adminSocketMiddleware(): ServerMiddleware<
  ProxyConfigCallContext,
  PeerIdentityContext
> {
  return async function* proxyConfigAdminSocketAuthz<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, ProxyConfigCallContext & PeerIdentityContext>,
    context: CallContext & PeerIdentityContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    return yield* call.next(call.request, {
      ...context,
      caller: { admin: true, spiffeId: undefined },
    });
  };
}

/**
 * Checks that the caller is an admin.
 * @throws MeshidError `permission_denied` `proxy_config.authz.denied`.
 */
export function requireAdmin(caller: Caller): void {
  if (!caller.admin) {
    throw new MeshidError(
      "permission_denied",
      AuthzErrorCode.denied,
      "only admins may update the MeshConfig",
    );
  }
}
