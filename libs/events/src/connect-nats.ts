// Background connection to NATS for services that must never block on it: the first connect
// is retried with capped exponential backoff until it succeeds (nats.js then reconnects
// forever), and URLs are logged without credentials.
import { setTimeout as delay } from "node:timers/promises";
import { MeshidError } from "@meshid/errors";
import { LogKeys, type Logger } from "@meshid/telemetry";
import { connect, type ConnectionOptions, type NatsConnection } from "nats";

/** Waits `ms`, or less once `signal` aborts (never rejects). */
const abortableSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  delay(ms, undefined, { signal }).catch(() => undefined);

/** Default first delay between connect attempts (500 ms); it doubles up to the maximum. */
export const DEFAULT_NATS_CONNECT_RETRY_INITIAL_MS = 500;
/** Default longest delay between connect attempts (10 s). */
export const DEFAULT_NATS_CONNECT_RETRY_MAX_MS = 10_000;

/**
 * The URL(s) without user names or passwords (NATS URLs may carry credentials), for logs and
 * error messages. Each comma-separated server is redacted; a URL that cannot be parsed becomes
 * `(unparsable URL)` rather than being echoed.
 */
export function redactNatsUrl(url: string): string {
  return url
    .split(",")
    .map((one) => {
      try {
        const parsed = new URL(one.trim());
        parsed.username = "";
        parsed.password = "";
        return parsed.toString().replace(/\/$/, "");
      } catch {
        return "(unparsable URL)";
      }
    })
    .join(",");
}

/** Parameters of {@link connectNatsWithRetry}. */
export interface ConnectNatsWithRetryParams {
  /** NATS URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly natsUrl: string;
  /** Client name shown by the server, e.g. `meshid-agent`. */
  readonly name: string;
  readonly logger: Logger;
  /** Stops retrying; a connection made after the abort is closed. */
  readonly signal: AbortSignal;
  /** What still works while NATS is down, for the retry log line, e.g. `entries still reconcile`. */
  readonly whileDown: string;
  /** Connects to NATS (default: nats.js `connect`); tests inject failures here. */
  readonly connect?: (options: ConnectionOptions) => Promise<NatsConnection>;
  /** First retry delay (default {@link DEFAULT_NATS_CONNECT_RETRY_INITIAL_MS}). */
  readonly initialDelayMs?: number;
  /** Longest retry delay (default {@link DEFAULT_NATS_CONNECT_RETRY_MAX_MS}). */
  readonly maxDelayMs?: number;
}

/**
 * Connects to NATS, retrying with capped exponential backoff (each failure logged as a
 * warning, URL redacted) until it succeeds or `signal` aborts. The connection reconnects
 * forever (`maxReconnectAttempts: -1`). Resolves with the connection, or undefined when
 * aborted first. Never rejects.
 */
export async function connectNatsWithRetry(
  params: ConnectNatsWithRetryParams,
): Promise<NatsConnection | undefined> {
  const connectFn = params.connect ?? connect;
  const maxDelayMs = params.maxDelayMs ?? DEFAULT_NATS_CONNECT_RETRY_MAX_MS;
  let delayMs = params.initialDelayMs ?? DEFAULT_NATS_CONNECT_RETRY_INITIAL_MS;
  while (!params.signal.aborted) {
    try {
      const conn = await connectFn({
        servers: params.natsUrl,
        name: params.name,
        maxReconnectAttempts: -1,
      });
      if (params.signal.aborted) {
        await conn.close().catch(() => undefined);
        return undefined;
      }
      return conn;
    } catch (err) {
      params.logger.warn(
        {
          [LogKeys.err]: err instanceof Error ? err.message : String(err),
          natsUrl: redactNatsUrl(params.natsUrl),
          retryMs: delayMs,
        },
        `cannot reach NATS; retrying (${params.whileDown})`,
      );
      await abortableSleep(delayMs, params.signal);
      delayMs = Math.min(delayMs * 2, maxDelayMs);
    }
  }
  return undefined;
}

/** Parameters of {@link connectNats}. */
export interface ConnectNatsParams {
  /** NATS URL(s), e.g. `nats://127.0.0.1:4222`. */
  readonly natsUrl: string;
  /** Client name shown by the server, e.g. `meshid-ca`. */
  readonly name: string;
  /** Stable code of the error thrown when NATS cannot be reached, e.g. `ca.nats.unavailable`. */
  readonly errorCode: string;
  /** Connects to NATS (default: nats.js `connect`). */
  readonly connect?: (options: ConnectionOptions) => Promise<NatsConnection>;
}

/**
 * Connects to NATS once, for services that need it to start; once connected it reconnects
 * forever (`maxReconnectAttempts: -1`), so an outage never leaves the service silent.
 *
 * @throws MeshidError `unavailable` with `errorCode`, naming the redacted URL, when the first
 *   connect fails.
 */
export async function connectNats(params: ConnectNatsParams): Promise<NatsConnection> {
  const connectFn = params.connect ?? connect;
  try {
    return await connectFn({
      servers: params.natsUrl,
      name: params.name,
      maxReconnectAttempts: -1,
    });
  } catch (err) {
    throw new MeshidError(
      "unavailable",
      params.errorCode,
      `cannot connect to NATS at ${redactNatsUrl(params.natsUrl)}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}
