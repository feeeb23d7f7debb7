// Renders docs/events.md from the event catalog and the protobuf descriptors of the event
// payloads, so the documented subjects, CloudEvents types and JSON Schemas never drift from
// the code. Run `npm run docs` in libs/events to rewrite the file; the docs test fails when it
// is stale.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import {
  CE_HEADERS,
  DEFAULT_EVENT_DUPLICATE_WINDOW_SECONDS,
  DEFAULT_EVENT_MAX_AGE_SECONDS,
  DEFAULT_EVENT_MAX_BYTES,
  EVENT_CATALOG,
  EVENT_STREAM_NAME,
  EVENT_TYPES,
  type EventPayload,
  type EventType,
} from "../src/index";

/** Repository root, from libs/events/scripts. */
export const REPO_ROOT = join(__dirname, "../../..");

/** The subset of google.protobuf.FileDescriptorSet (buf's JSON image) the renderer reads. */
export interface DescriptorSet {
  file: FileDescriptor[];
}
interface FileDescriptor {
  name: string;
  package?: string;
  messageType?: MessageDescriptor[];
  enumType?: { name: string; value: { name: string }[] }[];
  sourceCodeInfo?: { location: { path?: number[]; leadingComments?: string }[] };
}
interface MessageDescriptor {
  name: string;
  field?: FieldDescriptor[];
}
interface FieldDescriptor {
  name: string;
  jsonName: string;
  label: string;
  type: string;
  typeName?: string;
}

/** A JSON Schema object (draft 2020-12), as plain data. */
export type JsonSchema = { [key: string]: unknown };

