/**
 * The logging calls grpc-kit makes: the pino-style `(fields, message)` form. A pino logger or the
 * `Logger` of `@meshid/telemetry` satisfies it; tests can pass {@link createNoopGrpcLogger}.
 */
export interface GrpcLogger {
  /** Logs a debug line with structured fields. */
  debug(fields: Record<string, unknown>, message: string): void;
  /** Logs an info line with structured fields. */
  info(fields: Record<string, unknown>, message: string): void;
  /** Logs a warning with structured fields. */
  warn(fields: Record<string, unknown>, message: string): void;
  /** Logs an error with structured fields. */
  error(fields: Record<string, unknown>, message: string): void;
}

/** Returns a {@link GrpcLogger} that drops every line. */
export function createNoopGrpcLogger(): GrpcLogger {
  const noop = (): void => undefined;
  return { debug: noop, info: noop, warn: noop, error: noop };
}
