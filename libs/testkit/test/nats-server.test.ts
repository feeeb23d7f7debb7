import { existsSync } from "node:fs";
import { StringCodec } from "nats";
import { findNatsServerBinary, startNatsCluster, startNatsServer } from "../src/nats-server";

const sc = StringCodec();

/** True while a process with this pid exists. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startNatsServer", () => {
  it("nats-server – finds the binary", () => {
    expect(findNatsServerBinary()).toMatch(/nats-server$/);
  });

  it("nats-server – a missing binary gives an error naming the Debian package", () => {
    expect(() => findNatsServerBinary(["/nonexistent-meshid"])).toThrow(
      "nats-server not found; install the Debian package nats-server",
    );
  });

  it("nats-server – starts with JetStream, serves pub/sub, stops without leaving a process", async () => {
    const server = await startNatsServer();
    try {
      expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
      expect(existsSync(server.storeDir)).toBe(true);
      const nc = await server.connect();
      const sub = nc.subscribe("t.hello", { max: 1 });
      nc.publish("t.hello", sc.encode("hi"));
      for await (const m of sub) expect(sc.decode(m.data)).toBe("hi");
      const jsm = await nc.jetstreamManager();
      const info = await jsm.streams.add({ name: "T", subjects: ["t.>"] });
      expect(info.config.name).toBe("T");
    } finally {
      await server.stop();
    }
    expect(isAlive(server.pid)).toBe(false);
    expect(existsSync(server.storeDir)).toBe(false);
    await server.stop(); // idempotent
  });

  it("nats-server – stop() closes connections opened by connect()", async () => {
    const server = await startNatsServer({ jetstream: false });
    const nc = await server.connect();
    await server.stop();
    expect(nc.isClosed()).toBe(true);
    expect(isAlive(server.pid)).toBe(false);
  });

  it("nats-server – two servers get different ports", async () => {
    const [a, b] = await Promise.all([startNatsServer(), startNatsServer()]);
    try {
      expect(a.port).not.toBe(b.port);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});

describe("startNatsCluster", () => {
  it("nats-cluster – forwards a message published on node 1 to a subscriber on node 3", async () => {
    const cluster = await startNatsCluster({ size: 3 });
    try {
      expect(cluster.urls).toHaveLength(3);
      const nc3 = await cluster.connect({ node: 2 });
      const nc1 = await cluster.connect({ node: 0 });
      const sub = nc3.subscribe("cluster.hello", { max: 1 });
      await nc3.flush();
      // Interest crosses the route asynchronously: publish until node 3 has the message.
      let received: string | undefined;
      const done = (async () => {
        for await (const m of sub) received = sc.decode(m.data);
      })();
      while (received === undefined && !sub.isClosed()) {
        nc1.publish("cluster.hello", sc.encode("from node 1"));
        await nc1.flush();
        await Promise.race([done, new Promise((r) => setTimeout(r, 50))]);
      }
      await done;
      expect(received).toBe("from node 1");

      const jsm = await nc1.jetstreamManager();
      const info = await jsm.streams.add({ name: "C", subjects: ["c.>"], num_replicas: 3 });
      expect(info.config.num_replicas).toBe(3);
    } finally {
      await cluster.stop();
    }
    for (const s of cluster.servers) {
      expect(isAlive(s.pid)).toBe(false);
      expect(existsSync(s.storeDir)).toBe(false);
    }
  });
});
