// The agent's gRPC client of the CA: entries, SVID signing and the bundle over mTLS with the
// agent SVID (CaClient), and node attestation / renewal (AgentAttestationClient).
import { Buffer } from "node:buffer";
import type { Channel } from "@grpc/grpc-js";
import { MeshidError } from "@meshid/errors";
import {
  createGrpcChannel,
  createGrpcClient,
  createStaticBundleSource,
  createStaticSvidSource,
  isAbortError,
  meshidErrorFromClientError,
  type SvidSource,
} from "@meshid/grpc-kit";
import { readCertificateInfo } from "@meshid/pki";
import { meshidCaV1, type meshidTypesV1 } from "@meshid/proto";
import { parseSpiffeId, type SpiffeId } from "@meshid/spiffe";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { Metadata } from "nice-grpc-common";
import { emptyList, internSelectors, internString, joinFlat } from "../domain/intern";
import type { AgentBundle, AgentEntry } from "../domain/types";
import type {
  AgentAttestationClient,
  AttestAgentResult,
  CaClient,
  EntrySyncPage,
  SignedAgentSvid,
  SignedSvidResult,
} from "../ports";

/** Default deadline of unary calls to the CA, in milliseconds (streams have none). */
export const DEFAULT_CA_CALL_DEADLINE_MS = 30_000;

/** Error codes of the CA client's conversions. */
export const GrpcCaClientErrorCode = {
  response: "agent.ca_client.bad_response",
} as const;

/** The proto `bytes` type is Buffer; wraps without copying. */
function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function badResponse(message: string): MeshidError {
  return new MeshidError("internal", GrpcCaClientErrorCode.response, message);
}

/** Formats a proto SPIFFE ID as `spiffe://<td><path>` (one flat string, not a rope). */
export function spiffeIdStringFromProto(id: meshidTypesV1.SpiffeId | undefined): string {
  if (id === undefined || id.trustDomain === "") return "";
  return joinFlat("spiffe://", id.trustDomain, id.path);
}

/**
 * Converts a proto registration entry to the agent's {@link AgentEntry}. What entries repeat
 * (the parent ID, selector lists, no DNS names) is shared between them: see `domain/intern`.
 */
export function agentEntryFromProto(e: meshidTypesV1.RegistrationEntry): AgentEntry {
  return {
    id: e.id,
    spiffeId: spiffeIdStringFromProto(e.spiffeId),
    parentId: internString(spiffeIdStringFromProto(e.parentId)),
    selectors: internSelectors(e.selectors),
    dnsNames: e.dnsNames.length === 0 ? emptyList() : [...e.dnsNames],
    x509SvidTtlSeconds: e.x509SvidTtlSeconds,
    hint: e.hint,
    revision: e.revision,
  };
}

/**
 * Converts a proto bundle to an {@link AgentBundle}; tainted authorities become their SKIs
 * (lowercase hex) in `taintedAuthorityIds`.
 */
export function agentBundleFromProto(b: meshidTypesV1.Bundle | undefined): AgentBundle {
  if (b === undefined) throw badResponse("the CA sent no bundle");
  const tainted: string[] = [];
  for (const a of b.x509Authorities) {
    if (a.tainted)
      tainted.push(Buffer.from(readCertificateInfo(a.asn1).subjectKeyId).toString("hex"));
  }
  return {
    trustDomain: b.trustDomain,
    x509AuthoritiesDer: b.x509Authorities.map((a) => a.asn1),
    taintedAuthorityIds: tainted,
    sequenceNumber: b.sequenceNumber,
  };
}

function signedAgentSvidFromProto(svid: meshidTypesV1.X509Svid | undefined): SignedAgentSvid {
  if (svid === undefined || svid.certChain.length === 0) {
    throw badResponse("the CA sent no agent SVID");
  }
  return {
    certChainDer: svid.certChain,
    serialHex: svid.serial,
    expiresAt: svid.expiresAt ?? new Date(0),
  };
}

