/** Logger the events library writes to (pino-compatible: fields first, then the message). */
export interface EventsLogger {
  /** Routine lines: published, consumer created. Optional. */
  debug?(fields: Record<string, unknown>, message: string): void;
  /** Skipped malformed messages and recoverable failures. */
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Name of the tracer and meter the library uses when none is injected. */
export const TRACER_NAME = "@meshid/events";
