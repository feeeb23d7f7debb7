import { isMeshidError } from "@meshid/errors";
import { isProcStateGone, parseProcStat, procStatStartTime } from "./proc-stat";

const tail = (state: string, start: string) =>
  `${state} 1 1234 1234 0 -1 4194560 1234 0 0 0 5 3 0 0 20 0 1 0 ${start} 8392704 228 18446744073709551615 1 1 0 0 0 0 0 0 65536 1 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0`;

describe("parseProcStat", () => {
  it.each([
    ["plain comm", `1234 (sleep) ${tail("S", "987654")}`, "sleep", "S", 987654],
    ["comm with spaces", `1234 (my proc) ${tail("R", "42")}`, "my proc", "R", 42],
    ["comm with parentheses", `1234 (a) b (c) ${tail("Z", "7")}`, "a) b (c", "Z", 7],
    ["comm ending in )", `1234 ()) ${tail("S", "1")}`, ")", "S", 1],
    ["trailing newline", `1234 (x) ${tail("S", "99")}\n`, "x", "S", 99],
  ])("proc stat – parses %s", (_name, text, comm, state, start) => {
    expect(parseProcStat(text)).toEqual({ pid: 1234, comm, state, startTimeTicks: start });
    // The byte parser of the per-call check agrees, also with slack after the line.
    const bytes = Buffer.from(`${text}\0\0\0`);
    expect(procStatStartTime(bytes, Buffer.byteLength(text))).toEqual({
      state,
      startTimeTicks: start,
    });
  });

  it.each([
    ["empty", ""],
    ["no comm", "1234 sleep S 1"],
    ["short", "1234 (sleep) S 1 2 3"],
    ["no pid", "(sleep) " + tail("S", "1")],
    ["bad start", `1 (x) ${tail("S", "abc")}`],
  ])("proc stat – rejects %s", (name, text) => {
    expect(() => parseProcStat(text)).toThrow(
      expect.objectContaining({ code: "agent.attestation.proc_unparsable" }) as Error,
    );
    try {
      parseProcStat(text);
    } catch (err) {
      expect(isMeshidError(err, "agent.attestation.proc_unparsable")).toBe(true);
    }
    if (name !== "no pid") {
      expect(procStatStartTime(Buffer.from(text), Buffer.byteLength(text))).toBeUndefined();
    }
  });

  it("proc stat – zombie and dead states count as gone", () => {
    expect(["Z", "X", "x"].every(isProcStateGone)).toBe(true);
    expect(["R", "S", "D", "T", "I"].some(isProcStateGone)).toBe(false);
  });
});
