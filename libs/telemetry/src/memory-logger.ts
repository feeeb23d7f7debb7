import { createLogger, type Logger } from "./logger";

/** Parameters of {@link createMemoryLogger}. */
export interface CreateMemoryLoggerParams {
  /** Service name on every line. Default: `test`. */
  service?: string;
  /** Minimum level. Default: `trace` (everything). */
  level?: string;
}

/** A logger that keeps its lines in memory, for tests. */
export interface MemoryLogger {
  /** The logger to hand to the code under test. */
  readonly logger: Logger;
  /** Every line written so far, parsed (redaction already applied). */
  entries(): Record<string, unknown>[];
  /** Every line written so far, as raw JSON text. */
  text(): string;
  /** Forgets the lines written so far. */
  clear(): void;
}

/**
 * Creates a real {@link createLogger} logger (same fields and redaction) whose output is
 * kept in memory, so tests can assert on what was logged — and on what was not.
 */
export function createMemoryLogger(params: CreateMemoryLoggerParams = {}): MemoryLogger {
  let chunks: string[] = [];
  const logger = createLogger({
    service: params.service ?? "test",
    level: params.level ?? "trace",
    destination: {
      write: (chunk: string) => {
        chunks.push(chunk);
      },
    },
  });
  return {
    logger,
    entries: () => chunks.map((c) => JSON.parse(c) as Record<string, unknown>),
    text: () => chunks.join(""),
    clear: () => {
      chunks = [];
    },
  };
}
