import {
  MATCH_ALL,
  matchesLabelSelector,
  parseLabelSelector,
  type LabelSelector,
} from "./label-selector";

function parse(value: unknown): LabelSelector {
  const s = parseLabelSelector(value, "sel");
  if (typeof s === "string") throw new Error(s);
  return s;
}

describe("label selectors", () => {
  it("label selector – matchLabels and every operator", () => {
    const s = parse({
      matchLabels: { app: "web" },
      matchExpressions: [
        { key: "tier", operator: "In", values: ["front", "edge"] },
        { key: "env", operator: "NotIn", values: ["dev"] },
        { key: "team", operator: "Exists" },
        { key: "legacy", operator: "DoesNotExist" },
      ],
    });
    expect(matchesLabelSelector(s, { app: "web", tier: "front", team: "a" })).toBe(true);
    expect(matchesLabelSelector(s, { app: "web", tier: "front", team: "a", env: "dev" })).toBe(
      false,
    );
    expect(matchesLabelSelector(s, { app: "web", tier: "back", team: "a" })).toBe(false);
    expect(matchesLabelSelector(s, { app: "web", tier: "front" })).toBe(false);
    expect(matchesLabelSelector(s, { app: "web", tier: "edge", team: "a", legacy: "" })).toBe(
      false,
    );
    expect(parse(undefined)).toBe(MATCH_ALL);
    expect(matchesLabelSelector(MATCH_ALL, {})).toBe(true);
  });

  it("label selector – malformed selectors are described, not thrown", () => {
    expect(parseLabelSelector("x", "sel")).toBe("sel must be an object");
    expect(parseLabelSelector({ matchFields: {} }, "sel")).toMatch(/unknown field "matchFields"/);
    expect(parseLabelSelector({ matchLabels: { a: 1 } }, "sel")).toMatch(/must be a string/);
    expect(
      parseLabelSelector({ matchExpressions: [{ key: "a", operator: "Near" }] }, "sel"),
    ).toMatch(/operator/);
    expect(
      parseLabelSelector({ matchExpressions: [{ key: "a", operator: "In", values: [] }] }, "sel"),
    ).toMatch(/non-empty/);
    expect(
      parseLabelSelector(
        { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] },
        "sel",
      ),
    ).toMatch(/empty for Exists/);
  });
});
