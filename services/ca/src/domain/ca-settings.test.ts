import { isMeshidError } from "@meshid/errors";
import type { KeyType } from "@meshid/pki";
import { checkCaSettings, MIN_CA_TTL_SECONDS, svidTtlCutShortByRotation } from "./ca-settings";

function problemsOf(settings: Parameters<typeof checkCaSettings>[0]): string | undefined {
  try {
    checkCaSettings(settings);
    return undefined;
  } catch (err) {
    expect(isMeshidError(err, "ca.settings.invalid")).toBe(true);
    return (err as Error).message;
  }
}

describe("ca settings", () => {
  test.each([
    ["the defaults", { caTtlSeconds: 720 * 3_600, svidTtlSeconds: 3_600, caKeyType: "ec-p256" }],
    ["the minimum caTTL", { caTtlSeconds: MIN_CA_TTL_SECONDS }],
    ["an empty update", {}],
    ["rsa-4096", { caKeyType: "rsa-4096" }],
  ] as const)("ca settings – accepts %s", (_name, settings) => {
    expect(problemsOf(settings)).toBeUndefined();
  });

  test.each([
    ["caTTL below 24h", { caTtlSeconds: MIN_CA_TTL_SECONDS - 1 }, /caTtlSeconds/],
    ["a fractional caTTL", { caTtlSeconds: 86_400.5 }, /caTtlSeconds/],
    ["svidTTL 0", { svidTtlSeconds: 0 }, /svidTtlSeconds/],
    ["a negative svidTTL", { svidTtlSeconds: -1 }, /svidTtlSeconds/],
    ["an unknown key type", { caKeyType: "rsa-1024" as KeyType }, /caKeyType/],
  ] as const)("ca settings – refuses %s", (_name, settings, message) => {
    expect(problemsOf(settings)).toMatch(message);
  });

  test("ca settings – lists every problem in one error", () => {
    const message = problemsOf({ caTtlSeconds: 1, svidTtlSeconds: 0, caKeyType: "x" as KeyType });
    expect(message).toMatch(/caTtlSeconds.*svidTtlSeconds.*caKeyType/);
  });

  test("ca settings – svidTTL longer than caTTL/6 is cut short by rotation", () => {
    expect(svidTtlCutShortByRotation({ caTtlSeconds: 720 * 3_600, svidTtlSeconds: 3_600 })).toBe(
      false,
    );
    expect(svidTtlCutShortByRotation({ caTtlSeconds: 24 * 3_600, svidTtlSeconds: 4 * 3_600 })).toBe(
      false,
    );
    expect(
      svidTtlCutShortByRotation({ caTtlSeconds: 24 * 3_600, svidTtlSeconds: 4 * 3_600 + 1 }),
    ).toBe(true);
  });
});
