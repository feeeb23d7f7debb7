// The ca benchmark in quick mode: it runs end to end against the built CA (signing and sync
// phases) and prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { CA_MAIN, percentile, processCpuSeconds } from "./ca";

jest.setTimeout(120_000);

describe("ca benchmark", () => {
  test("ca bench – percentile takes the nearest rank", () => {
    expect(percentile([], 99)).toBe(0);
    expect(percentile([5, 1, 3], 50)).toBe(3);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 10)).toBe(1);
  });

  test("ca bench – reads this process's CPU time from /proc", () => {
    expect(processCpuSeconds(process.pid)).toBeGreaterThan(0);
  });

  test("ca bench – quick mode prints one JSON line with the CA metrics", async () => {
    expect(existsSync(CA_MAIN)).toBe(true);
    const lines = await runQuickBenchmark("ca", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(result).toMatchObject({ benchmark: "ca", clients: 4, failedItems: 0 });
    for (const key of [
      "svidsPerSecond",
      "batchP99Ms",
      "caCpuSecondsPer1000Svids",
      "rawLimitPerSecond",
      "caRawLimitRatio",
      "syncFullP50Ms",
      "syncDeltaP50Ms",
      "syncDeltaWithIdsP50Ms",
      "syncDeltaVsFullRatio",
      "syncDeltaVsWithIdsRatio",
      "syncFullCaCpuMs",
      "syncDeltaCaCpuMs",
      "syncDeltaWithIdsCaCpuMs",
      "syncFullBytes",
      "syncDeltaBytes",
      "syncDeltaWithIdsBytes",
    ]) {
      expect(typeof result[key]).toBe("number");
    }
    expect(result.svids as number).toBeGreaterThan(0);
    // Quick mode: 20 entries, 3 timed syncs of each kind (the phase checks every answer).
    expect(result).toMatchObject({ syncEntries: 20, syncRounds: 3 });
    // The delta as agents ask for it carries no ID list, so it is the smaller answer.
    expect(result.syncDeltaBytes as number).toBeLessThan(result.syncDeltaWithIdsBytes as number);
  });
});
