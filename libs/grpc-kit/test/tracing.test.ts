import type { Channel } from "@grpc/grpc-js";
import { SpanKind, context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { spiffeWorkload } from "@meshid/proto";
import { createGrpcChannel, createGrpcClient, createGrpcServer, type GrpcServer } from "../src";
import { createMemoryLogger } from "./support/memory-logger";
import { createTestWorkloadService, echoCaller } from "./support/workload-service";

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
let server: GrpcServer | undefined;
let channel: Channel | undefined;

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
});

afterAll(async () => {
  channel?.close();
  await server?.shutdown({ graceMs: 0 });
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
});

describe("tracing", () => {
  it("tracing – a call yields a client span and a server span in the same trace", async () => {
    let handlerTraceId: string | undefined;
    server = createGrpcServer({ logger: createMemoryLogger() });
    server.add(
      spiffeWorkload.SpiffeWorkloadAPIDefinition,
      createTestWorkloadService((request, ctx) => {
        handlerTraceId = trace.getActiveSpan()?.spanContext().traceId;
        return echoCaller(request, ctx);
      }),
    );
    const port = await server.listen("127.0.0.1:0");
    channel = createGrpcChannel({ target: `127.0.0.1:${port}` });
    const client = createGrpcClient(spiffeWorkload.SpiffeWorkloadAPIDefinition, channel);
    await client.fetchJWTSVID({ audience: [] });

    const spans = exporter.getFinishedSpans();
    const clientSpan = spans.find((s) => s.kind === SpanKind.CLIENT);
    const serverSpan = spans.find((s) => s.kind === SpanKind.SERVER);
    expect(clientSpan?.name).toBe("SpiffeWorkloadAPI/FetchJWTSVID");
    expect(serverSpan?.name).toBe("SpiffeWorkloadAPI/FetchJWTSVID");
    expect(serverSpan?.spanContext().traceId).toBe(clientSpan?.spanContext().traceId);
    expect(serverSpan?.parentSpanContext?.spanId).toBe(clientSpan?.spanContext().spanId);
    expect(handlerTraceId).toBe(clientSpan?.spanContext().traceId);
  });
});
