import {
  SpanStatusCode,
  metrics,
  trace,
  type Attributes,
  type Meter,
  type Span,
  type Tracer,
} from "@opentelemetry/api";

/** Returns the tracer named `name` from the global tracer provider (a no-op until the SDK starts). */
export function getTracer(name: string, version?: string): Tracer {
  return trace.getTracer(name, version);
}

/** Returns the meter named `name` from the global meter provider (a no-op until the SDK starts). */
export function getMeter(name: string, version?: string): Meter {
  return metrics.getMeter(name, version);
}

/**
 * Runs `fn` inside a new active span named `name` (with `attributes`), ends the span when
 * `fn` settles, and on failure records the exception and sets the span status to ERROR
 * before rethrowing.
 */
export async function withSpan<T>(
  tracer: Tracer,
  name: string,
  fn: (span: Span) => Promise<T> | T,
  attributes?: Attributes,
): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      span.recordException(error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
      throw err;
    } finally {
      span.end();
    }
  });
}
