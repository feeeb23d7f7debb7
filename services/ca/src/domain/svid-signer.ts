// X509-SVID signing for agents (BatchNewX509SVID) and admins (MintX509SVID). Every
// certificate is built from the registration entry (or the admin's explicit request), never
// from the CSR's own subject or extensions; the CSR only contributes its public key, after its
// proof of possession and key type have been checked by the pki issuer.
import { performance } from "node:perf_hooks";
import { MeshidError, isMeshidError } from "@meshid/errors";
import type { EventPayload } from "@meshid/events";
import { type SpiffeId, parseTrustDomain } from "@meshid/spiffe";
import { LogKeys, getMeter, type Logger } from "@meshid/telemetry";
import type { AuthorityManager, EntryManager, IssuedSvid, SvidSigner } from "../api/deps";
import type { Clock, Datastore, EventSink } from "../ports";
import { createRateLimiter, type RateLimiter } from "./rate-limiter";
import type { BatchItemResult, RegistrationEntry } from "./types";

/** Counter of X509-SVIDs the CA signed (attribute `kind`: `batch` or `mint`). */
export const METRIC_SVIDS_SIGNED = "meshid_ca_svids_signed_total";
/** Histogram of BatchNewX509SVID durations, in seconds (signing only, refused calls excluded). */
export const METRIC_SIGN_BATCH_DURATION = "meshid_ca_sign_batch_duration_seconds";

/** Default largest number of items in one BatchNewX509SVID call. */
export const DEFAULT_MAX_SIGN_BATCH_SIZE = 500;

/**
 * The error of an item whose entry is unknown OR not authorised for the calling agent. Both
 * cases get the same code, kind and message (as SPIRE answers NotFound), so an agent cannot
 * learn whether another agent's entry exists.
 */
export const ENTRY_NOT_FOUND_CODE = "ca.entry.not_found";

/** Limits of {@link createSvidSigner}. */
export interface SvidSignerLimits {
  /** Largest batch; a larger call is refused whole (`ca.batch.too_large`). Default 500. */
  readonly maxBatchSize?: number;
  /**
   * Per-agent token bucket counting signed items: `perSecond` refill, `burst` bucket size.
   * Over the limit the whole call is refused (`ca.rate_limited`). Default: no limit.
   */
  readonly signRatePerAgent?: { readonly perSecond: number; readonly burst: number };
}

/** Dependencies of {@link createSvidSigner}. */
export interface SvidSignerDeps {
  /** The CA's trust domain name, e.g. `example.org`. */
  readonly trustDomain: string;
  readonly store: Pick<Datastore, "getEntry">;
  readonly entries: Pick<EntryManager, "isAuthorized">;
  readonly authority: Pick<AuthorityManager, "activeSigner" | "settings">;
  readonly events: EventSink;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly limits?: SvidSignerLimits;
}

type BatchItem = Parameters<SvidSigner["batchNewX509Svid"]>[1][number];
type BatchResult = BatchItemResult<IssuedSvid & { readonly entryId: string }>;

function entryNotFound(entryId: string): MeshidError {
  return new MeshidError(
    "not_found",
    ENTRY_NOT_FOUND_CODE,
    `entry ${JSON.stringify(entryId)} not found or not authorised for this agent`,
  );
}

/** Keeps MeshidErrors (pki.csr.*, pki.key.*, pki.svid.*); hides anything else behind internal. */
function asItemError(err: unknown): MeshidError {
  if (isMeshidError(err)) return err;
  return new MeshidError("internal", "ca.svid.sign_failed", "signing the SVID failed", {
    cause: err,
  });
}

/**
 * Creates the CA's {@link SvidSigner}.
 *
 * `batchNewX509Svid` refuses the whole call with `ca.batch.too_large` or `ca.rate_limited`
 * (resource_exhausted) when the batch is larger than `limits.maxBatchSize` (default 500) or
 * the agent is over `limits.signRatePerAgent`; otherwise each item gets an SVID or its own
 * error: `ca.entry.not_found` (not_found, also for another agent's entry), `pki.csr.malformed`,
 * `pki.csr.signature`, `pki.key.unsupported` (invalid_argument). The SVID's SPIFFE ID and DNS
 * names come from the entry; its TTL is the entry's, or the mesh svidTTL when 0, capped at the
 * authority's notAfter. One `svid.issued` event per SVID is published without waiting (a
 * failed publish is logged).
 *
 * `mintX509Svid` signs for an explicit SPIFFE ID of the trust domain (not the trust-domain ID
 * itself: `ca.svid.spiffe_id_invalid`, invalid_argument); a negative TTL is
 * `ca.svid.ttl_invalid`. It publishes no event (there is no entry or agent to name).
 */
