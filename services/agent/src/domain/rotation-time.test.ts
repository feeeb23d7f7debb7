import { computeRetryDelayMs, computeRotateAt } from "./rotation-time";

describe("rotation time", () => {
  const notBefore = new Date("2026-01-01T00:00:00Z");
  const notAfter = new Date("2026-01-01T01:00:00Z");

  it("rotation time – exact half-life without jitter", () => {
    expect(computeRotateAt({ notBefore, notAfter, random: 0.5 }).toISOString()).toBe(
      "2026-01-01T00:30:00.000Z",
    );
  });

  it("rotation time – jitter stays within ± 10 % of the half-life", () => {
    expect(computeRotateAt({ notBefore, notAfter, random: 0 }).toISOString()).toBe(
      "2026-01-01T00:27:00.000Z",
    );
    expect(computeRotateAt({ notBefore, notAfter, random: 1 }).toISOString()).toBe(
      "2026-01-01T00:33:00.000Z",
    );
  });

  it("rotation time – a non-positive lifetime rotates at notBefore", () => {
    expect(computeRotateAt({ notBefore: notAfter, notAfter: notBefore, random: 0.9 })).toEqual(
      notAfter,
    );
  });

  it("retry delay – doubles from min up to max, scaled by jitter", () => {
    const p = { minMs: 100, maxMs: 1_000, random: 0.999_999 };
    expect(computeRetryDelayMs({ ...p, attempts: 1 })).toBe(100);
    expect(computeRetryDelayMs({ ...p, attempts: 2 })).toBe(200);
    expect(computeRetryDelayMs({ ...p, attempts: 5 })).toBe(1_000);
    expect(computeRetryDelayMs({ ...p, attempts: 50 })).toBe(1_000);
    expect(computeRetryDelayMs({ ...p, attempts: 1, random: 0 })).toBe(50);
  });
});
