import { join } from "node:path";
import { loadBenchmarks, runBenchmarks } from "./runner";

const DIR = join(__dirname, "benchmarks");

describe("runner", () => {
  test("runner – finds the pki benchmark", () => {
    expect(loadBenchmarks(DIR).map((b) => b.name)).toContain("pki");
  });

  test("runner – unknown names fail before anything runs", async () => {
    const lines: string[] = [];
    await expect(
      runBenchmarks({
        names: ["nope"],
        output: (l) => lines.push(l),
        progress: () => {},
        dir: DIR,
      }),
    ).rejects.toThrow(/unknown benchmark\(s\): nope/);
    expect(lines).toEqual([]);
  });

  test("runner – pki prints one JSON line with the issuance metrics", async () => {
    const lines: string[] = [];
    const progress: string[] = [];
    await runBenchmarks({
      names: ["pki"],
      output: (l) => lines.push(l),
      progress: (l) => progress.push(l),
      quick: true,
      dir: DIR,
    });
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(result).toMatchObject({ benchmark: "pki", keyType: "ec-p256" });
    for (const key of [
      "pkiIssuedPerSecond",
      "rawLimitPerSecond",
      "pkiIssuanceRatio",
      "rawLimitWithKeyImportPerSecond",
      "genericIssuedPerSecond",
    ]) {
      expect(typeof result[key]).toBe("number");
      expect(result[key] as number).toBeGreaterThan(0);
    }
    expect(progress[0]).toBe("[bench] pki: starting");
  });
});
