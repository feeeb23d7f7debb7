import type { GrpcLogger } from "../../src/logger";

/** One line recorded by {@link createMemoryLogger}. */
export interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  fields: Record<string, unknown>;
  message: string;
}

/** A {@link GrpcLogger} that keeps every line in `lines` for assertions. */
export function createMemoryLogger(): GrpcLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine["level"]) =>
    (fields: Record<string, unknown>, message: string): void => {
      lines.push({ level, fields, message });
    };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
