// Node attestation (join_token, k8s_psat) and the lifecycle of attested agents: renewal,
// join tokens, listing, ban and delete, and the per-call agent check of the API layer.
import { randomBytes } from "node:crypto";
import { MeshidError, isMeshidError } from "@meshid/errors";
import type { EventPayload, EventType } from "@meshid/events";
import { verifyCsr } from "@meshid/pki";
import { parseTrustDomain, type Selector, type SpiffeId } from "@meshid/spiffe";
import { LogKeys, type Logger } from "@meshid/telemetry";
import type { AgentManager, AuthorityManager, IssuedSvid } from "../api/deps";
import type { Clock, Datastore, EventSink, TokenReviewer } from "../ports";
import {
  isJoinTokenShape,
  isServiceAccountAllowed,
  joinTokenAgentId,
  psatAgentId,
  psatSelectors,
} from "./node-attestation";
import type { AttestationType, AttestedAgent, JoinToken } from "./types";

/** Default lifetime of agent SVIDs: 1 hour. */
export const DEFAULT_AGENT_SVID_TTL_SECONDS = 3_600;
/** Default longest join-token lifetime: 24 hours. */
export const DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS = 24 * 3_600;

/** k8s_psat settings of one cluster. */
export interface PsatClusterConfig {
  /** Validates the cluster's projected service-account tokens (TokenReview). */
  readonly reviewer: TokenReviewer;
  /** Audience the agents' tokens must carry, e.g. `meshid-ca`. */
  readonly audience: string;
  /** Service accounts allowed to attest, written `namespace:serviceaccount`. */
  readonly allowedServiceAccounts: readonly string[];
}

