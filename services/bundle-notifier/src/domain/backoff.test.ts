import { backoffDelayMs } from "./backoff";

describe("backoff – capped exponential with equal jitter", () => {
  it("backoff – doubles from the initial delay up to the cap, never below half of it", () => {
    const at = (attempt: number, r: number): number =>
      backoffDelayMs({ attempt, initialMs: 500, maxMs: 30_000, random: () => r });
    expect([0, 1, 2, 3].map((a) => at(a, 0.999999))).toEqual([500, 1000, 2000, 4000]);
    expect([0, 1, 2, 3].map((a) => at(a, 0))).toEqual([250, 500, 1000, 2000]);
    expect(at(10, 0.999999)).toBe(30_000);
    expect(at(10_000, 0)).toBe(15_000);
  });
});
