// AgentService: node attestation (anyone), agent SVID renewal (agents), agent admin (admins).
import { MeshidError } from "@meshid/errors";
import type { meshidCaV1 } from "@meshid/proto";
import { requireRole, type CaCallContext } from "./authz";
import { checkTrustDomain } from "./batch";
import {
  ConverterErrorCode,
  agentToProto,
  bundleToProto,
  issuedSvidToProto,
  joinTokenToProto,
  listAgentsParamsFromProto,
  spiffeIdFromProto,
} from "./converters";
import type { AgentManager, AuthorityManager } from "./deps";

/** Attestation types AttestAgent accepts. */
export const ATTESTATION_TYPES: readonly string[] = Object.freeze(["join_token", "k8s_psat"]);
/** Largest join-token lifetime, in seconds (30 days). */
export const MAX_JOIN_TOKEN_TTL_SECONDS = 30 * 24 * 3600;
/** Largest accepted CSR, in bytes. */
export const MAX_CSR_BYTES = 16 * 1024;
/** Largest accepted attestation token, in bytes. */
export const MAX_TOKEN_BYTES = 16 * 1024;

/** Dependencies of {@link createAgentService}. */
export interface AgentServiceDeps {
  readonly trustDomain: string;
  readonly agents: AgentManager;
  readonly authority: Pick<AuthorityManager, "bundle">;
}

function invalid(code: string, message: string): MeshidError {
  return new MeshidError("invalid_argument", code, message);
}

/**
 * Checks that a CSR field is present and not oversized.
 * @throws MeshidError invalid_argument `ca.api.field_missing` / `ca.api.field_invalid`.
 */
export function csrFromProto(csr: Uint8Array, field = "csr"): Uint8Array {
  if (csr.length === 0) throw invalid(ConverterErrorCode.fieldMissing, `${field} is required`);
  if (csr.length > MAX_CSR_BYTES) {
    throw invalid(
      ConverterErrorCode.fieldInvalid,
      `${field} is larger than ${MAX_CSR_BYTES} bytes`,
    );
  }
  return csr;
}

/** Creates the AgentService implementation. */
export function createAgentService(
  deps: AgentServiceDeps,
): meshidCaV1.AgentServiceImplementation<CaCallContext> {
  const { agents } = deps;
  return {
    async attestAgent(req) {
      if (req.attestationType === "") {
        throw invalid(ConverterErrorCode.fieldMissing, "attestation_type is required");
      }
      if (!ATTESTATION_TYPES.includes(req.attestationType)) {
        throw invalid(
          ConverterErrorCode.fieldInvalid,
          `attestation_type must be one of ${ATTESTATION_TYPES.join(", ")}`,
        );
      }
      if (req.token === "") throw invalid(ConverterErrorCode.fieldMissing, "token is required");
      if (req.token.length > MAX_TOKEN_BYTES) {
        throw invalid(ConverterErrorCode.fieldInvalid, "token is too large");
      }
      if (req.attestationType === "k8s_psat" && req.cluster === "") {
        throw invalid(ConverterErrorCode.fieldMissing, "cluster is required for k8s_psat");
      }
      const csr = csrFromProto(req.csr);
      const { svid } = await agents.attest({
        attestationType: req.attestationType,
        token: req.token,
        cluster: req.cluster,
        csrDer: csr,
      });
      return { svid: issuedSvidToProto(svid), bundle: bundleToProto(deps.authority.bundle()) };
    },
    async renewAgent(req, ctx) {
      const caller = requireRole(ctx.caller, "agent");
      const svid = await agents.renew(caller.spiffeId, csrFromProto(req.csr));
      return { svid: issuedSvidToProto(svid) };
    },
    async createJoinToken(req, ctx) {
      requireRole(ctx.caller, "admin");
      if (
        !Number.isInteger(req.ttlSeconds) ||
        req.ttlSeconds <= 0 ||
        req.ttlSeconds > MAX_JOIN_TOKEN_TTL_SECONDS
      ) {
        throw invalid(
          ConverterErrorCode.ttlInvalid,
          `ttl_seconds must be between 1 and ${MAX_JOIN_TOKEN_TTL_SECONDS}`,
        );
      }
      if (req.token !== "" && !/^[A-Za-z0-9._-]{8,256}$/.test(req.token)) {
        throw invalid(
          ConverterErrorCode.fieldInvalid,
          "token must be 8-256 characters of letters, digits, '.', '_' or '-'",
        );
      }
      const token = await agents.createJoinToken({
        ttlSeconds: req.ttlSeconds,
        ...(req.token === "" ? {} : { token: req.token }),
      });
      return joinTokenToProto(token);
    },
    async listAgents(req, ctx) {
      requireRole(ctx.caller, "admin");
      const page = await agents.list(listAgentsParamsFromProto(req));
      return { agents: page.items.map(agentToProto), nextPageToken: page.nextPageToken };
    },
    async banAgent(req, ctx) {
      requireRole(ctx.caller, "admin");
      const id = spiffeIdFromProto(req.id, "id");
      checkTrustDomain(id, deps.trustDomain, "id");
      return agentToProto(await agents.ban(id));
    },
    async deleteAgent(req, ctx) {
      requireRole(ctx.caller, "admin");
      const id = spiffeIdFromProto(req.id, "id");
      checkTrustDomain(id, deps.trustDomain, "id");
      await agents.delete(id);
      return {};
    },
  };
}
