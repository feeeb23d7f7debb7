import { meshidEventsV1 } from "@meshid/proto";
import { AGENT_WAKEUP_SUBJECT_PREFIX, EVENT_SUBJECT_PREFIX } from "./subjects";

/** Converts one event payload to and from protobuf JSON (the ts-proto message functions). */
export interface EventCodec<T> {
  /** Protobuf JSON of the message (lowerCamelCase names, defaults omitted). */
  toJSON(message: T): unknown;
  /** Parses protobuf JSON (lenient: unknown fields are ignored). */
  fromJSON(object: unknown): T;
}

/** One kind of meshid event: where it goes, how it is typed and what it means. */
export interface EventDefinition<T> {
  /** Catalog key, `<kind>.<action>` (e.g. `entry.created`). */
  readonly type: string;
  /** NATS subject, `meshid.v1.<kind>.<action>`; for per-agent events the subject prefix. */
  readonly subject: string;
  /** CloudEvents `type`, `io.meshid.<kind>.<action>.v1`. */
  readonly ceType: string;
  /** Fully qualified protobuf message of the payload. */
  readonly messageName: string;
  /** Protobuf JSON codec of the payload. */
  readonly codec: EventCodec<T>;
  /** True when the event goes to a per-agent subject (see agentWakeupSubject). */
  readonly perAgent: boolean;
  /** Who sends it and when (used in docs/events.md). */
  readonly description: string;
}

/** Builds a catalog record; the subject and ce-type follow from the key. */
function defineEvent<T>(
  type: `${string}.${string}`,
  message: string,
  codec: EventCodec<T>,
  description: string,
  perAgent = false,
): EventDefinition<T> {
  return Object.freeze({
    type,
    subject: perAgent ? AGENT_WAKEUP_SUBJECT_PREFIX : `${EVENT_SUBJECT_PREFIX}.${type}`,
    ceType: `io.meshid.${type}.v1`,
    messageName: `meshid.events.v1.${message}`,
    codec,
    perAgent,
    description,
  });
}

const e = meshidEventsV1;

/**
 * Every meshid event, keyed by `<kind>.<action>`: subject, CloudEvents type and payload codec.
 * Publishing and subscribing are typed by these keys. docs/events.md is generated from it.
 */
export const EVENT_CATALOG = Object.freeze({
  "entry.created": defineEvent(
    "entry.created",
    "EntryCreated",
    e.EntryCreated,
    "The CA stored a new registration entry (EntryService create, usually asked by the registrar).",
  ),
  "entry.updated": defineEvent(
    "entry.updated",
    "EntryUpdated",
    e.EntryUpdated,
    "The CA changed a registration entry (selectors, DNS names, TTL, parent…).",
  ),
  "entry.deleted": defineEvent(
    "entry.deleted",
    "EntryDeleted",
    e.EntryDeleted,
    "The CA deleted a registration entry; agents drop the SVIDs minted for it.",
  ),
  "svid.issued": defineEvent(
    "svid.issued",
    "SvidIssued",
    e.SvidIssued,
    "The CA signed an X509-SVID for an entry on behalf of an agent (one event per certificate).",
  ),
  "svid.rotated": defineEvent(
    "svid.rotated",
    "SvidRotated",
    e.SvidRotated,
    "An agent replaced a workload SVID in its cache (rotation at half life or after a taint).",
  ),
  "bundle.updated": defineEvent(
    "bundle.updated",
    "BundleUpdated",
    e.BundleUpdated,
    "The CA changed the trust bundle (authority prepared, tainted or revoked); wakes the bundle-notifier and agents.",
  ),
  "bundle.published": defineEvent(
    "bundle.published",
    "BundlePublished",
    e.BundlePublished,
    "The bundle-notifier wrote a bundle to a target (ConfigMap, webhook caBundle, file).",
  ),
  "authority.prepared": defineEvent(
    "authority.prepared",
    "AuthorityPrepared",
    e.AuthorityPrepared,
    "The CA prepared a new X.509 signing authority (added to the bundle, not yet signing).",
  ),
  "authority.activated": defineEvent(
    "authority.activated",
    "AuthorityActivated",
    e.AuthorityActivated,
    "A prepared authority became the active signer.",
  ),
  "authority.tainted": defineEvent(
    "authority.tainted",
    "AuthorityTainted",
    e.AuthorityTainted,
    "An old authority was tainted (forced rotation): everything it signed must be re-minted.",
  ),
  "authority.revoked": defineEvent(
    "authority.revoked",
    "AuthorityRevoked",
    e.AuthorityRevoked,
    "A tainted authority was removed from the bundle.",
  ),
  "agent.attested": defineEvent(
    "agent.attested",
    "AgentAttested",
    e.AgentAttested,
    "A node agent attested (or re-attested) to the CA. The token it used is never included.",
  ),
  "agent.banned": defineEvent(
    "agent.banned",
    "AgentBanned",
    e.AgentBanned,
    "An operator banned an agent; the CA refuses its renewals from now on.",
  ),
  "agent.deleted": defineEvent(
    "agent.deleted",
    "AgentDeleted",
    e.AgentDeleted,
    "An operator deleted an agent; it must attest again (a banned agent is unbanned this way).",
  ),
  "pod.registered": defineEvent(
    "pod.registered",
    "PodRegistered",
    e.PodRegistered,
    "The registrar created or updated the entry of a meshed pod.",
  ),
  "pod.deregistered": defineEvent(
    "pod.deregistered",
    "PodDeregistered",
    e.PodDeregistered,
    "The registrar deleted the entry of a deleted pod.",
  ),
  "config.updated": defineEvent(
    "config.updated",
    "ConfigUpdated",
    e.ConfigUpdated,
    "proxy-config accepted a MeshConfig change; the CA applies svidTTL at once and caTTL/caKeyType at the next authority (or at once with rotateNow).",
  ),
  "agent.wakeup": defineEvent(
    "agent.wakeup",
    "AgentWakeup",
    e.AgentWakeup,
    "The CA tells one agent that entries for its node changed; the agent asks for the delta since its last revision. Sent only on that agent's subject.",
    true,
  ),
});

/** Catalog key of a meshid event (`entry.created`, `agent.wakeup`, …). */
export type EventType = keyof typeof EVENT_CATALOG;

/** Payload message type of the event `K`. */
export type EventPayload<K extends EventType> =
  (typeof EVENT_CATALOG)[K] extends EventDefinition<infer T> ? T : never;

/** Every catalog key, in catalog order. */
export const EVENT_TYPES: readonly EventType[] = Object.freeze(
  Object.keys(EVENT_CATALOG) as EventType[],
);

/** True when `value` is a catalog key. */
export function isEventType(value: string): value is EventType {
  return Object.prototype.hasOwnProperty.call(EVENT_CATALOG, value);
}

/** Finds the catalog key of a CloudEvents type, or undefined for types meshid does not know. */
export function eventTypeFromCeType(ceType: string): EventType | undefined {
  return CE_TYPE_INDEX.get(ceType);
}

const CE_TYPE_INDEX = new Map<string, EventType>(
  EVENT_TYPES.map((type) => [EVENT_CATALOG[type].ceType, type]),
);
