import {
  createLogger,
  createNoopLogger,
  startOpsServer,
  type HealthReport,
  type OpsServer,
} from "../src";

describe("startOpsServer", () => {
  let server: OpsServer | undefined;
  let ready = false;
  let metricsFail = false;

  beforeAll(async () => {
    server = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      isReady: async () => {
        await Promise.resolve();
        if (ready === undefined) throw new Error("unreachable");
        return ready;
      },
      metrics: {
        contentType: "text/plain; version=0.0.4; charset=utf-8",
        collect: () =>
          metricsFail
            ? Promise.reject(new Error("collect failed"))
            : Promise.resolve("# HELP up test\nup 1\n"),
      },
      logger: createNoopLogger(),
    });
  });

  afterAll(async () => {
    await server?.close();
  });

  const get = (path: string, init?: RequestInit): Promise<Response> =>
    fetch(`${server!.url}${path}`, init);

  it("ops server – binds port 0 to a real port and reports its url", () => {
    expect(server!.port).toBeGreaterThan(0);
    expect(server!.url).toBe(`http://127.0.0.1:${server!.port}`);
  });

  it("ops server – /healthz is 200 ok", async () => {
    const res = await get("/healthz");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ok\n");
  });

  it("ops server – /healthz says degraded with reasons, still 200; a throwing check is ok", async () => {
    let report: HealthReport = { status: "degraded", reasons: ["config_rejected", "svid_stale"] };
    const other = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      isReady: () => true,
      health: () => report,
      logger: createNoopLogger(),
    });
    try {
      const degraded = await fetch(`${other.url}/healthz`);
      expect(degraded.status).toBe(200);
      expect(await degraded.text()).toBe("degraded: config_rejected, svid_stale\n");
      report = { status: "degraded" };
      expect(await (await fetch(`${other.url}/healthz`)).text()).toBe("degraded\n");
      report = { status: "ok" };
      expect(await (await fetch(`${other.url}/healthz`)).text()).toBe("ok\n");
    } finally {
      await other.close();
    }
  });

  it("ops server – /readyz follows isReady", async () => {
    ready = false;
    expect((await get("/readyz")).status).toBe(503);
    ready = true;
    const res = await get("/readyz?verbose=1");
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ready\n");
  });

  it("ops server – /metrics serves the handler's text with its content type", async () => {
    metricsFail = false;
    const res = await get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(await res.text()).toContain("up 1");
    metricsFail = true;
    expect((await get("/metrics")).status).toBe(500);
    metricsFail = false;
  });

  it("ops server – unknown paths are 404, other methods 405", async () => {
    expect((await get("/nope")).status).toBe(404);
    const post = await get("/healthz", { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("ops server – a throwing readiness check is 503 and logged; no metrics handler is 404", async () => {
    const chunks: string[] = [];
    const other = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      isReady: () => {
        throw new Error("db down");
      },
      logger: createLogger({
        service: "test",
        destination: { write: (s: string) => void chunks.push(s) },
      }),
    });
    try {
      expect((await fetch(`${other.url}/readyz`)).status).toBe(503);
      expect((await fetch(`${other.url}/metrics`)).status).toBe(404);
      expect(chunks.join("")).toContain("readiness check failed");
      expect(chunks.join("")).toContain("db down");
    } finally {
      await other.close();
      await other.close();
    }
  });

  it("ops server – aborting the signal closes it", async () => {
    const controller = new AbortController();
    const other = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      isReady: () => true,
      logger: createNoopLogger(),
      signal: controller.signal,
    });
    expect((await fetch(`${other.url}/healthz`)).status).toBe(200);
    controller.abort();
    await other.close();
    await expect(fetch(`${other.url}/healthz`)).rejects.toThrow();
  });

  it("ops server – a busy port rejects with the listen error", async () => {
    await expect(
      startOpsServer({
        host: "127.0.0.1",
        port: server!.port,
        isReady: () => true,
        logger: createNoopLogger(),
      }),
    ).rejects.toThrow(/EADDRINUSE/);
  });
});
