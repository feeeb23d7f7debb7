import { createHash } from "node:crypto";

/** Prefix of every meshid event subject: `meshid.v1.<kind>.<action>`. */
export const EVENT_SUBJECT_PREFIX = "meshid.v1";

/** Wildcard matching every meshid event subject (`meshid.v1.>`). */
export const ALL_EVENTS_SUBJECT = `${EVENT_SUBJECT_PREFIX}.>`;

/** Prefix of the per-agent wake-up subjects; the last token is a hash of the agent ID. */
export const AGENT_WAKEUP_SUBJECT_PREFIX = `${EVENT_SUBJECT_PREFIX}.agent.wakeup`;

/** Wildcard matching every agent's wake-up subject (for audit tools, never for agents). */
export const ALL_AGENT_WAKEUPS_SUBJECT = `${AGENT_WAKEUP_SUBJECT_PREFIX}.*`;

/** Length of the agent-ID hash token in wake-up subjects (hex characters = 128 bits). */
const AGENT_TOKEN_HEX_CHARS = 32;

/**
 * Returns the NATS subject on which one agent is woken up:
 * `meshid.v1.agent.wakeup.<first 32 lowercase hex chars of sha256(agentId)>`.
 * Agent IDs (`spiffe://td/spire/agent/...`) contain "/" and "." which NATS subjects cannot
 * carry as one token, so the ID is hashed; distinct agents get distinct subjects, and an agent
 * subscribed to its own subject hears no other node's wake-ups.
 */
export function agentWakeupSubject(agentId: string): string {
  const token = createHash("sha256")
    .update(agentId, "utf8")
    .digest("hex")
    .slice(0, AGENT_TOKEN_HEX_CHARS);
  return `${AGENT_WAKEUP_SUBJECT_PREFIX}.${token}`;
}

/** True when `subject` is a well-formed per-agent wake-up subject. */
export function isAgentWakeupSubject(subject: string): boolean {
  const prefix = `${AGENT_WAKEUP_SUBJECT_PREFIX}.`;
  return (
    subject.startsWith(prefix) &&
    /^[0-9a-f]+$/.test(subject.slice(prefix.length)) &&
    subject.length === prefix.length + AGENT_TOKEN_HEX_CHARS
  );
}
