// The sidecar benchmark in quick mode: it runs end to end against the built CA, agent and
// sidecar and prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { SIDECAR_MAIN } from "./sidecar";

jest.setTimeout(300_000);

describe("sidecar benchmark", () => {
  test("sidecar bench – quick mode prints one JSON line with the rotation latencies", async () => {
    expect(existsSync(SIDECAR_MAIN)).toBe(true);
    const lines = await runQuickBenchmark("sidecar", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(result).toMatchObject({ benchmark: "sidecar", rotations: 3 });
    for (const key of [
      "rotationToNginxP50Ms",
      "rotationToNginxP99Ms",
      "rotationToNginxMaxMs",
      "rotationToNginxMinMs",
      "handshakeProbes",
    ]) {
      expect(typeof result[key]).toBe("number");
    }
  });
});