/** Per-item result of BatchNewX509SVID as a {@link SignedSvidResult}. */
export function signedSvidResultFromProto(
  r: meshidCaV1.X509SvidResult,
  requestedEntryId: string,
): SignedSvidResult {
  const entryId = r.entryId === "" ? requestedEntryId : r.entryId;
  const code = r.status?.code ?? 0;
  if (code !== 0 || r.svid === undefined) {
    return {
      ok: false,
      entryId,
      code: r.status?.errorCode || `grpc.status_${code}`,
      message: r.status?.message ?? "no SVID in the result",
    };
  }
  return {
    ok: true,
    entryId,
    certChainDer: r.svid.certChain,
    serialHex: r.svid.serial,
    expiresAt: r.svid.expiresAt ?? new Date(0),
  };
}

/** Runs a call with a trailer capture and turns failures into MeshidErrors with the CA's code. */
async function callCa<T>(run: (onTrailer: (t: Metadata) => void) => Promise<T>): Promise<T> {
  let trailer: Metadata | undefined;
  try {
    return await run((t) => {
      trailer = t;
    });
  } catch (err) {
    throw meshidErrorFromClientError(err, trailer);
  }
}

function serverMatcher(serverId: string): SpiffeId {
  return parseSpiffeId(serverId);
}

/** Dependencies of {@link createGrpcCaClient}. */
export interface GrpcCaClientDeps {
  /** The CA, `host:port`. */
  readonly address: string;
  /** SPIFFE ID the CA must present. */
  readonly serverId: string;
  /** The agent's own SVID and bundle (rotating), for mTLS. */
  readonly svidSource: SvidSource;
  readonly logger: Logger;
  /** Deadline of unary calls, in milliseconds. Default {@link DEFAULT_CA_CALL_DEADLINE_MS}. */
  readonly deadlineMs?: number;
}

/** The {@link CaClient} over gRPC, with `close()` for its channel. */
export interface GrpcCaClient extends CaClient {
  /** Closes the channel; calls in flight fail. */
  close(): void;
}

/**
 * Creates the {@link CaClient} over one long-lived mTLS channel that follows `svidSource`
 * (new connections use the latest SVID and bundle). Unary calls get a deadline; streams none.
 * Failures are MeshidErrors carrying the CA's error code (`meshid-error-code` trailer).
 */
export function createGrpcCaClient(deps: GrpcCaClientDeps): GrpcCaClient {
  const channel = createGrpcChannel({
    target: deps.address,
    tls: { source: deps.svidSource, serverId: serverMatcher(deps.serverId) },
  });
  const deadlineMs = deps.deadlineMs ?? DEFAULT_CA_CALL_DEADLINE_MS;
  const entries = createGrpcClient(meshidCaV1.EntryServiceDefinition, channel);
  const svids = createGrpcClient(meshidCaV1.SvidServiceDefinition, channel, { deadlineMs });
  const bundles = createGrpcClient(meshidCaV1.BundleServiceDefinition, channel);
  const logger = deps.logger.child({ component: "ca-client" });

  return {
    async *syncAuthorizedEntries(sinceRevision, signal, options) {
      let trailer: Metadata | undefined;
      try {
        const stream = entries.syncAuthorizedEntries(
          { sinceRevision, omitUnchangedIds: options?.omitUnchangedIds === true },
          {
            ...(signal === undefined ? {} : { signal }),
            onTrailer: (t) => {
              trailer = t;
            },
          },
        );
        for await (const page of stream) {
          const out: EntrySyncPage = {
            entries: page.entries.map(agentEntryFromProto),
            done: page.done,
            revision: page.revision,
            authorizedEntryIds: page.authorizedEntryIds,
            authorizedIdsOmitted: page.authorizedIdsOmitted,
          };
          yield out;
        }
      } catch (err) {
        throw meshidErrorFromClientError(err, trailer);
      }
    },

    async batchNewX509Svid(items, signal) {
      if (items.length === 0) return [];
      const res = await callCa((onTrailer) =>
        svids.batchNewX509SVID(
          { params: items.map((i) => ({ entryId: i.entryId, csr: toBuffer(i.csrDer) })) },
          { ...(signal === undefined ? {} : { signal }), onTrailer },
        ),
      );
      if (res.results.length !== items.length) {
        throw badResponse(`the CA answered ${res.results.length} results for ${items.length} CSRs`);
      }
      return res.results.map((r, i) => signedSvidResultFromProto(r, items[i]?.entryId ?? ""));
    },

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
        for await (const msg of stream) {
          const bundle = agentBundleFromProto(msg.bundle);
          logger.debug({ sequenceNumber: bundle.sequenceNumber }, "bundle received from the CA");
          yield bundle;
        }
      } catch (err) {
        if (signal.aborted && isAbortError(err)) return;
        throw meshidErrorFromClientError(err, trailer);
      }
    },

    close() {
      channel.close();
    },
  };
}

