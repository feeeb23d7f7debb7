import {
  ANNOTATION_IGNORED_REASON,
  ANNOTATION_INVALID_REASON,
  resolveEffectiveMode,
} from "./effective-mode";

describe("effective mode", () => {
  it("effective mode – no annotation: the mesh mode", () => {
    expect(resolveEffectiveMode("permissive", undefined)).toEqual({
      mode: "permissive",
      source: "global",
    });
  });

  it.each([
    ["off", "off"],
    ["permissive", "strict"],
    ["off", "permissive"],
  ] as const)(
    "effective mode – mesh %s, annotation %s: the annotation wins",
    (global, annotation) => {
      expect(resolveEffectiveMode(global, annotation)).toEqual({
        mode: annotation,
        source: "annotation",
      });
    },
  );

  it("effective mode – mesh strict overrides a weaker annotation and says so", () => {
    expect(resolveEffectiveMode("strict", "permissive")).toMatchObject({
      mode: "strict",
      source: "global strict overrides annotation",
      report: { reason: ANNOTATION_IGNORED_REASON, value: "permissive" },
    });
    expect(resolveEffectiveMode("strict", "strict")).toEqual({ mode: "strict", source: "global" });
  });

  it("effective mode – an invalid value is ignored and reported", () => {
    const r = resolveEffectiveMode("off", "tight");
    expect(r).toMatchObject({ mode: "off", source: "global" });
    expect(r.report).toMatchObject({ reason: ANNOTATION_INVALID_REASON, value: "tight" });
    expect(r.report?.message).toMatch(/must be off, permissive or strict \(got "tight"\)/);
  });
});
