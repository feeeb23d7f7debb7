import type { CliIo } from "./cli-io";

/** One column of a human table: a header and how to read the cell from a row. */
export interface TableColumn<Row> {
  readonly header: string;
  readonly value: (row: Row) => string;
}

/**
 * Renders rows as a plain-text table: upper-case headers, columns separated by two spaces,
 * padded to the widest cell, no trailing spaces. An empty list renders just the header line.
 */
export function renderTable<Row>(
  columns: readonly TableColumn<Row>[],
  rows: readonly Row[],
): string {
  const cells = [
    columns.map((c) => c.header.toUpperCase()),
    ...rows.map((row) => columns.map((c) => c.value(row))),
  ];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => (line[i] ?? "").length)));
  return cells
    .map((line) =>
      line
        .map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join("");
}

/**
 * Renders a record as `key: value` lines with aligned values (for `show` commands). Arrays
 * become one line per item under the key; empty values show as `-`.
 */
export function renderDetails(
  fields: readonly (readonly [string, string | readonly string[]])[],
): string {
  const width = Math.max(...fields.map(([k]) => k.length)) + 1;
  let out = "";
  for (const [key, value] of fields) {
    const label = `${key}:`.padEnd(width);
    if (typeof value === "string") {
      out += `${label}  ${value === "" ? "-" : value}\n`;
    } else if (value.length === 0) {
      out += `${label}  -\n`;
    } else {
      value.forEach((item, i) => {
        out += `${i === 0 ? label : " ".repeat(width)}  ${item}\n`;
      });
    }
  }
  return out;
}

/** Output helpers of one command run: `--json` or human text. */
export interface Output {
  /** True when `--json` was given. */
  readonly json: boolean;
  /** Prints `value` as one JSON document (pretty, 2 spaces) on stdout. */
  printJson(value: unknown): void;
  /** Prints `value` as one compact JSON line on stdout (streams: `events tail --json`). */
  printJsonLine(value: unknown): void;
  /** Prints text on stdout as is (a newline is added when missing). */
  print(text: string): void;
  /** Prints a warning on stderr (`warning: …`), in both modes. */
  warn(message: string): void;
  /** Prints an informational note on stderr (human mode only). */
  note(message: string): void;
}

/** Creates the {@link Output} of one run. */
export function createOutput(io: CliIo, json: boolean): Output {
  return {
    json,
    printJson: (value) => io.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`),
    printJsonLine: (value) => io.stdout.write(`${JSON.stringify(value, jsonReplacer)}\n`),
    print: (text) => io.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`),
    warn: (message) => io.stderr.write(`warning: ${message}\n`),
    note: (message) => {
      if (!json) io.stderr.write(`${message}\n`);
    },
  };
}

/** JSON replacer: Dates as RFC 3339, bytes as base64, bigints as strings. */
function jsonReplacer(this: unknown, _key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value === "bigint") return value.toString();
  return value;
}

/** Formats a date as RFC 3339 UTC without milliseconds, or `-` when absent. */
export function formatTime(date: Date | undefined): string {
  if (date === undefined || Number.isNaN(date.getTime())) return "-";
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Formats how far `date` is from `now` as a short relative duration (`in 59m`, `3h ago`), or
 * `-` when absent.
 */
export function formatRelative(date: Date | undefined, now: Date): string {
  if (date === undefined) return "-";
  const deltaSeconds = Math.round((date.getTime() - now.getTime()) / 1000);
  const abs = Math.abs(deltaSeconds);
  const text =
    abs < 120
      ? `${abs}s`
      : abs < 7200
        ? `${Math.round(abs / 60)}m`
        : abs < 172_800
          ? `${Math.round(abs / 3600)}h`
          : `${Math.round(abs / 86_400)}d`;
  return deltaSeconds >= 0 ? `in ${text}` : `${text} ago`;
}
