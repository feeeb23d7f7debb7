import { SpanStatusCode } from "@opentelemetry/api";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { getMeter, getTracer, withSpan } from "./with-span";

describe("withSpan", () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer("with-span-test");

  afterEach(() => exporter.reset());
  afterAll(() => provider.shutdown());

  it("tracing – ends the span and returns the result, with attributes", async () => {
    const result = await withSpan(
      tracer,
      "sign",
      (span) => {
        span.setAttribute("count", 2);
        return 42;
      },
      { "meshid.kind": "x509" },
    );
    expect(result).toBe(42);
    const [span] = exporter.getFinishedSpans();
    expect(span?.name).toBe("sign");
    expect(span?.attributes).toEqual({ "meshid.kind": "x509", count: 2 });
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it("tracing – records the exception, sets ERROR and rethrows", async () => {
    await expect(
      withSpan(tracer, "fail", async () => {
        await Promise.resolve();
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    const [span] = exporter.getFinishedSpans();
    expect(span?.status).toEqual({ code: SpanStatusCode.ERROR, message: "boom" });
    expect(span?.events.map((e) => e.name)).toEqual(["exception"]);
  });

  it("tracing – getTracer and getMeter work before the SDK starts (no-op)", async () => {
    await expect(withSpan(getTracer("noop"), "x", () => "ok")).resolves.toBe("ok");
    expect(() => getMeter("noop").createCounter("c").add(1)).not.toThrow();
  });
});
