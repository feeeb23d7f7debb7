import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { context, propagation, trace } from "@opentelemetry/api";
import { isMeshidError } from "@meshid/errors";
import {
  TELEMETRY_UNSUPPORTED_CODE,
  createNoopLogger,
  getMeter,
  getTracer,
  injectTraceContext,
  startOpsServer,
  startTelemetry,
  traceExportersFromEnv,
  withSpan,
  type OpsServer,
  type Telemetry,
} from "../src";

describe("startTelemetry", () => {
  let telemetry: Telemetry | undefined;
  let ops: OpsServer | undefined;

  afterEach(async () => {
    await ops?.close();
    await telemetry?.shutdown();
    ops = undefined;
    telemetry = undefined;
  });

  it("telemetry – a counter from getMeter shows up in the ops server's /metrics", async () => {
    telemetry = await startTelemetry({
      serviceName: "meshid-test",
      serviceVersion: "1.2.3",
      env: {},
    });
    expect(telemetry.metrics).toBeDefined();
    expect(telemetry.metricsUrl).toBeUndefined();
    const counter = getMeter("meshid-test").createCounter("meshid_svids_signed", {
      description: "SVIDs signed",
    });
    counter.add(3, { kind: "x509" });
    ops = await startOpsServer({
      host: "127.0.0.1",
      port: 0,
      isReady: () => true,
      metrics: telemetry.metrics,
      logger: createNoopLogger(),
    });
    const res = await fetch(`${ops.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("# HELP meshid_svids_signed_total SVIDs signed");
    expect(text).toMatch(/meshid_svids_signed_total\{[^}]*kind="x509"[^}]*\} 3/);
    expect(text).toContain('service_name="meshid-test"');
  });

  it("telemetry – metrics on their own server when host/port are given", async () => {
    telemetry = await startTelemetry({
      serviceName: "meshid-test",
      env: {},
      metrics: { host: "127.0.0.1", port: 0 },
    });
    getMeter("standalone").createCounter("meshid_standalone").add(1);
    expect(telemetry.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(telemetry.metricsUrl!)).text();
    expect(text).toContain("meshid_standalone_total");
  });

  it("telemetry – metrics: false gives no handler", async () => {
    telemetry = await startTelemetry({ serviceName: "meshid-test", env: {}, metrics: false });
    expect(telemetry.metrics).toBeUndefined();
  });

  it("telemetry – registers the W3C propagator and a context manager; no trace export by default", async () => {
    telemetry = await startTelemetry({ serviceName: "meshid-test", env: {} });
    expect(propagation.fields()).toEqual(["traceparent", "tracestate"]);
    // No exporter configured: spans are non-recording, but remote parents still flow through.
    const span = getTracer("t").startSpan("x");
    expect(span.isRecording()).toBe(false);
    span.end();
  });

  it("telemetry – shutdown is idempotent and unregisters the globals", async () => {
    const t = await startTelemetry({ serviceName: "meshid-test", env: {} });
    const first = t.shutdown();
    const second = t.shutdown();
    expect(second).toBe(first);
    await first;
    await t.shutdown();
    expect(propagation.fields()).toEqual([]);
    // A new start registers again.
    telemetry = await startTelemetry({ serviceName: "meshid-test", env: {} });
    expect(propagation.fields()).toEqual(["traceparent", "tracestate"]);
  });

  it("telemetry – OTEL_TRACES_EXPORTER=otlp exports spans to OTEL_EXPORTER_OTLP_ENDPOINT", async () => {
    const received: { path: string | undefined; body: string }[] = [];
    const collector: Server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push({ path: req.url, body });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    const { port } = collector.address() as AddressInfo;
    try {
      telemetry = await startTelemetry({
        serviceName: "meshid-test",
        env: {
          OTEL_TRACES_EXPORTER: "otlp",
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}/`,
        },
        metrics: false,
      });
      const headers = new Map<string, string>();
      let traceId = "";
      await withSpan(getTracer("t"), "meshid.test.span", (span) => {
        traceId = span.spanContext().traceId;
        injectTraceContext(headers);
      });
      expect(headers.get("traceparent")).toContain(traceId);
      await telemetry.shutdown();
      telemetry = undefined;
      expect(received.map((r) => r.path)).toContain("/v1/traces");
      const body = received.map((r) => r.body).join("\n");
      expect(body).toContain("meshid.test.span");
      expect(body).toContain(traceId);
    } finally {
      collector.closeAllConnections();
      await new Promise<void>((resolve) => collector.close(() => resolve()));
    }
  });

  it("telemetry – active span context flows through context.with", async () => {
    telemetry = await startTelemetry({
      serviceName: "meshid-test",
      env: { OTEL_TRACES_EXPORTER: "none" },
      metrics: false,
    });
    const parent = trace.wrapSpanContext({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: 1,
    });
    await context.with(trace.setSpan(context.active(), parent), async () => {
      await Promise.resolve();
      const headers = new Map<string, string>();
      injectTraceContext(headers);
      expect(headers.get("traceparent")).toBe(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      );
    });
  });

  it("telemetry – unsupported exporters are rejected with a precise error", async () => {
    expect(traceExportersFromEnv({})).toEqual([]);
    expect(traceExportersFromEnv({ OTEL_TRACES_EXPORTER: "otlp, console" })).toEqual([
      "otlp",
      "console",
    ]);
    expect(traceExportersFromEnv({ OTEL_TRACES_EXPORTER: "otlp,none" })).toEqual([]);
    const err: unknown = await startTelemetry({
      serviceName: "x",
      env: { OTEL_TRACES_EXPORTER: "jaeger" },
    }).catch((e: unknown) => e);
    expect(isMeshidError(err, TELEMETRY_UNSUPPORTED_CODE)).toBe(true);
    expect((err as Error).message).toContain('"jaeger"');
    expect(() =>
      traceExportersFromEnv({ OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }),
    ).toThrow(/grpc/);
  });

  it("telemetry – OTEL_SDK_DISABLED=true starts nothing", async () => {
    telemetry = await startTelemetry({ serviceName: "x", env: { OTEL_SDK_DISABLED: "true" } });
    expect(telemetry.metrics).toBeUndefined();
    expect(propagation.fields()).toEqual([]);
  });
});
