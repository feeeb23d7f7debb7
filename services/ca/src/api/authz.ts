// Who is calling the CA, and may they call this method.
import { MeshidError } from "@meshid/errors";
import type { PeerIdentityContext } from "@meshid/grpc-kit";
import type { SpiffeId } from "@meshid/spiffe";
import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from "nice-grpc-common";
import type { Clock } from "../ports";
import type { AgentManager, EntryManager } from "./deps";

/** Roles a method may require. */
export type CallerRole = "admin" | "agent";

/** Which callers a method accepts: everyone (no certificate needed), or a set of roles. */
export type MethodPolicy = "anyone" | readonly CallerRole[];

/** The authorised caller, as handlers see it. */
export type Caller =
  | { readonly role: "admin"; readonly spiffeId: SpiffeId | undefined; readonly local: boolean }
  | { readonly role: "agent"; readonly spiffeId: SpiffeId }
  | { readonly role: "anyone"; readonly spiffeId: SpiffeId | undefined };

/** Call context added by the authorisation middleware. */
export interface CaCallContext {
  readonly caller: Caller;
}

/** Error codes of authorisation failures. */
export const AuthzErrorCode = {
  unauthenticated: "ca.authz.unauthenticated",
  denied: "ca.authz.denied",
  agentBanned: "ca.agent.banned",
  agentUnknown: "ca.authz.agent_unknown",
} as const;

/** SPIFFE ID path prefix of agents. */
export const AGENT_PATH_PREFIX = "/meshid/agent/";

/** How long an "is this SPIFFE ID an admin entry" answer is cached, in milliseconds. */
export const ADMIN_ENTRY_CACHE_MS = 5_000;

const CA = "/meshid.ca.v1.";
const AGENT_ONLY: readonly CallerRole[] = ["agent"];
const ADMIN_ONLY: readonly CallerRole[] = ["admin"];
const AGENT_OR_ADMIN: readonly CallerRole[] = ["agent", "admin"];

/**
 * The method policy table: methods not listed are admin-only. Health (`/grpc.health.v1.Health/`)
 * is served without this middleware and so open to anyone.
 */
export const METHOD_POLICIES: Readonly<Record<string, MethodPolicy>> = Object.freeze({
  [`${CA}AgentService/AttestAgent`]: "anyone",
  [`${CA}AgentService/RenewAgent`]: AGENT_ONLY,
  [`${CA}EntryService/SyncAuthorizedEntries`]: AGENT_ONLY,
  [`${CA}SvidService/BatchNewX509SVID`]: AGENT_ONLY,
  [`${CA}BundleService/GetBundle`]: AGENT_OR_ADMIN,
  [`${CA}BundleService/WatchBundle`]: AGENT_OR_ADMIN,
});

/** The policy of `methodPath` (`/package.Service/Method`); admin-only unless listed. */
export function policyForMethod(methodPath: string): MethodPolicy {
  if (methodPath.startsWith("/grpc.health.v1.Health/")) return "anyone";
  return METHOD_POLICIES[methodPath] ?? ADMIN_ONLY;
}

/** Dependencies of {@link createAuthorizer}. */
export interface AuthorizerDeps {
  /** SPIFFE IDs (strings) that are always admins (config `adminIds`). */
  readonly adminIds: readonly string[];
  readonly entries: Pick<EntryManager, "list">;
  readonly agents: Pick<AgentManager, "checkAgent">;
  readonly clock: Pick<Clock, "now">;
  /** Admin-entry cache lifetime in ms. Default {@link ADMIN_ENTRY_CACHE_MS}. */
  readonly adminCacheMs?: number;
}

/** Decides the role of a TCP caller. */
export interface Authorizer {
  /**
   * Authorises a caller of `methodPath` identified by its verified SVID (or none).
   * @throws MeshidError unauthenticated (`ca.authz.unauthenticated`) without an SVID for a
   *   method that needs one; permission_denied (`ca.authz.denied`, `ca.agent.banned`) otherwise.
   */
  authorize(
    methodPath: string,
    spiffeId: SpiffeId | undefined,
    certSerialHex: string | undefined,
  ): Promise<Caller>;
  /** Whether `spiffeId` is an admin (adminIds or an admin entry). */
  isAdmin(spiffeId: SpiffeId): Promise<boolean>;
  /** Forgets cached admin-entry answers (after entry changes). */
  invalidate(): void;
}

