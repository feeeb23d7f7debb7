import {
  context,
  propagation,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";

/**
 * Message headers that can carry trace context. nats.js `MsgHdrs` fits (its `get` returns
 * `""` for a missing header); so does a `Map<string, string>`.
 */
export interface HeaderCarrier {
  /** Returns the header's value; `undefined`, `null` or `""` when absent. */
  get(key: string): string | undefined | null;
  /** Sets (replaces) a header. */
  set(key: string, value: string): void;
}

const getter: TextMapGetter<HeaderCarrier> = {
  get: (carrier, key) => {
    const value = carrier.get(key);
    return value === null || value === "" ? undefined : value;
  },
  // The W3C propagators read known keys only.
  keys: () => [],
};

const setter: TextMapSetter<HeaderCarrier> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/**
 * Writes the trace context of `ctx` (default: the active context) into `headers` as
 * `traceparent`/`tracestate`, using the globally registered propagator (W3C trace context
 * once `startTelemetry` ran). Does nothing when `ctx` has no valid span.
 */
export function injectTraceContext(headers: HeaderCarrier, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, setter);
}

/**
 * Reads `traceparent`/`tracestate` from `headers` and returns the active context with the
 * remote span context set, to be used as the parent of the consumer's span. Headers
 * without valid trace context yield the active context unchanged.
 */
export function extractTraceContext(
  headers: HeaderCarrier,
  ctx: Context = context.active(),
): Context {
  return propagation.extract(ctx, headers, getter);
}
