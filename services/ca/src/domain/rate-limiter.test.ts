import { createFakeClock } from "../testing/signing-fixtures";
import { createRateLimiter } from "./rate-limiter";

describe("createRateLimiter", () => {
  const start = new Date("2026-11-22T12:00:00Z");

  it("rate limiter – a key spends its burst, then waits for the refill", () => {
    const clock = createFakeClock(start);
    const limiter = createRateLimiter({ clock, perSecond: 10, burst: 20 });
    expect(limiter.tryTake("a", 15)).toBe(true);
    expect(limiter.tryTake("a", 6)).toBe(false);
    expect(limiter.tryTake("a", 5)).toBe(true);
    expect(limiter.tryTake("a", 1)).toBe(false);
    clock.advance(500); // +5 tokens
    expect(limiter.tryTake("a", 6)).toBe(false);
    expect(limiter.tryTake("a", 5)).toBe(true);
  });

  it("rate limiter – refill stops at the burst", () => {
    const clock = createFakeClock(start);
    const limiter = createRateLimiter({ clock, perSecond: 100, burst: 10 });
    expect(limiter.tryTake("a", 10)).toBe(true);
    clock.advance(3_600_000);
    expect(limiter.tryTake("a", 11)).toBe(false);
    expect(limiter.tryTake("a", 10)).toBe(true);
  });

  it("rate limiter – keys have separate buckets", () => {
    const clock = createFakeClock(start);
    const limiter = createRateLimiter({ clock, perSecond: 1, burst: 3 });
    expect(limiter.tryTake("a", 3)).toBe(true);
    expect(limiter.tryTake("a", 1)).toBe(false);
    expect(limiter.tryTake("b", 3)).toBe(true);
  });

  it("rate limiter – a refused take spends nothing", () => {
    const clock = createFakeClock(start);
    const limiter = createRateLimiter({ clock, perSecond: 1, burst: 5 });
    expect(limiter.tryTake("a", 6)).toBe(false);
    expect(limiter.tryTake("a", 5)).toBe(true);
  });

  it("rate limiter – a clock stepping back mints no tokens", () => {
    const clock = createFakeClock(start);
    const limiter = createRateLimiter({ clock, perSecond: 1, burst: 5 });
    expect(limiter.tryTake("a", 5)).toBe(true);
    clock.advance(-60_000);
    expect(limiter.tryTake("a", 1)).toBe(false);
    clock.advance(60_000);
    expect(limiter.tryTake("a", 1)).toBe(false);
    clock.advance(1_000);
    expect(limiter.tryTake("a", 1)).toBe(true);
  });

  it("rate limiter – idle full buckets are dropped past maxKeys without changing decisions", () => {
    const clock = createFakeClock(start);
    const limiter = createRateLimiter({ clock, perSecond: 1, burst: 2, maxKeys: 2 });
    expect(limiter.tryTake("a", 2)).toBe(true);
    expect(limiter.tryTake("b", 1)).toBe(true);
    expect(limiter.tryTake("c", 2)).toBe(true);
    // "a" was empty, so it was kept: still limited.
    expect(limiter.tryTake("a", 1)).toBe(false);
  });

  it("rate limiter – refuses a non-positive rate or a burst below 1", () => {
    const clock = createFakeClock(start);
    expect(() => createRateLimiter({ clock, perSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => createRateLimiter({ clock, perSecond: 1, burst: 0.5 })).toThrow(RangeError);
  });
});
