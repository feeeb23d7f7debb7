// The agent benchmark in quick mode: it runs end to end against the built CA and agent and
// prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { AGENT_MAIN, gaugeValue, poissonArrivals, processRssBytes, seededRandom } from "./agent";

jest.setTimeout(180_000);

describe("agent benchmark", () => {
  test("agent bench – reads a gauge from Prometheus text", () => {
    const text = [
      "# HELP meshid_agent_svids_cached SVIDs held by the cache",
      "# TYPE meshid_agent_svids_cached gauge",
      'meshid_agent_svids_cached{otel_scope_name="x"} 1201',
      "meshid_agent_workload_streams 3",
    ].join("\n");
    expect(gaugeValue(text, "meshid_agent_svids_cached")).toBe(1201);
    expect(gaugeValue(text, "meshid_agent_workload_streams")).toBe(3);
    expect(gaugeValue(text, "meshid_agent_missing")).toBeUndefined();
  });

  test("agent bench – reads this process's RSS from /proc", () => {
    expect(processRssBytes(process.pid)).toBeGreaterThan(1024 * 1024);
  });

  test("agent bench – Poisson arrivals are increasing, seeded and span about the mean", () => {
    const a = poissonArrivals(1_000, 1_000, seededRandom(7));
    expect(a).toEqual(poissonArrivals(1_000, 1_000, seededRandom(7)));
    expect(a.every((t, i) => i === 0 || t >= a[i - 1]!)).toBe(true);
    expect(a[a.length - 1]).toBeGreaterThan(800);
    expect(a[a.length - 1]).toBeLessThan(1_200);
  });

  test("agent bench – quick mode prints one JSON line with the agent metrics", async () => {
    expect(existsSync(AGENT_MAIN)).toBe(true);
    const lines = await runQuickBenchmark("agent", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(result).toMatchObject({
      benchmark: "agent",
      streamEntries: 5,
      concurrentWorkloads: 5,
      firstResponseSvidsPerMessage: 1,
      memoryEntries: 20,
      memoryEntriesWarm: 40,
    });
    for (const key of [
      "entryToStreamP50Ms",
      "entryToStreamP99Ms",
      "firstResponseP50Ms",
      "firstResponseP99Ms",
      "firstResponseColdP99Ms",
      "firstResponseBurstP50Ms",
      "firstResponseBurstP99Ms",
      "firstResponsePacedAgentCpuMsPerCall",
      "bytesPerCachedSvid",
      "bytesPerCachedSvidFresh",
      "bytesPerCachedSvidSecond",
      "bytesPerCachedSvidThird",
      "agentRssMiB",
    ]) {
      expect(typeof result[key]).toBe("number");
    }
  });
});
