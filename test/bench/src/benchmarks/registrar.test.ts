// The registrar benchmark in quick mode: it runs end to end against the built CA and registrar
// and prints its metrics. No timing assertions.
import { existsSync } from "node:fs";
import { runQuickBenchmark } from "../runner";
import { REGISTRAR_MAIN } from "./registrar";

jest.setTimeout(180_000);

describe("registrar benchmark", () => {
  test("registrar bench – quick mode prints one JSON line: one entry per pod at the CA", async () => {
    expect(existsSync(REGISTRAR_MAIN)).toBe(true);
    const lines = await runQuickBenchmark("registrar", __dirname);
    expect(lines).toHaveLength(1);
    const result = JSON.parse(lines[0] ?? "{}") as Record<string, number | string>;
    expect(result.benchmark).toBe("registrar");
    expect(result.entriesAtCa).toBe(result.pods);
    for (const k of ["burstRegisteredMs", "podToEntryP50Ms", "podToEntryP99Ms"]) {
      expect(typeof result[k]).toBe("number");
    }
  });
});