/** Runs `buf build` over /proto and returns the descriptor set with comments. */
export function loadEventDescriptors(): DescriptorSet {
  const buf = require.resolve("@bufbuild/buf/bin/buf");
  const out = execFileSync(
    process.execPath,
    [buf, "build", "proto", "--path", "proto/meshid/events/v1", "-o", "-#format=json"],
    { cwd: REPO_ROOT, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(out) as DescriptorSet;
}

/** Index of messages and enums by fully qualified name (".pkg.Name"), with their comments. */
function indexDescriptors(set: DescriptorSet) {
  const messages = new Map<string, { message: MessageDescriptor; comments: Comments }>();
  const enums = new Map<string, string[]>();
  for (const file of set.file) {
    const comments = new Map<string, string>();
    for (const loc of file.sourceCodeInfo?.location ?? []) {
      if (loc.leadingComments !== undefined && loc.path !== undefined) {
        comments.set(loc.path.join("."), cleanComment(loc.leadingComments));
      }
    }
    const prefix = file.package === undefined ? "" : `.${file.package}`;
    (file.messageType ?? []).forEach((message, i) => {
      messages.set(`${prefix}.${message.name}`, {
        message,
        comments: {
          message: comments.get(`4.${i}`),
          field: (j) => comments.get(`4.${i}.2.${j}`),
        },
      });
    });
    for (const e of file.enumType ?? []) {
      enums.set(
        `${prefix}.${e.name}`,
        e.value.map((v) => v.name),
      );
    }
  }
  return { messages, enums };
}
interface Comments {
  message: string | undefined;
  field(index: number): string | undefined;
}

function cleanComment(text: string): string {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ");
}

/**
 * Returns the JSON Schema of the protobuf JSON that meshid writes for message `fullName`
 * (".meshid.events.v1.EntryCreated"): lowerCamelCase names, every field optional (proto3 JSON
 * omits defaults), Timestamps as RFC 3339 strings, 64-bit integers as JSON numbers.
 */
export function messageJsonSchema(set: DescriptorSet, fullName: string): JsonSchema {
  const index = indexDescriptors(set);
  const build = (name: string, seen: Set<string>): JsonSchema => {
    const entry = index.messages.get(name);
    if (entry === undefined) throw new Error(`no descriptor for ${name}`);
    if (seen.has(name)) throw new Error(`recursive message ${name} is not supported`);
    const inner = new Set(seen).add(name);
    const properties: Record<string, JsonSchema> = {};
    (entry.message.field ?? []).forEach((field, j) => {
      let schema = scalarSchema(field, index.enums) ?? build(field.typeName!, inner);
      if (field.label === "LABEL_REPEATED") schema = { type: "array", items: schema };
      const description = entry.comments.field(j);
      properties[field.jsonName] = description === undefined ? schema : { description, ...schema };
    });
    return {
      type: "object",
      ...(entry.comments.message === undefined ? {} : { description: entry.comments.message }),
      properties,
    };
  };
  return build(fullName, new Set());
}

function scalarSchema(
  field: FieldDescriptor,
  enums: Map<string, string[]>,
): JsonSchema | undefined {
  switch (field.type) {
    case "TYPE_STRING":
      return { type: "string" };
    case "TYPE_BOOL":
      return { type: "boolean" };
    case "TYPE_BYTES":
      return { type: "string", contentEncoding: "base64" };
    case "TYPE_INT32":
    case "TYPE_SINT32":
    case "TYPE_SFIXED32":
    case "TYPE_INT64":
    case "TYPE_SINT64":
    case "TYPE_SFIXED64":
      return { type: "integer" };
    case "TYPE_UINT32":
    case "TYPE_FIXED32":
    case "TYPE_UINT64":
    case "TYPE_FIXED64":
      return { type: "integer", minimum: 0 };
    case "TYPE_DOUBLE":
    case "TYPE_FLOAT":
      return { type: "number" };
    case "TYPE_ENUM":
      return { type: "string", enum: enums.get(field.typeName!) ?? [] };
    case "TYPE_MESSAGE":
      return field.typeName === ".google.protobuf.Timestamp"
        ? { type: "string", format: "date-time" }
        : undefined;
    default:
      throw new Error(`unsupported protobuf type ${field.type} (${field.name})`);
  }
}

/** The JSON Schema document of one event's payload (`data`). */
export function eventJsonSchema(set: DescriptorSet, type: EventType): JsonSchema {
  const def = EVENT_CATALOG[type];
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: `https://meshid.io/schemas/events/v1/${type}.json`,
    title: def.messageName,
    ...messageJsonSchema(set, `.${def.messageName}`),
  };
}

const TD = "example.org";
const spiffe = (path: string) => ({ trustDomain: TD, path });
const AGENT = "spiffe://example.org/spire/agent/k8s_psat/meshid/4f1c2a9e-node-1";
const EXPIRES = new Date("2026-11-22T14:30:00.000Z");
const CA_EXPIRES = new Date("2026-12-22T13:30:00.000Z");

/** One realistic example payload per event (typed, so every catalog entry must have one). */
export const EXAMPLE_PAYLOADS: { [K in EventType]: EventPayload<K> } = {
  "entry.created": {
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    parentId: spiffe("/spire/agent/k8s_psat/meshid/4f1c2a9e-node-1"),
    revision: 1042,
    owner: "registrar",
  },
  "entry.updated": {
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    parentId: spiffe("/spire/agent/k8s_psat/meshid/4f1c2a9e-node-1"),
    revision: 1043,
    owner: "registrar",
  },
  "entry.deleted": {
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    parentId: spiffe("/spire/agent/k8s_psat/meshid/4f1c2a9e-node-1"),
    revision: 1044,
    owner: "registrar",
  },
  "svid.issued": {
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    serial: "5e0f3a77c1d24b9a8e61f0c2d3b4a596",
    expiresAt: EXPIRES,
    agentId: AGENT,
  },
  "svid.rotated": {
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    serial: "7a1b2c3d4e5f60718293a4b5c6d7e8f9",
    expiresAt: EXPIRES,
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
    agentId: AGENT,
  },
  "bundle.updated": {
    trustDomain: TD,
    sequenceNumber: 17,
    x509AuthorityIds: [
      "3b6f0c9d2e1a4f5b8c7d6e5f4a3b2c1d0e9f8a7b",
      "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b",
    ],
  },
  "bundle.published": { sequenceNumber: 17, target: "configmap/meshid/meshid-bundle" },
  "authority.prepared": {
    authorityId: "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b",
    expiresAt: CA_EXPIRES,
    upstreamAuthorityId: "e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e",
  },
  "authority.activated": {
    authorityId: "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b",
    expiresAt: CA_EXPIRES,
    upstreamAuthorityId: "e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e",
  },
  "authority.tainted": {
    authorityId: "3b6f0c9d2e1a4f5b8c7d6e5f4a3b2c1d0e9f8a7b",
    expiresAt: new Date("2026-12-01T09:00:00.000Z"),
    upstreamAuthorityId: "",
  },
  "authority.revoked": {
    authorityId: "3b6f0c9d2e1a4f5b8c7d6e5f4a3b2c1d0e9f8a7b",
    expiresAt: new Date("2026-12-01T09:00:00.000Z"),
    upstreamAuthorityId: "",
  },
  "agent.attested": { agentId: AGENT, attestationType: "k8s_psat", nodeName: "node-1" },
  "agent.banned": { agentId: AGENT },
  "agent.deleted": { agentId: AGENT },
  "pod.registered": {
    namespace: "shop",
    podName: "checkout-7d9f8b6c5-x2k4q",
    podUid: "b1e2c3d4-a5f6-4789-8abc-def012345678",
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
  },
  "pod.deregistered": {
    namespace: "shop",
    podName: "checkout-7d9f8b6c5-x2k4q",
    podUid: "b1e2c3d4-a5f6-4789-8abc-def012345678",
    spiffeId: spiffe("/ns/shop/sa/checkout"),
    entryId: "0d9a6c1e-5b7f-4c55-9f0e-3b1f7a2c8d41",
  },
  "config.updated": {
    mtlsMode: "strict",
    caTtlSeconds: 720 * 3600,
    svidTtlSeconds: 3600,
    caKeyType: "ec-p256",
    rotateNow: false,
  },
  "agent.wakeup": { revision: 1043 },
};

/** Protobuf JSON of an event's example payload, as the publisher writes it. */
export function examplePayloadJson(type: EventType): unknown {
  const codec = EVENT_CATALOG[type].codec as { toJSON(m: unknown): unknown };
  return codec.toJSON(EXAMPLE_PAYLOADS[type]);
}

const json = (value: unknown): string => JSON.stringify(value, null, 2);
const fence = (lang: string, body: string): string => `\`\`\`${lang}\n${body}\n\`\`\``;

function natsSubjectCell(type: EventType): string {
  const def = EVENT_CATALOG[type];
  return def.perAgent ? `\`${def.subject}.<agent hash>\`` : `\`${def.subject}\``;
}

/** Renders the whole of docs/events.md. */
export function renderEventsDoc(set: DescriptorSet): string {
  const days = DEFAULT_EVENT_MAX_AGE_SECONDS / 86400;
  const gib = DEFAULT_EVENT_MAX_BYTES / 1024 ** 3;
  const parts: string[] = [];
  parts.push(`<!-- Generated by libs/events/scripts/render-events-doc.ts (run \`npm run docs\` in libs/events). Do not edit by hand: the events tests fail when this file is stale. -->

# meshid events

Every change in meshid is an event on NATS. The services use them to push work to each other
(an agent learns about a new entry in milliseconds instead of polling), and they are a **public
interface**: outside tools may subscribe to them, audit them, or replay them from JetStream.

- **Subjects**: \`meshid.v1.<kind>.<action>\`; all of them match \`meshid.v1.>\`.
- **Envelope**: [CloudEvents 1.0](https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md)
  in binary mode: the attributes are NATS headers, the body is the payload.
- **Payload**: protobuf JSON of the messages in \`proto/meshid/events/v1/events.proto\`
  (lowerCamelCase field names; fields at their default value — empty string, 0, false, empty
  list — are omitted, so every field is optional; timestamps are RFC 3339 strings; 64-bit
  integers are written as JSON numbers, and a reader should also accept decimal strings as
  proto3 JSON allows). Readers must ignore fields they do not know: new fields may be added
  within \`v1\`.
- **No secrets**: no event ever carries a private key, a join token or any other secret.
  Certificates appear only by serial number or authority ID. The publisher refuses any payload
  containing \`PRIVATE KEY\` as a last line of defence.
- **Tracing**: \`traceparent\`/\`tracestate\` (W3C Trace Context) carry the OpenTelemetry
  context; the publisher records a PRODUCER span \`publish <subject>\` and meshid consumers a
  CONSUMER span \`process <subject>\` in the same trace.

## Envelope

| NATS header | CloudEvents attribute | value |
|---|---|---|
| \`${CE_HEADERS.specVersion}\` | specversion | always \`1.0\` |
| \`${CE_HEADERS.id}\` | id | a UUID, unique per event (a retry reuses it) |
| \`${CE_HEADERS.type}\` | type | \`io.meshid.<kind>.<action>.v1\` (see the table below) |
| \`${CE_HEADERS.source}\` | source | the sending instance, e.g. \`meshid/ca/ca-0\`, \`meshid/agent/node-1\` |
| \`${CE_HEADERS.time}\` | time | RFC 3339 time the event was created |
| \`${CE_HEADERS.subject}\` | subject | optional: what the event is about (entry ID, serial…) |
| \`${CE_HEADERS.contentType}\` | datacontenttype | \`application/json\` |
| \`${CE_HEADERS.natsMsgId}\` | — | equals \`ce-id\`; JetStream drops duplicates by it |
| \`${CE_HEADERS.traceparent}\`, \`${CE_HEADERS.tracestate}\` | — (distributed tracing extension) | W3C Trace Context |

## Events at a glance

| event | NATS subject | ce-type | payload |
|---|---|---|---|`);
  for (const type of EVENT_TYPES) {
    const def = EVENT_CATALOG[type];
    parts.push(
      `| [\`${type}\`](#${type.replace(".", "")}) | ${natsSubjectCell(type)} | \`${def.ceType}\` | \`${def.messageName}\` |`,
    );
  }
  parts.push(`
Agent wake-ups go to one subject per agent, \`meshid.v1.agent.wakeup.<h>\` where \`<h>\` is the
first 32 lowercase hex characters of the SHA-256 of the agent's SPIFFE ID (NATS subjects cannot
carry the \`/\` and \`.\` of a SPIFFE ID). An agent subscribes to its own subject only, so it never
hears about other nodes' entries. In TypeScript: \`agentWakeupSubject(agentId)\` from
\`@meshid/events\`.

## The JetStream stream

The stream \`${EVENT_STREAM_NAME}\` keeps every event so that tools can use durable consumers and
replay history. \`ensureEventStream()\` from \`@meshid/events\` creates it or updates its limits;
it is idempotent, so every replica may call it at start-up:

| setting | value |
|---|---|
| subjects | \`meshid.v1.>\` |
| storage | file |
| retention | limits (oldest events are dropped first) |
| max age | ${days} days (\`maxAgeSeconds\`) |
| max bytes | ${gib} GiB (\`maxBytes\`) |
| duplicate window | ${DEFAULT_EVENT_DUPLICATE_WINDOW_SECONDS} s, keyed by \`Nats-Msg-Id\` = \`ce-id\` |
| replicas | 1 (3 in a JetStream cluster) |

## Subscribing from outside tools

### Core NATS (live, at most once)

With the [\`nats\` CLI](https://github.com/nats-io/natscli):

${fence(
  "sh",
  `# every event; the CLI prints the ce-* headers and the JSON body
nats sub 'meshid.v1.>'
# only entry events
nats sub 'meshid.v1.entry.*'`,
)}

### JetStream durable consumer (replay, at least once)

With the \`nats\` CLI:

${fence(
  "sh",
  `# a pull consumer that starts with the oldest stored event and needs explicit acks
nats consumer add ${EVENT_STREAM_NAME} audit --pull --deliver all --ack explicit \\
  --filter 'meshid.v1.>' --replay instant --max-deliver=-1 --defaults
# fetch (and ack) the next 10 events; run it again to continue where it stopped
nats consumer next ${EVENT_STREAM_NAME} audit --count 10`,
)}

In TypeScript with \`@meshid/events\` (typed payloads, envelope validation, tracing):

${fence(
  "ts",
  `import { connect } from "nats";
import { consumeEventsDurable, subscribeEvents } from "@meshid/events";

const nc = await connect({ servers: "nats://nats.meshid:4222" });

// Live: every entry event as it happens.
for await (const event of subscribeEvents({ nc, types: ["entry.created", "entry.deleted"] })) {
  console.log(event.type, event.id, event.data.spiffeId);
}

// Durable: resumes after the last acknowledged event when restarted with the same name.
const consumer = await consumeEventsDurable({
  nc,
  durableName: "audit",
  types: "all",
  deliverPolicy: "all", // only used when the durable is created
});
for await (const event of consumer) {
  console.log(event.streamSequence, event.type, event.time.toISOString(), event.data);
  await event.ack();
}`,
)}

With plain \`nats.js\` (any language works the same way: read the \`ce-*\` headers, parse the body
as JSON):

${fence(
  "ts",
  `import { AckPolicy, connect, DeliverPolicy } from "nats";

const nc = await connect({ servers: "nats://nats.meshid:4222" });
const jsm = await nc.jetstreamManager();
await jsm.consumers.add("${EVENT_STREAM_NAME}", {
  durable_name: "audit",
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  filter_subject: "meshid.v1.>",
});
const consumer = await nc.jetstream().consumers.get("${EVENT_STREAM_NAME}", "audit");
for await (const m of await consumer.consume()) {
  const type = m.headers?.get("ce-type"); // e.g. io.meshid.entry.created.v1
  const data = m.json<Record<string, unknown>>();
  console.log(m.seq, type, data);
  m.ack();
}`,
)}

## Events
`);
  for (const type of EVENT_TYPES) {
    const def = EVENT_CATALOG[type];
    parts.push(`### ${type}

${def.description}

- NATS subject: ${natsSubjectCell(type)}
- ce-type: \`${def.ceType}\`
- payload: \`${def.messageName}\`

Example payload:

${fence("json", json(examplePayloadJson(type)))}

<details><summary>JSON Schema</summary>

${fence("json", json(eventJsonSchema(set, type)))}

</details>
`);
  }
  return `${parts.join("\n").trimEnd()}\n`;
}
