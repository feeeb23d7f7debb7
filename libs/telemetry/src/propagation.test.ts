import { context, createTraceState, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { extractTraceContext, injectTraceContext, type HeaderCarrier } from "./propagation";

/** Mimics nats.js MsgHdrs: `get` returns "" for a missing header. */
function natsLikeHeaders(): HeaderCarrier & { entries: Map<string, string> } {
  const entries = new Map<string, string>();
  return {
    entries,
    get: (key) => entries.get(key) ?? "",
    set: (key, value) => void entries.set(key, value),
  };
}

describe("trace context propagation", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer("propagation-test");

  beforeAll(() => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });

  afterAll(async () => {
    propagation.disable();
    await provider.shutdown();
  });

  it("propagation – round trip through headers keeps the trace id", () => {
    const producer = tracer.startSpan("publish");
    const headers = natsLikeHeaders();
    injectTraceContext(headers, trace.setSpan(context.active(), producer));
    expect(headers.entries.get("traceparent")).toMatch(
      new RegExp(`^00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01$`),
    );

    const extracted = extractTraceContext(headers);
    const remote = trace.getSpanContext(extracted);
    expect(remote?.traceId).toBe(producer.spanContext().traceId);
    expect(remote?.isRemote).toBe(true);

    const consumer = tracer.startSpan("consume", {}, extracted);
    consumer.end();
    producer.end();
    const finished = exporter.getFinishedSpans().find((s) => s.name === "consume");
    expect(finished?.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(finished?.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
  });

  it("propagation – tracestate travels too", () => {
    const span = tracer.startSpan("publish");
    span.end();
    const ctx = trace.setSpanContext(context.active(), {
      ...span.spanContext(),
      traceState: createTraceState("vendor=x"),
    });
    const headers = natsLikeHeaders();
    injectTraceContext(headers, ctx);
    expect(headers.entries.get("tracestate")).toBe("vendor=x");
    expect(trace.getSpanContext(extractTraceContext(headers))?.traceState?.get("vendor")).toBe("x");
  });

  it("propagation – headers without trace context give no span context", () => {
    const headers = natsLikeHeaders();
    expect(trace.getSpanContext(extractTraceContext(headers))).toBeUndefined();
    headers.set("traceparent", "garbage");
    expect(trace.getSpanContext(extractTraceContext(headers))).toBeUndefined();
  });

  it("propagation – nothing is injected without a valid span", () => {
    const headers = natsLikeHeaders();
    injectTraceContext(headers);
    expect(headers.entries.size).toBe(0);
  });
});
