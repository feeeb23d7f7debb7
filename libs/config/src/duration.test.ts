import { isMeshidError } from "@meshid/errors";
import { z } from "zod";
import { DURATION_INVALID_CODE, durationSchema, formatDuration, parseDuration } from "./duration";

describe("parseDuration", () => {
  it.each([
    ["720h", 720 * 3600],
    ["1h30m", 5400],
    ["90s", 90],
    ["500ms", 0.5],
    ["2h45m30s", 2 * 3600 + 45 * 60 + 30],
    ["1m30s500ms", 90.5],
    ["1.5h", 5400],
    ["0", 0],
    ["0s", 0],
    ["10m", 600],
  ])("durations – %s is %d seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each([
    ["", /empty/],
    ["-1h", /must not be negative/],
    ["90", /"90" has no unit/],
    ["1h30", /"30" has no unit/],
    ["10d", /unknown unit in "10d"/],
    ["abc", /unexpected "abc"/],
    ["1h 30m", /unexpected " 30m"/],
    [" 1h", /must not contain spaces/],
    ["30m1h", /unit "h" must come before "m"/],
    ["1h1h", /unit "h" appears twice/],
    ["h", /unexpected "h"/],
    ["1.h", /unexpected/],
  ])("durations – rejects %j precisely", (text, message) => {
    let caught: unknown;
    try {
      parseDuration(text);
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, DURATION_INVALID_CODE)).toBe(true);
    expect((caught as Error).message).toMatch(message);
    expect((caught as Error).message).toContain(`invalid duration "${text}"`);
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0s"],
    [0.5, "500ms"],
    [90, "1m30s"],
    [5400, "1h30m"],
    [720 * 3600, "720h"],
    [3600.25, "1h250ms"],
  ])("durations – formats %d seconds as %s", (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
    expect(parseDuration(text)).toBe(seconds);
  });

  it("durations – rejects negative and non-finite seconds", () => {
    expect(() => formatDuration(-1)).toThrow(/finite number >= 0/);
    expect(() => formatDuration(Number.NaN)).toThrow(/finite number >= 0/);
  });
});

describe("durationSchema", () => {
  it("durations – accepts strings and seconds, outputs seconds", () => {
    const schema = durationSchema();
    expect(schema.parse("1h")).toBe(3600);
    expect(schema.parse(42)).toBe(42);
  });

  it("durations – .default takes a duration string and parses it", () => {
    const schema = z.object({ caTtl: durationSchema({ min: 24 * 3600 }).default("720h") });
    const parsed: { caTtl: number } = schema.parse({});
    expect(parsed).toEqual({ caTtl: 720 * 3600 });
    expect(schema.parse({ caTtl: "48h" })).toEqual({ caTtl: 48 * 3600 });
  });

  it("durations – .default survives describe()", () => {
    const schema = durationSchema().describe("svid lifetime").default("1h");
    expect(schema.parse(undefined)).toBe(3600);
  });

  it("durations – enforces min and max with readable messages", () => {
    const schema = durationSchema({ min: 60, max: 3600 });
    const low = schema.safeParse("30s");
    expect(low.success).toBe(false);
    expect(low.error?.issues[0]?.message).toBe("must be at least 1m (got 30s)");
    const high = schema.safeParse("2h");
    expect(high.error?.issues[0]?.message).toBe("must be at most 1h (got 2h)");
    expect(schema.safeParse(-5).success).toBe(false);
    expect(schema.safeParse("soon").error?.issues[0]?.message).toMatch(/invalid duration "soon"/);
  });
});
