// The e2e benchmark in quick mode: it runs end to end against the built services (a small
// burst) and prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { WORKLOAD_PROBE_SOURCE } from "./e2e";

jest.setTimeout(300_000);

describe("e2e benchmark", () => {
  test("e2e bench – quick mode prints one JSON line: every pod got its SVID, latencies and memory", async () => {
    expect(existsSync(WORKLOAD_PROBE_SOURCE)).toBe(true);
    const lines = await runQuickBenchmark("e2e", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? "{}") as Record<string, number | string>;
    expect(result.benchmark).toBe("e2e");
    expect(result.pods).toBe(20);
    for (const k of ["podToSvidP50Ms", "podToSvidP99Ms", "podToSvidMaxMs", "controlPlaneRssMb"]) {
      expect(typeof result[k]).toBe("number");
    }
    expect(result.podToSvidP50Ms as number).toBeLessThanOrEqual(result.podToSvidMaxMs as number);
    expect(result.controlPlaneRssMb as number).toBeGreaterThan(0);
    expect(result.topology).toBe("separate");
    for (const k of ["caRssMb", "agentRssMb", "registrarRssMb", "bundleNotifierRssMb"]) {
      expect(result[k] as number).toBeGreaterThan(0);
    }
    expect(result.proxyConfigCpuMs).toEqual(expect.any(Number));
  });

  test("e2e bench – combined: the control plane in one process serves the same burst", async () => {
    const lines = await runQuickBenchmark("e2e-combined", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? "{}") as Record<string, number | string>;
    expect(result).toMatchObject({ benchmark: "e2e-combined", topology: "combined", processes: 2 });
    expect(result.pods).toBe(20);
    expect(result.controlPlaneProcessRssMb as number).toBeGreaterThan(0);
    expect(result.agentRssMb as number).toBeGreaterThan(0);
    expect(result.controlPlaneRssMb as number).toBeCloseTo(
      (result.controlPlaneProcessRssMb as number) + (result.agentRssMb as number),
      0,
    );
    expect(result.caRssMb).toBeUndefined();
  });
});
