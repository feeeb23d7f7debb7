import { MeshidError } from "@meshid/errors";
import { z } from "zod";
import { withInputDefault, type WithInputDefault } from "./input-default";

/** Stable error code thrown by {@link parseDuration} and {@link formatDuration}. */
export const DURATION_INVALID_CODE = "config.duration.invalid";

const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type DurationUnit = keyof typeof UNIT_MS;
const UNIT_ORDER: readonly DurationUnit[] = ["h", "m", "s", "ms"];
// `ms` must be tried before `m`.
const PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

function invalid(text: string, why: string): MeshidError {
  return new MeshidError(
    "invalid_argument",
    DURATION_INVALID_CODE,
    `invalid duration "${text}": ${why}`,
  );
}

/**
 * Parses a duration written as `<number><unit>` parts in the order h, m, s, ms, each at most
 * once (`"720h"`, `"1h30m"`, `"90s"`, `"500ms"`, `"2h45m30s"`, `"1.5h"`); `"0"` is also
 * accepted. Returns seconds (fractional below one second: `"500ms"` → `0.5`).
 *
 * @throws MeshidError `config.duration.invalid` for empty strings, negatives, missing or
 *   unknown units, units out of order or repeated, and anything else.
 */
export function parseDuration(text: string): number {
  if (text.length === 0) throw invalid(text, "empty; write e.g. 90s, 1h30m or 720h");
  if (text.trim() !== text) throw invalid(text, "must not contain spaces");
  if (text.startsWith("-")) throw invalid(text, "must not be negative");
  if (text === "0") return 0;
  let totalMs = 0;
  let lastUnitIndex = -1;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const at = PART.lastIndex;
    const match = PART.exec(text);
    if (match === null) {
      const rest = text.slice(at);
      const why = /^\d+(?:\.\d+)?$/.test(rest)
        ? `"${rest}" has no unit (use h, m, s or ms)`
        : /^\d+(?:\.\d+)?[a-zA-Zµ]+/.test(rest)
          ? `unknown unit in "${rest}" (use h, m, s or ms)`
          : `unexpected "${rest}" (expected <number><unit> parts like 1h30m; units h, m, s, ms)`;
      throw invalid(text, why);
    }
    const unit = match[2] as DurationUnit;
    const unitIndex = UNIT_ORDER.indexOf(unit);
    if (unitIndex === lastUnitIndex) throw invalid(text, `unit "${unit}" appears twice`);
    if (unitIndex < lastUnitIndex) {
      throw invalid(text, `unit "${unit}" must come before "${UNIT_ORDER[lastUnitIndex]}"`);
    }
    lastUnitIndex = unitIndex;
    totalMs += Number(match[1]) * UNIT_MS[unit];
  }
  if (!Number.isFinite(totalMs)) throw invalid(text, "too large");
  return totalMs / 1000;
}

/**
 * Formats seconds as the shortest duration string {@link parseDuration} reads back
 * (`5400` → `"1h30m"`, `0.5` → `"500ms"`, `0` → `"0s"`), rounded to whole milliseconds.
 *
 * @throws MeshidError `config.duration.invalid` for negative or non-finite input.
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new MeshidError(
      "invalid_argument",
      DURATION_INVALID_CODE,
      `cannot format ${seconds} seconds as a duration: must be a finite number >= 0`,
    );
  }
  let restMs = Math.round(seconds * 1000);
  if (restMs === 0) return "0s";
  let out = "";
  for (const unit of UNIT_ORDER) {
    const count = Math.floor(restMs / UNIT_MS[unit]);
    if (count > 0) {
      out += `${count}${unit}`;
      restMs -= count * UNIT_MS[unit];
    }
  }
  return out;
}

/** Bounds of {@link durationSchema}, in seconds. */
export interface DurationSchemaOptions {
  /** Smallest accepted duration in seconds (inclusive). Default: 0. */
  min?: number;
  /** Largest accepted duration in seconds (inclusive). Default: none. */
  max?: number;
}

/** The zod schema type returned by {@link durationSchema}: duration string or seconds in, seconds out. */
export type DurationSchema = WithInputDefault<
  z.ZodPipe<
    z.ZodUnion<readonly [z.ZodString, z.ZodNumber]>,
    z.ZodTransform<number, string | number>
  >
>;

/**
 * Zod schema for a duration setting: accepts a duration string (see {@link parseDuration}) or
 * a number of seconds, checks the bounds and outputs seconds. `.default("720h")` takes a
 * duration string (or seconds) and parses it, so
 * `caTtl: durationSchema({ min: 24 * 3600 }).default("720h")` yields `2592000`.
 */
export function durationSchema(options: DurationSchemaOptions = {}): DurationSchema {
  const { min = 0, max } = options;
  const schema = z.union([z.string(), z.number()]).transform((value, ctx) => {
    let seconds: number;
    if (typeof value === "number") {
      if (!Number.isFinite(value) || value < 0) {
        ctx.addIssue({ code: "custom", message: "must be a duration >= 0 seconds" });
        return z.NEVER;
      }
      seconds = value;
    } else {
      try {
        seconds = parseDuration(value);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
        return z.NEVER;
      }
    }
    if (seconds < min) {
      ctx.addIssue({
        code: "custom",
        message: `must be at least ${formatDuration(min)} (got ${formatDuration(seconds)})`,
      });
      return z.NEVER;
    }
    if (max !== undefined && seconds > max) {
      ctx.addIssue({
        code: "custom",
        message: `must be at most ${formatDuration(max)} (got ${formatDuration(seconds)})`,
      });
      return z.NEVER;
    }
    return seconds;
  });
  return withInputDefault(schema);
}