/** Creates the {@link Authorizer} for TCP callers. */
export function createAuthorizer(deps: AuthorizerDeps): Authorizer {
  const adminIds = new Set(deps.adminIds);
  const cacheMs = deps.adminCacheMs ?? ADMIN_ENTRY_CACHE_MS;
  const cache = new Map<string, { admin: boolean; at: number }>();

  async function isAdminEntry(id: string): Promise<boolean> {
    const now = deps.clock.now().getTime();
    const hit = cache.get(id);
    if (hit !== undefined && now - hit.at < cacheMs) return hit.admin;
    let admin = false;
    let pageToken: string | undefined;
    do {
      const page = await deps.entries.list({
        bySpiffeId: id,
        ...(pageToken === undefined ? {} : { pageToken }),
      });
      admin = page.items.some((e) => e.admin);
      pageToken = page.nextPageToken === "" ? undefined : page.nextPageToken;
    } while (!admin && pageToken !== undefined);
    if (cache.size > 10_000) cache.clear();
    cache.set(id, { admin, at: now });
    return admin;
  }

  const authorizer: Authorizer = {
    async isAdmin(spiffeId) {
      const id = spiffeId.toString();
      return adminIds.has(id) || (await isAdminEntry(id));
    },
    invalidate() {
      cache.clear();
    },
    async authorize(methodPath, spiffeId, certSerialHex) {
      const policy = policyForMethod(methodPath);
      if (policy === "anyone") return { role: "anyone", spiffeId };
      if (spiffeId === undefined) {
        throw new MeshidError(
          "unauthenticated",
          AuthzErrorCode.unauthenticated,
          "a verified X509-SVID is required",
        );
      }
      if (policy.includes("admin") && (await authorizer.isAdmin(spiffeId))) {
        return { role: "admin", spiffeId, local: false };
      }
      if (policy.includes("agent") && spiffeId.path.startsWith(AGENT_PATH_PREFIX)) {
        const status = await deps.agents.checkAgent(spiffeId, certSerialHex ?? "");
        if (status === "ok") return { role: "agent", spiffeId };
        if (status === "banned") {
          throw new MeshidError("permission_denied", AuthzErrorCode.agentBanned, "agent is banned");
        }
        throw new MeshidError(
          "permission_denied",
          AuthzErrorCode.agentUnknown,
          "caller is not a current attested agent",
        );
      }
      throw new MeshidError(
        "permission_denied",
        AuthzErrorCode.denied,
        "caller is not authorized for this method",
      );
    },
  };
  return authorizer;
}

/**
 * Server middleware for the TCP listener: authorises each call with `authorizer` from the
 * verified peer identity and adds `caller` to the context.
 */
export function tcpAuthzMiddleware(
  authorizer: Authorizer,
): ServerMiddleware<CaCallContext, PeerIdentityContext> {
  return async function* caTcpAuthz<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, CaCallContext & PeerIdentityContext>,
    context: CallContext & PeerIdentityContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const caller = await authorizer.authorize(
      call.method.path,
      context.callerSpiffeId,
      context.callerCertSerialHex,
    );
    return yield* call.next(call.request, { ...context, caller });
  };
}

/**
 * Server middleware for the admin Unix socket: every caller is a local admin (the socket's
 * directory and file modes decide who can connect).
 */
export function adminSocketMiddleware(): ServerMiddleware<CaCallContext, PeerIdentityContext> {
  return async function* caAdminSocketAuthz<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, CaCallContext & PeerIdentityContext>,
    context: CallContext & PeerIdentityContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const caller: Caller = { role: "admin", spiffeId: undefined, local: true };
    return yield* call.next(call.request, { ...context, caller });
  };
}

/**
 * Checks inside a handler that the caller has `role` (defence in depth behind the policy table).
 * @throws MeshidError permission_denied `ca.authz.denied`.
 */
export function requireRole<R extends CallerRole>(
  caller: Caller,
  role: R,
): Extract<Caller, { role: R }> {
  if (caller.role !== role) {
    throw new MeshidError(
      "permission_denied",
      AuthzErrorCode.denied,
      "caller is not authorized for this method",
    );
  }
  return caller as Extract<Caller, { role: R }>;
}
