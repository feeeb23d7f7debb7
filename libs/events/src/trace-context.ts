import {
  type Context,
  propagation,
  type TextMapGetter,
  type TextMapSetter,
} from "@opentelemetry/api";
import { type MsgHdrs } from "nats";

/** Writes propagation fields into NATS headers. */
const headersSetter: TextMapSetter<MsgHdrs> = {
  set(carrier, key, value) {
    carrier.set(key, value);
  },
};

/** Reads propagation fields from NATS headers; `MsgHdrs.get` returns "" when a key is absent. */
const headersGetter: TextMapGetter<MsgHdrs | undefined> = {
  get(carrier, key) {
    if (carrier === undefined) return undefined;
    const value = carrier.get(key);
    return value === "" ? undefined : value;
  },
  keys(carrier) {
    return carrier === undefined ? [] : carrier.keys();
  },
};

/**
 * Writes `traceparent`/`tracestate` for `ctx` into NATS headers with the global propagator
 * (installed by the OpenTelemetry SDK in main.ts; without one nothing is written).
 */
export function injectTraceHeaders(ctx: Context, headers: MsgHdrs): void {
  propagation.inject(ctx, headers, headersSetter);
}

/** Returns `base` extended with the remote span context found in NATS headers, if any. */
export function extractTraceContext(base: Context, headers: MsgHdrs | undefined): Context {
  return propagation.extract(base, headers, headersGetter);
}
