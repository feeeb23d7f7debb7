import { randomUUID } from "node:crypto";
import { isMeshidError } from "@meshid/errors";
import { context, propagation, SpanKind, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { headers as natsHeaders, type Msg, type NatsConnection } from "nats";
import {
  agentWakeupSubject,
  consumeEventsDurable,
  createEventPublisher,
  EVENT_CATALOG,
  EVENT_STREAM_NAME,
  ensureEventStream,
  type EventPayload,
  type MalformedEventInfo,
  type ReceivedEvent,
  subscribeEvents,
} from "../src/index";
import { type NatsServer, startNatsServer } from "@meshid/testkit";

const SOURCE = "meshid/ca/ca-0";
const FIXED_NOW = new Date("2026-11-22T13:30:00.123Z");

/** An EntryCreated payload with all fields set. */
function entryCreated(n: number): EventPayload<"entry.created"> {
  return {
    entryId: `entry-${n}`,
    spiffeId: { trustDomain: "example.org", path: `/ns/default/sa/app-${n}` },
    parentId: { trustDomain: "example.org", path: "/spire/agent/k8s_psat/c/node-1" },
    revision: 100 + n,
    owner: "registrar",
  };
}

/** Takes the first `count` items of an async iterable, then stops iterating it. */
async function take<T>(iterable: AsyncIterable<T>, count: number): Promise<T[]> {
  const out: T[] = [];
  if (count === 0) return out;
  for await (const item of iterable) {
    out.push(item);
    if (out.length >= count) break;
  }
  return out;
}

/** Resolves with the first message on `subject`. Subscribes before returning. */
async function nextRawMessage(nc: NatsConnection, subject: string): Promise<() => Promise<Msg>> {
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  return async () => {
    for await (const m of sub) return m;
    throw new Error("subscription closed without a message");
  };
}

describe("@meshid/events against a real nats-server", () => {
  let server: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await server.connect();
    await ensureEventStream(nc);
  });

  afterAll(async () => {
    await server.stop();
  });

  beforeEach(async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge(EVENT_STREAM_NAME);
  });

  it("publish – core subscriber gets every ce-* header and a body that decodes to the payload", async () => {
    const publisher = createEventPublisher({ nc, source: SOURCE, now: () => FIXED_NOW });
    const received = await nextRawMessage(nc, "meshid.v1.entry.created");
    const payload = entryCreated(1);
    const { id } = await publisher.publish("entry.created", payload, { subject: "entry-1" });
    const msg = await received();

    const h = msg.headers!;
    expect(h.get("ce-specversion")).toBe("1.0");
    expect(h.get("ce-id")).toBe(id);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(h.get("ce-type")).toBe("io.meshid.entry.created.v1");
    expect(h.get("ce-source")).toBe(SOURCE);
    expect(h.get("ce-time")).toBe("2026-11-22T13:30:00.123Z");
    expect(h.get("ce-subject")).toBe("entry-1");
    expect(h.get("content-type")).toBe("application/json");
    expect(h.get("Nats-Msg-Id")).toBe(id);
    const body: unknown = JSON.parse(new TextDecoder().decode(msg.data));
    expect(EVENT_CATALOG["entry.created"].codec.fromJSON(body)).toEqual(payload);
  });

  it("publish – typed subscriber receives the event with its envelope", async () => {
    const sub = subscribeEvents({ nc, types: ["entry.created", "svid.issued"] });
    await nc.flush();
    const publisher = createEventPublisher({ nc, source: SOURCE, now: () => FIXED_NOW });
    const issued: EventPayload<"svid.issued"> = {
      entryId: "entry-1",
      spiffeId: { trustDomain: "example.org", path: "/ns/default/sa/app" },
      serial: "7f00aa",
      expiresAt: new Date("2026-11-22T14:30:00.000Z"),
      agentId: "spiffe://example.org/spire/agent/join_token/abc",
    };
    const a = await publisher.publish("entry.created", entryCreated(2));
    const b = await publisher.publish("svid.issued", issued, { subject: "7f00aa" });
    await publisher.publish("agent.banned", { agentId: "not subscribed" });

    const events = await take(sub, 2);
    await sub.close();
    expect(events.map((e) => [e.type, e.id, e.source])).toEqual([
      ["entry.created", a.id, SOURCE],
      ["svid.issued", b.id, SOURCE],
    ]);
    const second = events[1]!;
    if (second.type !== "svid.issued") throw new Error("wrong type");
    expect(second.data).toEqual(issued);
    expect(second.subject).toBe("7f00aa");
    expect(second.time).toEqual(FIXED_NOW);
    expect(second.natsSubject).toBe("meshid.v1.svid.issued");
  });

  it("durable – a consumer that acked 3 of 5 resumes with the other 2; a new durable replays all", async () => {
    const publisher = createEventPublisher({ nc, source: SOURCE, useJetStream: true });
    const ids: string[] = [];
    for (let n = 1; n <= 5; n += 1)
      ids.push((await publisher.publish("entry.created", entryCreated(n))).id);

    const durableName = `replay-${randomUUID().slice(0, 8)}`;
    const first = await consumeEventsDurable({ nc, durableName, types: ["entry.created"] });
    const firstThree = [];
    for await (const event of first) {
      await event.ack();
      firstThree.push(event.id);
      if (firstThree.length === 3) break;
    }
    expect(firstThree).toEqual(ids.slice(0, 3));

    const again = await consumeEventsDurable({ nc, durableName, types: ["entry.created"] });
    const rest = [];
    for await (const event of again) {
      await event.ack();
      rest.push(event.id);
      if (rest.length === 2) break;
    }
    expect(rest).toEqual(ids.slice(3));
    const jsm = await nc.jetstreamManager();
    const info = await jsm.consumers.info(EVENT_STREAM_NAME, durableName);
    expect(info.num_pending).toBe(0);
    expect(info.num_ack_pending).toBe(0);

    const fresh = await consumeEventsDurable({
      nc,
      durableName: `${durableName}-new`,
      types: "all",
      deliverPolicy: "all",
    });
    const all = [];
    for await (const event of fresh) {
      expect(event.deliveryCount).toBe(1);
      await event.ack();
      all.push(event.id);
      if (all.length === 5) break;
    }
    expect(all).toEqual(ids);
  });

  it("durable – several types share one consumer and other types are skipped", async () => {
    const publisher = createEventPublisher({ nc, source: SOURCE, useJetStream: true });
    await publisher.publish("agent.banned", { agentId: "a1" });
    const banned = await publisher.publish("agent.banned", { agentId: "a2" });
    const attested = await publisher.publish("agent.attested", {
      agentId: "a3",
      attestationType: "join_token",
      nodeName: "node-3",
    });
    const consumer = await consumeEventsDurable({
      nc,
      durableName: `multi-${randomUUID().slice(0, 8)}`,
      types: ["agent.attested", "entry.deleted"],
    });
    const events: ReceivedEvent[] = [];
    for await (const event of consumer) {
      await event.ack();
      events.push(event);
      break;
    }
    expect(events.map((e) => [e.type, e.id])).toEqual([["agent.attested", attested.id]]);
    expect(banned.id).not.toBe(attested.id);
  });

  it("dedup – the same ce-id published twice is stored once", async () => {
    const js = createEventPublisher({ nc, source: SOURCE, useJetStream: true });
    const core = createEventPublisher({ nc, source: SOURCE });
    const id = randomUUID();
    await js.publish("entry.deleted", { ...entryCreated(9) }, { id });
    await js.publish("entry.deleted", { ...entryCreated(9) }, { id });
    await core.publish("entry.deleted", { ...entryCreated(9) }, { id });
    await nc.flush();
    await js.publish("entry.deleted", { ...entryCreated(10) }); // a barrier: stored after the rest
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(EVENT_STREAM_NAME);
    expect(info.state.messages).toBe(2);
  });

  it("trace – the consumer span continues the producer's trace", async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracer = provider.getTracer("events-test");
    const contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      const sub = subscribeEvents({ nc, types: ["pod.registered"], tracer });
      await nc.flush();
      const publisher = createEventPublisher({ nc, source: "meshid/registrar/r-0", tracer });
      const outer = tracer.startSpan("reconcile pod");
      await context.with(trace.setSpan(context.active(), outer), () =>
        publisher.publish("pod.registered", {
          namespace: "default",
          podName: "web-0",
          podUid: "uid-1",
          spiffeId: { trustDomain: "example.org", path: "/ns/default/sa/web" },
          entryId: "entry-1",
        }),
      );
      outer.end();
      const [event] = await take(sub, 1);
      // A span started inside the handler context is a child of the consumer span.
      const handler = tracer.startSpan("handle", {}, event!.traceContext);
      handler.end();
      await sub.close();

      const spans = exporter.getFinishedSpans();
      const producer = spans.find((s) => s.kind === SpanKind.PRODUCER)!;
      const consumer = spans.find((s) => s.kind === SpanKind.CONSUMER)!;
      const handle = spans.find((s) => s.name === "handle")!;
      expect(producer.name).toBe("publish meshid.v1.pod.registered");
      expect(consumer.name).toBe("process meshid.v1.pod.registered");
      expect(producer.spanContext().traceId).toBe(outer.spanContext().traceId);
      expect(producer.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
      expect(consumer.spanContext().traceId).toBe(producer.spanContext().traceId);
      expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
      expect(handle.parentSpanContext?.spanId).toBe(consumer.spanContext().spanId);
    } finally {
      propagation.disable();
      context.disable();
      await provider.shutdown();
    }
  });

  it("wake-up – each agent hears only its own wake-ups", async () => {
    const agentA = "spiffe://example.org/spire/agent/k8s_psat/c/node-a";
    const agentB = "spiffe://example.org/spire/agent/k8s_psat/c/node-b";
    const subA = subscribeEvents({
      nc,
      types: ["agent.wakeup"],
      natsSubject: agentWakeupSubject(agentA),
    });
    const subB = subscribeEvents({
      nc,
      types: ["agent.wakeup"],
      natsSubject: agentWakeupSubject(agentB),
    });
    const audit = subscribeEvents({ nc, types: ["agent.wakeup"] });
    await nc.flush();
    const publisher = createEventPublisher({ nc, source: SOURCE });
    // One publisher connection keeps order: had A heard B's wake-up it would come first.
    await publisher.publish(
      "agent.wakeup",
      { revision: 2 },
      { natsSubject: agentWakeupSubject(agentB) },
    );
    await publisher.publish(
      "agent.wakeup",
      { revision: 1 },
      { natsSubject: agentWakeupSubject(agentA) },
    );
    await publisher.publish(
      "agent.wakeup",
      { revision: 3 },
      { natsSubject: agentWakeupSubject(agentB) },
    );

    const [a] = await take(subA, 1);
    const b = await take(subB, 2);
    const all = await take(audit, 3);
    await Promise.all([subA.close(), subB.close(), audit.close()]);
    expect(a?.type === "agent.wakeup" && a.data.revision).toBe(1);
    expect(b.map((e) => e.type === "agent.wakeup" && e.data.revision)).toEqual([2, 3]);
    expect(all).toHaveLength(3);
    expect(agentWakeupSubject(agentA)).not.toBe(agentWakeupSubject(agentB));
  });

  it("wake-up – publishing a wake-up without an agent subject is refused", async () => {
    const publisher = createEventPublisher({ nc, source: SOURCE });
    await expect(publisher.publish("agent.wakeup", { revision: 1 })).rejects.toMatchObject({
      code: "events.subject.invalid",
    });
  });

  it("malformed – bad messages are skipped and reported, the loop goes on", async () => {
    const reports: MalformedEventInfo[] = [];
    const sub = subscribeEvents({
      nc,
      types: ["entry.created"],
      onMalformed: (info) => reports.push(info),
    });
    await nc.flush();
    const subject = "meshid.v1.entry.created";
    nc.publish(subject, new TextEncoder().encode('{"entryId":"no headers"}'));
    const badBody = natsHeaders();
    for (const [k, v] of Object.entries({
      "ce-specversion": "1.0",
      "ce-id": randomUUID(),
      "ce-type": "io.meshid.entry.created.v1",
      "ce-source": "evil",
      "ce-time": new Date().toISOString(),
      "content-type": "application/json",
    })) {
      badBody.set(k, v);
    }
    nc.publish(subject, new TextEncoder().encode("{not json"), { headers: badBody });
    const wrongType = natsHeaders();
    for (const k of badBody.keys()) wrongType.set(k, badBody.get(k));
    wrongType.set("ce-type", "io.meshid.entry.deleted.v1");
    nc.publish(subject, new TextEncoder().encode("{}"), { headers: wrongType });
    const publisher = createEventPublisher({ nc, source: SOURCE });
    const good = await publisher.publish("entry.created", entryCreated(3));

    const [event] = await take(sub, 1);
    expect(event?.id).toBe(good.id);
    expect(reports.map((r) => r.reason)).toEqual([
      "missing_headers",
      "bad_body",
      "subject_mismatch",
    ]);
    expect(sub.stats()).toEqual({ delivered: 1, malformed: 3 });
    await sub.close();
  });

  it("malformed – a durable consumer terminates bad messages and goes on", async () => {
    const reports: MalformedEventInfo[] = [];
    const js = nc.jetstream();
    await js.publish("meshid.v1.entry.updated", new TextEncoder().encode("garbage"));
    const publisher = createEventPublisher({ nc, source: SOURCE, useJetStream: true });
    const good = await publisher.publish("entry.updated", entryCreated(4));
    const consumer = await consumeEventsDurable({
      nc,
      durableName: `bad-${randomUUID().slice(0, 8)}`,
      types: ["entry.updated"],
      onMalformed: (info) => reports.push(info),
    });
    const ids: string[] = [];
    for await (const event of consumer) {
      await event.ack();
      ids.push(event.id);
      break;
    }
    expect(ids).toEqual([good.id]);
    expect(reports.map((r) => r.reason)).toEqual(["missing_headers"]);
  });

  it("secrets – a payload with private-key material is refused and nothing is sent", async () => {
    const sub = subscribeEvents({ nc, types: ["entry.created"] });
    await nc.flush();
    const publisher = createEventPublisher({ nc, source: SOURCE });
    const leaky = { ...entryCreated(5), owner: "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE..." };
    let caught: unknown;
    try {
      await publisher.publish("entry.created", leaky);
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "events.payload.secret")).toBe(true);
    expect((caught as Error).message).not.toContain("MHcC");
    await expect(
      publisher.publish("entry.created", entryCreated(6), { subject: "BEGIN PRIVATE KEY" }),
    ).rejects.toMatchObject({ code: "events.payload.secret" });
    const sentinel = await publisher.publish("entry.created", entryCreated(7));
    const [first] = await take(sub, 1);
    expect(first?.id).toBe(sentinel.id);
    await sub.close();
  });

  it("stream – ensureEventStream is idempotent and updates limits", async () => {
    const before = await ensureEventStream(nc);
    expect(before.config).toMatchObject({
      name: "MESHID_EVENTS",
      subjects: ["meshid.v1.>"],
      storage: "file",
      retention: "limits",
      max_bytes: 1024 ** 3,
      max_age: 7 * 24 * 3600 * 1e9,
      duplicate_window: 120 * 1e9,
      num_replicas: 1,
    });
    const same = await ensureEventStream(nc);
    expect(same.config).toEqual(before.config);
    const changed = await ensureEventStream(nc, {
      maxAgeSeconds: 3600,
      duplicateWindowSeconds: 60,
    });
    expect(changed.config.max_age).toBe(3600 * 1e9);
    expect(changed.config.duplicate_window).toBe(60 * 1e9);
    await ensureEventStream(nc); // back to defaults for the other tests
  });

  it("stream – invalid limits are refused before touching NATS", async () => {
    await expect(ensureEventStream(nc, { maxBytes: 0 })).rejects.toMatchObject({
      code: "events.stream.invalid",
    });
  });

  it("publish – JetStream publishing without a stream fails as unavailable", async () => {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(EVENT_STREAM_NAME);
    try {
      const publisher = createEventPublisher({ nc, source: SOURCE, useJetStream: true });
      await expect(publisher.publish("agent.banned", { agentId: "x" })).rejects.toMatchObject({
        kind: "unavailable",
        code: "events.publish.failed",
      });
    } finally {
      await ensureEventStream(nc);
    }
  });
});