/** Dependencies of {@link createGrpcAgentAttestationClient}. */
export interface GrpcAgentAttestationClientDeps {
  /** The CA, `host:port`. */
  readonly address: string;
  /** SPIFFE ID the CA must present. */
  readonly serverId: string;
  readonly logger: Logger;
  /** Deadline of each call, in milliseconds. Default {@link DEFAULT_CA_CALL_DEADLINE_MS}. */
  readonly deadlineMs?: number;
}

/**
 * Creates the {@link AgentAttestationClient}: AttestAgent over server-authenticated TLS
 * (trusting `bundlePem`, checking the CA's SPIFFE ID, no client certificate) and RenewAgent
 * over mTLS with the given SVID. Each call opens its own channel and closes it afterwards:
 * both are rare, and a fresh channel never reuses a connection made with older material.
 */
export function createGrpcAgentAttestationClient(
  deps: GrpcAgentAttestationClientDeps,
): AgentAttestationClient {
  const deadlineMs = deps.deadlineMs ?? DEFAULT_CA_CALL_DEADLINE_MS;
  const serverId = serverMatcher(deps.serverId);
  const logger = deps.logger.child({ component: "ca-attestation-client" });

  const withChannel = async <T>(channel: Channel, run: (c: Channel) => Promise<T>): Promise<T> => {
    try {
      return await run(channel);
    } finally {
      channel.close();
    }
  };

  return {
    async attest(params, signal): Promise<AttestAgentResult> {
      const channel = createGrpcChannel({
        target: deps.address,
        tls: {
          bundleSource: createStaticBundleSource({ bundlePem: params.bundlePem }),
          serverId,
        },
      });
      logger.debug(
        { [LogKeys.address]: deps.address, attestationType: params.attestationType },
        "attesting the node",
      );
      return withChannel(channel, async (c) => {
        const client = createGrpcClient(meshidCaV1.AgentServiceDefinition, c, { deadlineMs });
        const res = await callCa((onTrailer) =>
          client.attestAgent(
            {
              attestationType: params.attestationType,
              token: params.token,
              cluster: params.cluster,
              csr: toBuffer(params.csrDer),
            },
            { ...(signal === undefined ? {} : { signal }), onTrailer },
          ),
        );
        return {
          svid: signedAgentSvidFromProto(res.svid),
          bundle: agentBundleFromProto(res.bundle),
        };
      });
    },

    async renew(params, signal): Promise<SignedAgentSvid> {
      const channel = createGrpcChannel({
        target: deps.address,
        tls: { source: createStaticSvidSource(params.tls), serverId },
      });
      return withChannel(channel, async (c) => {
        const client = createGrpcClient(meshidCaV1.AgentServiceDefinition, c, { deadlineMs });
        const res = await callCa((onTrailer) =>
          client.renewAgent(
            { csr: toBuffer(params.csrDer) },
            { ...(signal === undefined ? {} : { signal }), onTrailer },
          ),
        );
        return signedAgentSvidFromProto(res.svid);
      });
    },
  };
}
