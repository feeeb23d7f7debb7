import { agentWakeupSubject, createEventPublisher, type EventPublisher } from "@meshid/events";
import { createNoopLogger } from "@meshid/telemetry";
import {
  findNatsServerBinary,
  getFreePort,
  spawnManaged,
  waitForPort,
  type ManagedProcess,
} from "@meshid/testkit";
import type { NatsConnection } from "nats";
import { connect } from "nats";
import { startNatsWakeups, type NatsWakeups } from "../src/adapters/nats-wakeups";

const AGENT_ID = "spiffe://example.org/meshid/agent/join_token/node-1";
const OTHER_AGENT_ID = "spiffe://example.org/meshid/agent/join_token/node-2";

/** A real nats-server on a fixed port, so a restart lets the client reconnect. */
async function startServer(port: number): Promise<ManagedProcess> {
  const proc = await spawnManaged(findNatsServerBinary(), ["-a", "127.0.0.1", "-p", String(port)], {
    name: "nats-server",
  });
  await waitForPort(port);
  return proc;
}

/** Reads the next value of `it`, failing after a generous bound. */
async function next(it: AsyncIterator<number>): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no wake-up within 20 s")), 20_000);
      }),
    ]);
    if (result.done === true) throw new Error("wake-ups ended");
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

describe("NATS wake-ups (real nats-server)", () => {
  let port: number;
  let server: ManagedProcess | undefined;
  let wakeups: NatsWakeups | undefined;
  let publisherConn: NatsConnection | undefined;

  beforeEach(async () => {
    port = await getFreePort();
  });

  afterEach(async () => {
    await wakeups?.close();
    wakeups = undefined;
    await publisherConn?.close();
    publisherConn = undefined;
    await server?.stop();
    server = undefined;
  });

  async function publisher(): Promise<EventPublisher> {
    publisherConn = await connect({
      servers: `nats://127.0.0.1:${port}`,
      maxReconnectAttempts: -1,
    });
    return createEventPublisher({ nc: publisherConn, source: "meshid/ca/test" });
  }

  it("nats wake-ups – yields 0 on connect, then the revision of each own wake-up only", async () => {
    server = await startServer(port);
    wakeups = startNatsWakeups({
      natsUrl: `nats://127.0.0.1:${port}`,
      agentId: AGENT_ID,
      logger: createNoopLogger(),
    });
    const it = wakeups[Symbol.asyncIterator]();
    expect(await next(it)).toBe(0);
    const events = await publisher();
    await events.publish(
      "agent.wakeup",
      { revision: 7 },
      { natsSubject: agentWakeupSubject(OTHER_AGENT_ID) },
    );
    await events.publish(
      "agent.wakeup",
      { revision: 9 },
      { natsSubject: agentWakeupSubject(AGENT_ID) },
    );
    expect(await next(it)).toBe(9);
  });

  it("nats wake-ups – connects once NATS comes up, and yields 0 after a reconnect", async () => {
    wakeups = startNatsWakeups({
      natsUrl: `nats://127.0.0.1:${port}`,
      agentId: AGENT_ID,
      logger: createNoopLogger(),
      connectRetryInitialMs: 50,
    });
    const it = wakeups[Symbol.asyncIterator]();
    expect(wakeups.connected()).toBe(false);
    server = await startServer(port);
    expect(await next(it)).toBe(0);
    expect(wakeups.connected()).toBe(true);

    await server.stop();
    server = await startServer(port);
    expect(await next(it)).toBe(0);

    const events = await publisher();
    await events.publish(
      "agent.wakeup",
      { revision: 3 },
      { natsSubject: agentWakeupSubject(AGENT_ID) },
    );
    expect(await next(it)).toBe(3);
  });

  it("nats wake-ups – close ends the iteration", async () => {
    server = await startServer(port);
    wakeups = startNatsWakeups({
      natsUrl: `nats://127.0.0.1:${port}`,
      agentId: AGENT_ID,
      logger: createNoopLogger(),
    });
    const it = wakeups[Symbol.asyncIterator]();
    expect(await next(it)).toBe(0);
    const pending = it.next();
    await wakeups.close();
    expect((await pending).done).toBe(true);
  });
});
