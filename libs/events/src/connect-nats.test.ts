import { createMemoryLogger } from "@meshid/telemetry";
import type { ConnectionOptions, NatsConnection } from "nats";
import { connectNats, connectNatsWithRetry, redactNatsUrl } from "./connect-nats";

function fakeConnection(): NatsConnection & { closed: boolean } {
  const conn = {
    closed: false,
    close: () => {
      conn.closed = true;
      return Promise.resolve();
    },
  };
  return conn as unknown as NatsConnection & { closed: boolean };
}

describe("redactNatsUrl", () => {
  it("nats url – credentials are removed from every server; unparsable URLs are not echoed", () => {
    expect(redactNatsUrl("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222");
    expect(redactNatsUrl("nats://user:secret@nats:4222")).toBe("nats://nats:4222");
    expect(redactNatsUrl("nats://a:1,nats://token@b:2")).toBe("nats://a:1,nats://b:2");
    expect(redactNatsUrl("not a url with secret")).toBe("(unparsable URL)");
  });
});

describe("connectNatsWithRetry", () => {
  it("nats connect – retries with doubling delays, logging the redacted URL, until it connects", async () => {
    const { logger, entries } = createMemoryLogger();
    const attempts: ConnectionOptions[] = [];
    const conn = fakeConnection();
    const result = await connectNatsWithRetry({
      natsUrl: "nats://u:pw@127.0.0.1:1",
      name: "meshid-test",
      logger,
      signal: new AbortController().signal,
      whileDown: "work goes on",
      initialDelayMs: 1,
      maxDelayMs: 2,
      connect: (options) => {
        attempts.push(options);
        return attempts.length < 4 ? Promise.reject(new Error("refused")) : Promise.resolve(conn);
      },
    });
    expect(result).toBe(conn);
    expect(attempts).toHaveLength(4);
    expect(attempts[0]).toEqual({
      servers: "nats://u:pw@127.0.0.1:1",
      name: "meshid-test",
      maxReconnectAttempts: -1,
    });
    const warnings = entries().filter(
      (e) => e.msg === "cannot reach NATS; retrying (work goes on)",
    );
    expect(warnings.map((e) => e.retryMs)).toEqual([1, 2, 2]);
    expect(warnings.every((e) => e.natsUrl === "nats://127.0.0.1:1")).toBe(true);
    expect(JSON.stringify(entries())).not.toContain("pw@");
  });

  it("nats connect – an abort ends the wait at once and resolves undefined", async () => {
    const { logger } = createMemoryLogger();
    const abort = new AbortController();
    const pending = connectNatsWithRetry({
      natsUrl: "nats://127.0.0.1:1",
      name: "meshid-test",
      logger,
      signal: abort.signal,
      whileDown: "work goes on",
      initialDelayMs: 60_000,
      connect: () => Promise.reject(new Error("refused")),
    });
    await new Promise((resolve) => setImmediate(resolve));
    abort.abort();
    await expect(pending).resolves.toBeUndefined();
  });

  it("nats connect – a connection made after the abort is closed, not returned", async () => {
    const { logger } = createMemoryLogger();
    const abort = new AbortController();
    const conn = fakeConnection();
    const result = await connectNatsWithRetry({
      natsUrl: "nats://127.0.0.1:1",
      name: "meshid-test",
      logger,
      signal: abort.signal,
      whileDown: "work goes on",
      connect: () => {
        abort.abort();
        return Promise.resolve(conn);
      },
    });
    expect(result).toBeUndefined();
    expect(conn.closed).toBe(true);
  });
});

describe("connectNats", () => {
  it("nats connect once – reconnects forever once connected; a failure is unavailable with the given code and a redacted URL", async () => {
    const conn = fakeConnection();
    const seen: ConnectionOptions[] = [];
    await expect(
      connectNats({
        natsUrl: "nats://127.0.0.1:1",
        name: "meshid-x",
        errorCode: "x.nats.unavailable",
        connect: (options) => {
          seen.push(options);
          return Promise.resolve(conn);
        },
      }),
    ).resolves.toBe(conn);
    expect(seen).toEqual([
      { servers: "nats://127.0.0.1:1", name: "meshid-x", maxReconnectAttempts: -1 },
    ]);
    const failed = connectNats({
      natsUrl: "nats://user:pw@127.0.0.1:1",
      name: "meshid-x",
      errorCode: "x.nats.unavailable",
      connect: () => Promise.reject(new Error("ECONNREFUSED")),
    });
    await expect(failed).rejects.toMatchObject({
      kind: "unavailable",
      code: "x.nats.unavailable",
      message: "cannot connect to NATS at nats://127.0.0.1:1: ECONNREFUSED",
    });
  });
});