/** Dependencies of {@link createAgentManager}. */
export interface AgentManagerDeps {
  /** The CA's trust domain name, e.g. `example.org`. */
  readonly trustDomain: string;
  readonly store: Datastore;
  readonly authority: Pick<AuthorityManager, "activeSigner" | "bundle">;
  /** k8s_psat clusters by name; empty = k8s_psat refused (`ca.attestation.unknown_cluster`). */
  readonly tokenReviewers: ReadonlyMap<string, PsatClusterConfig>;
  readonly events: EventSink;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Lifetime of agent SVIDs (capped at the authority's notAfter). Default 1 h. */
  readonly agentSvidTtlSeconds?: number;
  /** Longest join-token TTL accepted by createJoinToken. Default 24 h. */
  readonly joinTokenMaxTtlSeconds?: number;
}

/** What an attestor proved: the agent's ID and node selectors (plus the node name, if any). */
interface AttestedNode {
  readonly agentId: SpiffeId;
  readonly selectors: readonly Selector[];
  readonly nodeName: string;
  /** The stored agent of the same ID (re-attestation), if any. */
  readonly existing: AttestedAgent | undefined;
}

function denied(code: string, message: string, cause?: unknown): MeshidError {
  return new MeshidError("permission_denied", code, message, cause === undefined ? {} : { cause });
}

/** Serial hex without leading zeros, lowercase: one spelling per serial number. */
function canonicalSerial(serialHex: string): string {
  return serialHex.toLowerCase().replace(/^0+/, "");
}

/**
 * Creates the CA's {@link AgentManager}.
 *
 * `attest` checks the CSR's proof of possession first (so bad input changes nothing), then:
 * - `join_token`: the token is consumed (single use); unknown, used or expired tokens are
 *   `ca.attestation.join_token_invalid` (permission_denied). Agent ID
 *   `spiffe://<td>/meshid/agent/join_token/<token>`.
 * - `k8s_psat`: the cluster must be configured (`ca.attestation.unknown_cluster`,
 *   permission_denied); the token is reviewed for the cluster's audience
 *   (`ca.attestation.psat_invalid`); `<ns>:<sa>` must be allowed
 *   (`ca.attestation.service_account_not_allowed`); the node UID comes from the review or the
 *   Node object. Agent ID `spiffe://<td>/meshid/agent/k8s_psat/<cluster>/<node-uid>`.
 * - anything else: `ca.attestation.unknown_type` (invalid_argument).
 * A banned agent of the same ID is refused (`ca.agent.banned`, permission_denied) before its
 * join token is consumed. The agent SVID (no DNS names, `agentSvidTtlSeconds`) is signed by
 * the active authority, the agent is stored, and `agent.attested` is published.
 *
 * `renew` refuses unknown (`ca.agent.not_found`) and banned agents (both permission_denied)
 * and keeps the replaced serial as `previousX509SvidSerial`; `checkAgent` accepts the
 * current and that previous serial. `ban` and `delete` throw `ca.agent.not_found`
 * (not_found) for an unknown agent and publish `agent.banned` / `agent.deleted`.
 * Events are published without waiting; a failed publish is logged.
 */
export function createAgentManager(deps: AgentManagerDeps): AgentManager {
  const { store, authority, events, clock, tokenReviewers } = deps;
  const trustDomain = parseTrustDomain(deps.trustDomain).name;
  const logger = deps.logger.child({ [LogKeys.component]: "agent-manager" });
  const agentSvidTtlSeconds = deps.agentSvidTtlSeconds ?? DEFAULT_AGENT_SVID_TTL_SECONDS;
  const joinTokenMaxTtlSeconds = deps.joinTokenMaxTtlSeconds ?? DEFAULT_JOIN_TOKEN_MAX_TTL_SECONDS;

  function publish<K extends EventType>(type: K, payload: EventPayload<K>, subject: string): void {
    events.publish(type, payload, { subject }).catch((err: unknown) => {
      logger.warn(
        { [LogKeys.err]: err, [LogKeys.agentId]: subject, [LogKeys.subject]: type },
        "publishing an agent event failed",
      );
    });
  }

  function signAgentSvid(agentId: SpiffeId, csrDer: Uint8Array): IssuedSvid {
    const signer = authority.activeSigner();
    const issued = signer.issuer.issueFromCsr(csrDer, {
      spiffeId: agentId.toString(),
      ttlSeconds: agentSvidTtlSeconds,
      now: clock.now(),
    });
    return {
      spiffeId: agentId,
      certChainDer: [issued.certDer, ...signer.chainDer],
      serialHex: issued.serialHex,
      expiresAt: issued.notAfter,
      hint: "",
    };
  }

  async function refuseBanned(agentId: SpiffeId): Promise<AttestedAgent | undefined> {
    const existing = await store.getAgent(agentId.toString());
    if (existing?.banned === true) {
      throw denied("ca.agent.banned", `agent ${agentId.toString()} is banned`);
    }
    return existing;
  }

  async function attestJoinToken(token: string): Promise<AttestedNode> {
    const agentId = joinTokenAgentId(trustDomain, token);
    // Checked before consuming: a banned agent's re-issued token stays unused.
    const existing = await refuseBanned(agentId);
    const outcome = await store.consumeJoinToken(token, clock.now());
    if (outcome !== "consumed") {
      throw denied("ca.attestation.join_token_invalid", "join token is not valid");
    }
    return { agentId, selectors: [], nodeName: "", existing };
  }

  async function attestPsat(token: string, cluster: string): Promise<AttestedNode> {
    const config = tokenReviewers.get(cluster);
    if (config === undefined) {
      throw denied(
        "ca.attestation.unknown_cluster",
        `cluster ${JSON.stringify(cluster)} is not configured for k8s_psat attestation`,
      );
    }
    if (token === "") throw denied("ca.attestation.psat_invalid", "no service account token");
    const review = await config.reviewer.reviewToken(token, [config.audience]);
    if (
      !isServiceAccountAllowed(
        config.allowedServiceAccounts,
        review.namespace,
        review.serviceAccount,
      )
    ) {
      throw denied(
        "ca.attestation.service_account_not_allowed",
        `service account ${review.namespace}:${review.serviceAccount} may not attest nodes of cluster ${JSON.stringify(cluster)}`,
      );
    }
    if (review.nodeName === "") {
      throw denied(
        "ca.attestation.psat_invalid",
        "the service account token is not bound to a pod on a node",
      );
    }
    const nodeUid = review.nodeUid || (await config.reviewer.getNodeUid(review.nodeName));
    const agentId = psatAgentId(trustDomain, cluster, nodeUid);
    let selectors: Selector[];
    try {
      selectors = psatSelectors({
        cluster,
        namespace: review.namespace,
        serviceAccount: review.serviceAccount,
        nodeName: review.nodeName,
        nodeUid,
      });
    } catch (err) {
      if (!isMeshidError(err)) throw err;
      throw denied("ca.attestation.psat_invalid", "the token review named an invalid node", err);
    }
    const existing = await refuseBanned(agentId);
    return { agentId, selectors, nodeName: review.nodeName, existing };
  }

  async function requireAgent(agentId: SpiffeId, kind: "not_found" | "permission_denied") {
    const agent = await store.getAgent(agentId.toString());
    if (agent === undefined) {
      throw new MeshidError(kind, "ca.agent.not_found", `agent ${agentId.toString()} not found`);
    }
    return agent;
  }

  return {
    async attest(params) {
      const type = params.attestationType;
      if (type !== "join_token" && type !== "k8s_psat") {
        throw new MeshidError(
          "invalid_argument",
          "ca.attestation.unknown_type",
          `unknown attestation type ${JSON.stringify(type)} (expected join_token or k8s_psat)`,
        );
      }
      // Proof of possession and key type first: a bad CSR must not burn a join token.
      verifyCsr(params.csrDer);
      const node =
        type === "join_token"
          ? await attestJoinToken(params.token)
          : await attestPsat(params.token, params.cluster);
      const svid = signAgentSvid(node.agentId, params.csrDer);
      const now = clock.now();
      const agent: AttestedAgent = {
        spiffeId: node.agentId,
        attestationType: type satisfies AttestationType,
        selectors: node.selectors,
        x509SvidSerial: svid.serialHex,
        x509SvidExpiresAt: svid.expiresAt,
        banned: false,
        createdAt: node.existing?.createdAt ?? now,
        updatedAt: now,
      };
      await store.putAgent(agent);
      publish(
        "agent.attested",
        { agentId: node.agentId.toString(), attestationType: type, nodeName: node.nodeName },
        node.agentId.toString(),
      );
      logger.info(
        {
          [LogKeys.agentId]: node.agentId.toString(),
          [LogKeys.serialNumber]: svid.serialHex,
          attestationType: type,
        },
        "agent attested",
      );
      return { agent, svid };
    },

    async renew(agentId, csrDer) {
      const agent = await requireAgent(agentId, "permission_denied");
      if (agent.banned) throw denied("ca.agent.banned", `agent ${agentId.toString()} is banned`);
      const svid = signAgentSvid(agentId, csrDer);
      await store.putAgent({
        ...agent,
        x509SvidSerial: svid.serialHex,
        previousX509SvidSerial: agent.x509SvidSerial,
        x509SvidExpiresAt: svid.expiresAt,
        updatedAt: clock.now(),
      });
      logger.debug(
        { [LogKeys.agentId]: agentId.toString(), [LogKeys.serialNumber]: svid.serialHex },
        "agent SVID renewed",
      );
      return svid;
    },

    async createJoinToken(params) {
      const { ttlSeconds } = params;
      if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > joinTokenMaxTtlSeconds) {
        throw new MeshidError(
          "invalid_argument",
          "ca.join_token.ttl_invalid",
          `join token TTL must be more than 0 and at most ${joinTokenMaxTtlSeconds} seconds`,
        );
      }
      const token = params.token ?? randomBytes(16).toString("hex");
      if (!isJoinTokenShape(token)) {
        throw new MeshidError(
          "invalid_argument",
          "ca.join_token.invalid",
          "a join token is 1-128 characters of A-Z a-z 0-9 . _ - and does not start with a dot",
        );
      }
      const joinToken: JoinToken = {
        token,
        expiresAt: new Date(clock.now().getTime() + ttlSeconds * 1000),
      };
      await store.createJoinToken(joinToken);
      return joinToken;
    },

    list(params) {
      return store.listAgents(params);
    },

    async ban(agentId) {
      const agent = await requireAgent(agentId, "not_found");
      const banned: AttestedAgent = { ...agent, banned: true, updatedAt: clock.now() };
      await store.putAgent(banned);
      publish("agent.banned", { agentId: agentId.toString() }, agentId.toString());
      logger.info({ [LogKeys.agentId]: agentId.toString() }, "agent banned");
      return banned;
    },

    async delete(agentId) {
      if (!(await store.deleteAgent(agentId.toString()))) {
        throw new MeshidError(
          "not_found",
          "ca.agent.not_found",
          `agent ${agentId.toString()} not found`,
        );
      }
      publish("agent.deleted", { agentId: agentId.toString() }, agentId.toString());
      logger.info({ [LogKeys.agentId]: agentId.toString() }, "agent deleted");
    },

    async checkAgent(agentId, serialHex) {
      const agent = await store.getAgent(agentId.toString());
      if (agent === undefined) return "unknown";
      if (agent.banned) return "banned";
      const serial = canonicalSerial(serialHex);
      if (serial === "") return "unknown";
      if (serial === canonicalSerial(agent.x509SvidSerial)) return "ok";
      const previous = agent.previousX509SvidSerial;
      if (previous !== undefined && serial === canonicalSerial(previous)) return "ok";
      return "unknown";
    },
  };
}
