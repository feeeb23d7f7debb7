import { createInternPool, emptyList, internSelectors, internString, joinFlat } from "./intern";

describe("interning", () => {
  it("intern – equal selector lists share one frozen list with shared strings", () => {
    const a = internSelectors([{ type: "unix", value: "uid:1000" }]);
    const b = internSelectors([{ type: "unix", value: "uid:1000" }]);
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(a).toEqual([{ type: "unix", value: "uid:1000" }]);
    expect(internSelectors([{ type: "unix", value: "uid:1001" }])).not.toBe(a);
    // Order and boundaries count: "u"+"nix:x" is not "unix"+":x".
    expect(internSelectors([{ type: "u", value: "nix:x" }])).not.toBe(
      internSelectors([{ type: "unix", value: "x" }]),
    );
    expect(internSelectors([])).toBe(emptyList());
  });

  it("intern – strings and flat joins keep their value", () => {
    const s = joinFlat("spiffe://", "example.org", "/a");
    expect(s).toBe("spiffe://example.org/a");
    expect(internString(s)).toBe("spiffe://example.org/a");
  });

  it("intern – a full pool starts afresh and still answers", () => {
    const pool = createInternPool<{ v: string }>(2);
    const a = pool.intern("a", () => ({ v: "a" }));
    expect(pool.intern("a", () => ({ v: "other" }))).toBe(a);
    pool.intern("b", () => ({ v: "b" }));
    expect(pool.intern("c", () => ({ v: "c" }))).toEqual({ v: "c" });
    expect(pool.size).toBe(1);
    expect(pool.intern("a", () => ({ v: "a2" }))).toEqual({ v: "a2" });
  });
});
