// The bundle-notifier benchmark in quick mode: it runs end to end against the built CA and
// notifier and prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { BUNDLE_NOTIFIER_MAIN } from "./bundle-notifier";

jest.setTimeout(180_000);

describe("bundle-notifier benchmark", () => {
  test("bundle-notifier bench – quick mode prints one JSON line: every bundle reached every target, one ConfigMap write per bundle", async () => {
    expect(existsSync(BUNDLE_NOTIFIER_MAIN)).toBe(true);
    const lines = await runQuickBenchmark("bundle-notifier", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? "{}") as Record<string, number | string>;
    expect(result.benchmark).toBe("bundle-notifier");
    expect(result.replicas).toBe(2);
    expect(result.bundleChanges).toBeGreaterThanOrEqual(2);
    expect(result.configMapWritesPerBundle).toBe(1);
    for (const k of [
      "rotationToConfigMapP50Ms",
      "rotationToConfigMapP99Ms",
      "rotationToAllTargetsP99Ms",
    ]) {
      expect(typeof result[k]).toBe("number");
    }
  });
});
