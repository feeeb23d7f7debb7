import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

import { describeContract, type ContractAdapter } from "../src/contract";
import { createTempDir } from "../src/temp-dir";

/** A toy port: named counters. */
interface Counters {
  increment(name: string, by?: number): Promise<number>;
  get(name: string): Promise<number>;
}

function createMapCounters(): Counters {
  const values = new Map<string, number>();
  return {
    increment: (name, by = 1) => {
      const next = (values.get(name) ?? 0) + by;
      values.set(name, next);
      return Promise.resolve(next);
    },
    get: (name) => Promise.resolve(values.get(name) ?? 0),
  };
}

function createFileCounters(path: string): Counters {
  const load = async (): Promise<Record<string, number>> => {
    try {
      return JSON.parse(await readFile(path, "utf8")) as Record<string, number>;
    } catch {
      return {};
    }
  };
  return {
    increment: async (name, by = 1) => {
      const values = await load();
      values[name] = (values[name] ?? 0) + by;
      await writeFile(path, JSON.stringify(values));
      return values[name];
    },
    get: async (name) => (await load())[name] ?? 0,
  };
}

const created: string[] = [];
const cleaned: string[] = [];

const adapters: ContractAdapter<Counters>[] = [
  {
    name: "map",
    create: () => {
      created.push("map");
      return Promise.resolve({
        subject: createMapCounters(),
        cleanup: () => {
          cleaned.push("map");
          return Promise.resolve();
        },
      });
    },
  },
  {
    name: "file",
    create: async () => {
      created.push("file");
      const dir = await createTempDir("contract");
      return {
        subject: createFileCounters(join(dir.path, "counters.json")),
        cleanup: async () => {
          cleaned.push("file");
          await dir.cleanup();
        },
      };
    },
  },
];

describeContract("Counters", adapters, (get) => {
  it("counters – start at zero", async () => {
    expect(await get().get("a")).toBe(0);
  });

  it("counters – increment returns the new value", async () => {
    expect(await get().increment("a")).toBe(1);
    expect(await get().increment("a", 5)).toBe(6);
    expect(await get().get("a")).toBe(6);
  });

  it("counters – each test gets a fresh subject", async () => {
    // Would be 6 if the previous test's subject leaked into this one.
    expect(await get().get("a")).toBe(0);
    expect(await get().increment("b")).toBe(1);
  });
});

describe("describeContract", () => {
  it("contract – ran every contract test once per adapter and cleaned up each subject", () => {
    // Jest runs describe blocks in order, so both adapters' suites have finished by now.
    expect(created).toEqual(["map", "map", "map", "file", "file", "file"]);
    expect(cleaned).toEqual(created);
  });

  it("contract – needs at least one adapter", () => {
    expect(() => describeContract("Empty", [], () => undefined)).toThrow(/no adapters/);
  });
});
