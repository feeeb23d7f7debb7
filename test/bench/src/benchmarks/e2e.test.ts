// The e2e benchmark in quick mode: it runs end to end against the built services (a small
// burst) and prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runBenchmarks } from "../runner";
import { WORKLOAD_PROBE_SOURCE } from "./e2e";

jest.setTimeout(300_000);

describe("e2e benchmark", () => {
  test("e2e bench – quick mode prints one JSON line: every pod got its SVID, latencies and memory", async () => {
    expect(existsSync(WORKLOAD_PROBE_SOURCE)).toBe(true);
    const lines: string[] = [];
    await runBenchmarks({
      names: ["e2e"],
      output: (l) => lines.push(l),
      progress: () => {},
      quick: true,
      dir: __dirname,
    });
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? "{}") as Record<string, number | string>;
    expect(result.benchmark).toBe("e2e");
    expect(result.pods).toBe(20);
    for (const k of ["podToSvidP50Ms", "podToSvidP99Ms", "podToSvidMaxMs", "controlPlaneRssMb"]) {
      expect(typeof result[k]).toBe("number");
    }
    expect(result.podToSvidP50Ms as number).toBeLessThanOrEqual(result.podToSvidMaxMs as number);
    expect(result.controlPlaneRssMb as number).toBeGreaterThan(0);
  });
});
