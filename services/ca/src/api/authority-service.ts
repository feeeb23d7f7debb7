// AuthorityService: the CA's own authorities and forced rotation (admins only).
import type { meshidCaV1 } from "@meshid/proto";
import { requireRole, type CaCallContext } from "./authz";
import { authorityIdFromProto, authorityToProto } from "./converters";
import type { AuthorityManager } from "./deps";

/** Dependencies of {@link createAuthorityService}. */
export interface AuthorityServiceDeps {
  readonly authority: AuthorityManager;
}

/** Creates the AuthorityService implementation. */
export function createAuthorityService(
  deps: AuthorityServiceDeps,
): meshidCaV1.AuthorityServiceImplementation<CaCallContext> {
  const { authority } = deps;
  return {
    getX509AuthorityState(_req, ctx) {
      requireRole(ctx.caller, "admin");
      const state = authority.state();
      return Promise.resolve({
        active: authorityToProto(state.active),
        ...(state.prepared === undefined ? {} : { prepared: authorityToProto(state.prepared) }),
        old: state.old.map(authorityToProto),
      });
    },
    async prepareX509Authority(_req, ctx) {
      requireRole(ctx.caller, "admin");
      return authorityToProto(await authority.prepare());
    },
    async activateX509Authority(req, ctx) {
      requireRole(ctx.caller, "admin");
      return authorityToProto(await authority.activate(authorityIdFromProto(req.authorityId)));
    },
    async taintX509Authority(req, ctx) {
      requireRole(ctx.caller, "admin");
      return authorityToProto(await authority.taint(authorityIdFromProto(req.authorityId)));
    },
    async revokeX509Authority(req, ctx) {
      requireRole(ctx.caller, "admin");
      return authorityToProto(await authority.revoke(authorityIdFromProto(req.authorityId)));
    },
  };
}