export function createSvidSigner(deps: SvidSignerDeps): SvidSigner {
  const { store, entries, authority, events, clock } = deps;
  const trustDomain = parseTrustDomain(deps.trustDomain);
  const logger = deps.logger.child({ [LogKeys.component]: "svid-signer" });
  const maxBatchSize = deps.limits?.maxBatchSize ?? DEFAULT_MAX_SIGN_BATCH_SIZE;
  const rate = deps.limits?.signRatePerAgent;
  const limiter: RateLimiter | undefined =
    rate === undefined ? undefined : createRateLimiter({ clock, ...rate });

  const meter = getMeter("@meshid/ca");
  const signedCounter = meter.createCounter(METRIC_SVIDS_SIGNED, {
    description: "X509-SVIDs signed by the CA",
  });
  const batchDuration = meter.createHistogram(METRIC_SIGN_BATCH_DURATION, {
    description: "Duration of BatchNewX509SVID calls",
    unit: "s",
  });

  function publishIssued(payload: EventPayload<"svid.issued">): void {
    events.publish("svid.issued", payload, { subject: payload.entryId }).catch((err: unknown) => {
      logger.warn(
        {
          [LogKeys.err]: err,
          [LogKeys.entryId]: payload.entryId,
          [LogKeys.subject]: "svid.issued",
        },
        "publishing svid.issued failed",
      );
    });
  }

  async function authorizedEntry(
    agentId: SpiffeId,
    entryId: string,
  ): Promise<RegistrationEntry | MeshidError> {
    const entry = await store.getEntry(entryId);
    if (entry === undefined) return entryNotFound(entryId);
    if (!(await entries.isAuthorized(agentId, entry))) return entryNotFound(entryId);
    return entry;
  }

  return {
    async batchNewX509Svid(agentId, params) {
      if (params.length > maxBatchSize) {
        throw new MeshidError(
          "resource_exhausted",
          "ca.batch.too_large",
          `batch of ${params.length} SVID requests is larger than the limit of ${maxBatchSize}`,
          { details: { limit: maxBatchSize, size: params.length } },
        );
      }
      if (limiter !== undefined && !limiter.tryTake(agentId.toString(), params.length)) {
        throw new MeshidError(
          "resource_exhausted",
          "ca.rate_limited",
          "the agent is over its SVID signing rate limit; retry later",
        );
      }
      const started = performance.now();
      // Look every entry up first (concurrently), then sign with one signer and one `now`.
      const lookups = await Promise.all(
        params.map((item: BatchItem) => authorizedEntry(agentId, item.entryId)),
      );
      const signer = authority.activeSigner();
      const svidTtlSeconds = authority.settings().svidTtlSeconds;
      const now = clock.now();
      const agent = agentId.toString();
      const results: BatchResult[] = params.map((item, i) => {
        const entry = lookups[i] as RegistrationEntry | MeshidError;
        if (entry instanceof MeshidError) return { ok: false, error: entry };
        try {
          const issued = signer.issuer.issueFromCsr(item.csrDer, {
            spiffeId: entry.spiffeId.toString(),
            dnsNames: entry.dnsNames,
            ttlSeconds: entry.x509SvidTtlSeconds || svidTtlSeconds,
            now,
          });
          return {
            ok: true,
            value: {
              entryId: entry.id,
              spiffeId: entry.spiffeId,
              certChainDer: [issued.certDer, ...signer.chainDer],
              serialHex: issued.serialHex,
              expiresAt: issued.notAfter,
              hint: entry.hint,
            },
          };
        } catch (err) {
          return { ok: false, error: asItemError(err) };
        }
      });
      let signed = 0;
      for (const r of results) {
        if (!r.ok) continue;
        signed++;
        publishIssued({
          entryId: r.value.entryId,
          spiffeId: { trustDomain: r.value.spiffeId.trustDomain.name, path: r.value.spiffeId.path },
          serial: r.value.serialHex,
          expiresAt: r.value.expiresAt,
          agentId: agent,
        });
      }
      if (signed > 0) signedCounter.add(signed, { kind: "batch" });
      batchDuration.record((performance.now() - started) / 1000);
      logger.debug(
        { [LogKeys.agentId]: agent, requested: params.length, signed },
        "signed X509-SVID batch",
      );
      return results;
    },

    mintX509Svid(params) {
      const { spiffeId } = params;
      if (!spiffeId.memberOf(trustDomain) || spiffeId.isTrustDomainId()) {
        return Promise.reject(
          new MeshidError(
            "invalid_argument",
            "ca.svid.spiffe_id_invalid",
            `SPIFFE ID ${JSON.stringify(spiffeId.toString())} must be a workload ID in trust domain ${JSON.stringify(trustDomain.name)}`,
          ),
        );
      }
      if (!Number.isInteger(params.ttlSeconds) || params.ttlSeconds < 0) {
        return Promise.reject(
          new MeshidError(
            "invalid_argument",
            "ca.svid.ttl_invalid",
            "ttlSeconds must be a non-negative integer (0 = the mesh svidTTL)",
          ),
        );
      }
      try {
        const signer = authority.activeSigner();
        const issued = signer.issuer.issueFromCsr(params.csrDer, {
          spiffeId: spiffeId.toString(),
          dnsNames: params.dnsNames,
          ttlSeconds: params.ttlSeconds || authority.settings().svidTtlSeconds,
          now: clock.now(),
        });
        signedCounter.add(1, { kind: "mint" });
        logger.info(
          { [LogKeys.spiffeId]: spiffeId.toString(), [LogKeys.serialNumber]: issued.serialHex },
          "minted X509-SVID",
        );
        return Promise.resolve({
          spiffeId,
          certChainDer: [issued.certDer, ...signer.chainDer],
          serialHex: issued.serialHex,
          expiresAt: issued.notAfter,
          hint: "",
        });
      } catch (err) {
        return Promise.reject(asItemError(err));
      }
    },
  };
}
