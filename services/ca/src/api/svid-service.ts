// SvidService: batch signing for agents, minting for admins.
import { MeshidError } from "@meshid/errors";
import type { meshidCaV1 } from "@meshid/proto";
import { csrFromProto } from "./agent-service";
import { requireRole, type CaCallContext } from "./authz";
import { applyBatch, checkBatchSize, checkTrustDomain } from "./batch";
import {
  ConverterErrorCode,
  dnsNamesFromProto,
  entryIdFromProto,
  issuedSvidToProto,
  itemStatusFromResult,
  spiffeIdFromProto,
} from "./converters";
import type { SvidSigner } from "./deps";

/** Largest TTL MintX509SVID accepts, in seconds (one year). */
export const MAX_MINT_TTL_SECONDS = 365 * 24 * 3600;

/** Dependencies of {@link createSvidService}. */
export interface SvidServiceDeps {
  readonly trustDomain: string;
  readonly signer: SvidSigner;
  /** Larger batches are refused before any conversion (the signer also enforces its limits). */
  readonly maxBatchSize: number;
}

/** Creates the SvidService implementation. */
export function createSvidService(
  deps: SvidServiceDeps,
): meshidCaV1.SvidServiceImplementation<CaCallContext> {
  return {
    async batchNewX509SVID(req, ctx) {
      const caller = requireRole(ctx.caller, "agent");
      checkBatchSize(req.params.length, deps.maxBatchSize);
      const results = await applyBatch(
        req.params,
        (p) => ({ entryId: entryIdFromProto(p.entryId, "entry_id"), csrDer: csrFromProto(p.csr) }),
        (valid) => deps.signer.batchNewX509Svid(caller.spiffeId, valid),
      );
      return {
        results: results.map((r, i) => ({
          status: itemStatusFromResult(r),
          entryId: req.params[i]?.entryId ?? "",
          ...(r.ok ? { svid: issuedSvidToProto(r.value) } : {}),
        })),
      };
    },
    async mintX509SVID(req, ctx) {
      requireRole(ctx.caller, "admin");
      const spiffeId = spiffeIdFromProto(req.spiffeId, "spiffe_id");
      checkTrustDomain(spiffeId, deps.trustDomain, "spiffe_id");
      if (
        !Number.isInteger(req.ttlSeconds) ||
        req.ttlSeconds < 0 ||
        req.ttlSeconds > MAX_MINT_TTL_SECONDS
      ) {
        throw new MeshidError(
          "invalid_argument",
          ConverterErrorCode.ttlInvalid,
          `ttl_seconds must be between 0 and ${MAX_MINT_TTL_SECONDS}`,
        );
      }
      const svid = await deps.signer.mintX509Svid({
        csrDer: csrFromProto(req.csr),
        spiffeId,
        dnsNames: dnsNamesFromProto(req.dnsNames, "dns_names"),
        ttlSeconds: req.ttlSeconds,
      });
      return { svid: issuedSvidToProto(svid) };
    },
  };
}
