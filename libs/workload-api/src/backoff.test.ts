import { backoffDelayMs } from "./backoff";

describe("backoffDelayMs", () => {
  it("backoff – doubles from the initial delay and stays within [half, full] of it", () => {
    const opts = { initialMs: 100, maxMs: 10_000 };
    expect(backoffDelayMs(0, { ...opts, random: () => 0 })).toBe(50);
    expect(backoffDelayMs(0, { ...opts, random: () => 0.999999 })).toBe(100);
    expect(backoffDelayMs(3, { ...opts, random: () => 0 })).toBe(400);
    expect(backoffDelayMs(3, { ...opts, random: () => 1 })).toBe(800);
  });

  it("backoff – is capped at maxMs, even for huge attempt numbers", () => {
    for (const attempt of [10, 50, 1e9]) {
      const delay = backoffDelayMs(attempt, { initialMs: 100, maxMs: 2_000 });
      expect(delay).toBeGreaterThanOrEqual(1_000);
      expect(delay).toBeLessThanOrEqual(2_000);
    }
  });

  it("backoff – defaults are sane and never zero", () => {
    expect(backoffDelayMs(0, { random: () => 0 })).toBeGreaterThan(0);
    expect(backoffDelayMs(100)).toBeLessThanOrEqual(10_000);
    expect(backoffDelayMs(-5, { initialMs: 0, random: () => 0 })).toBeGreaterThanOrEqual(1);
  });
});
