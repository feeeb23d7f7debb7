import { randomUUID } from "node:crypto";
import { type NatsConnection } from "nats";
import {
  consumeEventsDurable,
  createEventPublisher,
  EVENT_STREAM_NAME,
  ensureEventStream,
  subscribeEvents,
} from "../src/index";
import {
  type NatsCluster,
  type NatsServer,
  startNatsCluster,
  startNatsServer,
} from "@meshid/testkit";

const SOURCE = "meshid/test/extra";

describe("subscriptions – lifecycle", () => {
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

  it("queue – each event goes to exactly one member of a queue group", async () => {
    const members = [
      subscribeEvents({ nc, types: ["agent.banned"], queue: "q" }),
      subscribeEvents({ nc, types: ["agent.banned"], queue: "q" }),
    ];
    await nc.flush();
    const got: string[][] = [[], []];
    let total = 0;
    let allIn: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      allIn = resolve;
    });
    const loops = members.map(async (sub, i) => {
      for await (const e of sub) {
        got[i]!.push(e.id);
        total += 1;
        if (total === 20) allIn();
      }
    });
    const publisher = createEventPublisher({ nc, source: SOURCE });
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      ids.push((await publisher.publish("agent.banned", { agentId: `a${i}` })).id);
    }
    await done;
    await Promise.all(members.map((m) => m.close()));
    await Promise.all(loops);
    expect([...got[0]!, ...got[1]!].sort()).toEqual([...ids].sort());
    expect(members[0]!.stats().delivered + members[1]!.stats().delivered).toBe(20);
  });

  it("signal – aborting ends the iteration", async () => {
    const controller = new AbortController();
    const sub = subscribeEvents({ nc, types: "all", signal: controller.signal });
    const loop = (async () => {
      let count = 0;
      for await (const _ of sub) count += 1;
      return count;
    })();
    await nc.flush();
    controller.abort();
    await expect(loop).resolves.toBe(0);
  });

  it("signal – aborting a durable consumer waiting for events ends it", async () => {
    const controller = new AbortController();
    const consumer = await consumeEventsDurable({
      nc,
      durableName: `idle-${randomUUID().slice(0, 8)}`,
      types: ["config.updated"],
      signal: controller.signal,
    });
    const loop = (async () => {
      let count = 0;
      for await (const _ of consumer) count += 1;
      return count;
    })();
    await nc.flush();
    controller.abort();
    await expect(loop).resolves.toBe(0);
  });
});

describe("events on a 3-node JetStream cluster", () => {
  let cluster: NatsCluster;

  beforeAll(async () => {
    cluster = await startNatsCluster({ size: 3 });
  });

  afterAll(async () => {
    await cluster.stop();
  });

  it("cluster – a replicated stream keeps events published on node 1 for a consumer on node 3", async () => {
    const nc1 = await cluster.connect({ node: 0 });
    const nc3 = await cluster.connect({ node: 2 });
    const info = await ensureEventStream(nc1, { replicas: 3 });
    expect(info.config.num_replicas).toBe(3);
    const publisher = createEventPublisher({ nc: nc1, source: SOURCE, useJetStream: true });
    const sent = await publisher.publish("bundle.updated", {
      trustDomain: "example.org",
      sequenceNumber: 5,
      x509AuthorityIds: ["aa", "bb"],
    });
    const consumer = await consumeEventsDurable({
      nc: nc3,
      durableName: "cluster-reader",
      types: ["bundle.updated"],
    });
    for await (const event of consumer) {
      await event.ack();
      expect(event.id).toBe(sent.id);
      expect(event.type === "bundle.updated" && event.data.x509AuthorityIds).toEqual(["aa", "bb"]);
      break;
    }
    const jsm = await nc3.jetstreamManager();
    expect((await jsm.streams.info(EVENT_STREAM_NAME)).state.messages).toBe(1);
  });
});
