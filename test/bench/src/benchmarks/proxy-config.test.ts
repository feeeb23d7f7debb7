// The proxy-config benchmark in quick mode: it runs end to end against the built service and
// prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { PROXY_CONFIG_MAIN } from "./proxy-config";

jest.setTimeout(300_000);

describe("proxy-config benchmark", () => {
  test("proxy-config bench – quick mode prints one JSON line with fan-out and latency metrics", async () => {
    expect(existsSync(PROXY_CONFIG_MAIN)).toBe(true);
    const lines = await runQuickBenchmark("proxy-config", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? "{}") as Record<string, unknown>;
    expect(result).toMatchObject({ benchmark: "proxy-config", streams: 20, modeChanges: 2 });
    for (const key of [
      "firstMessageP99Ms",
      "fanOutP50Ms",
      "fanOutMaxMs",
      "getP50Ms",
      "rssPerStreamKb",
    ]) {
      expect(typeof result[key]).toBe("number");
    }
  });
});
