import { hostname } from "node:os";
import { MeshidError } from "@meshid/errors";
import { isSpanContextValid, trace } from "@opentelemetry/api";
import pino from "pino";
import { LogKeys } from "./log-keys";

/** A log method: `(fields, message?)` or `(message)`. */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

/**
 * The logger every meshid component receives through its `deps` (the subset of pino we use).
 * Log field names come from {@link LogKeys}.
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** Returns a logger that adds `bindings` to every line (and keeps the parent's). */
  child(bindings: Record<string, unknown>): Logger;
}

/** Parameters of {@link createLogger}. */
export interface CreateLoggerParams {
  /** Service name, written as `service` on every line. */
  service: string;
  /** Minimum level: trace, debug, info, warn, error, fatal or silent. Default: `info`. */
  level?: string;
  /** Where JSON lines go. Default: stdout. */
  destination?: pino.DestinationStream;
}

/** What redacted values are replaced with. */
export const REDACTED = "[REDACTED]";

/** What any PEM private key block found in a log line is replaced with. */
export const REDACTED_PRIVATE_KEY = "[REDACTED PRIVATE KEY]";

/** Field paths pino redacts (censored with {@link REDACTED}); keys starting with `secret` too. */
export const REDACTED_PATHS: readonly string[] = [
  "privateKey",
  "*.privateKey",
  "key",
  "*.key",
  "keyPem",
  "*.keyPem",
  "x509SvidKey",
  "*.x509SvidKey",
  "token",
  "*.token",
  "password",
  "*.password",
];

const SECRET_KEY = /^secret/i;

// Works on serialized JSON: a PEM block inside a JSON string has `\n` escapes and no bare
// quote, so the match stays inside the string. A block without its END line (truncated
// key) is cut up to the end of the string. Escapes are consumed whole so an escaped quote
// is never split.
const PEM_PRIVATE_KEY =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----(?:[^"\\]|\\.)*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|(?="))/g;

/**
 * Replaces every PEM private key block (`-----BEGIN … PRIVATE KEY-----` … `-----END …
 * PRIVATE KEY-----`) in `text` with {@link REDACTED_PRIVATE_KEY}. Works on plain text and on
 * JSON-encoded text.
 */
export function redactPrivateKeys(text: string): string {
  if (!text.includes("PRIVATE KEY-----")) return text;
  return text.replace(PEM_PRIVATE_KEY, REDACTED_PRIVATE_KEY);
}

function redactSecretKeys(obj: Record<string, unknown>, depth: number): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(obj)) {
    let replaced: unknown = value;
    if (SECRET_KEY.test(key)) {
      replaced = REDACTED;
    } else if (
      depth > 0 &&
      typeof value === "object" &&
      value !== null &&
      !Array.isArray(value) &&
      !(value instanceof Error)
    ) {
      replaced = redactSecretKeys(value as Record<string, unknown>, depth - 1);
    }
    if (replaced !== value) {
      out ??= { ...obj };
      out[key] = replaced;
    }
  }
  return out ?? obj;
}

function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const ctx = span.spanContext();
  if (!isSpanContextValid(ctx)) return {};
  return { [LogKeys.traceId]: ctx.traceId, [LogKeys.spanId]: ctx.spanId };
}

/**
 * Creates the service's JSON logger (pino): `service` on every line, level as a label, ISO
 * time, `traceId`/`spanId` of the active span, and key material removed twice over:
 * {@link REDACTED_PATHS} and any `secret*` field are censored, and any PEM private key
 * block anywhere in the line (message, fields, `err.message`, `err.stack`, bindings) becomes
 * {@link REDACTED_PRIVATE_KEY}.
 *
 * @throws MeshidError `telemetry.log_level.invalid` for an unknown level.
 */
export function createLogger(params: CreateLoggerParams): Logger {
  const level = params.level ?? "info";
  if (level !== "silent" && !(level in pino.levels.values)) {
    throw new MeshidError(
      "invalid_argument",
      "telemetry.log_level.invalid",
      `unknown log level "${level}" (use trace, debug, info, warn, error, fatal or silent)`,
    );
  }
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid, hostname: hostname(), [LogKeys.service]: params.service },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => redactSecretKeys(bindings, 1),
      log: (obj) => redactSecretKeys(obj, 1),
    },
    mixin: traceFields,
    hooks: { streamWrite: redactPrivateKeys },
  };
  return params.destination === undefined ? pino(options) : pino(options, params.destination);
}

const noop = (): void => undefined;

/** Returns a {@link Logger} that discards everything (for tests and optional deps). */
export function createNoopLogger(): Logger {
  const logger: Logger = {
    trace: noop,
    debug: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    child: () => logger,
  };
  return logger;
}
