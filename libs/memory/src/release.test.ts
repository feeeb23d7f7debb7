import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { collectGarbage, memoryReleaseSupport, releaseFreedMemory } from "./release";

const MiB = 2 ** 20;

/** A full GC for the test itself, to tell what the GC frees from what the trim gives back. */
function testGc(): void {
  setFlagsFromString("--expose-gc");
  try {
    (runInNewContext("gc") as () => void)();
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}

describe("releaseFreedMemory", () => {
  it("can collect and trim on this machine (glibc)", () => {
    expect(memoryReleaseSupport()).toEqual({ gc: true, trim: true });
  });

  it("does not leave gc on the global object", async () => {
    await releaseFreedMemory();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    expect(runInNewContext("typeof gc")).toBe("undefined");
  });

  it("gives back freed malloc pages that a garbage collection alone leaves resident", async () => {
    // 96 MiB of 16 KiB backing stores (malloc'd, below the mmap threshold); one in eight
    // survives, so the freed ones are holes inside the heap that free() cannot return.
    let buffers: Buffer[] = Array.from({ length: 6144 }, () => Buffer.alloc(16 * 1024, 1));
    const survivors = buffers.filter((_, i) => i % 8 === 0);
    buffers = [];
    testGc();
    const afterGc = process.memoryUsage.rss();

    const result = await releaseFreedMemory();

    expect(result.trimmed).toBe(true);
    expect(result.gcMs).toBeGreaterThanOrEqual(0);
    expect(result.trimMs).toBeGreaterThanOrEqual(0);
    expect(result.rssAfterBytes).toBe(process.memoryUsage.rss());
    // Most of the 84 MiB of holes go back to the kernel.
    expect(afterGc - result.rssAfterBytes).toBeGreaterThan(40 * MiB);
    expect(survivors).toHaveLength(768);
    expect(buffers).toHaveLength(0);
  });

  it("collects garbage on request, without gc on the global object", () => {
    let garbage: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i }));
    expect(garbage).toHaveLength(200_000);
    garbage = undefined;
    const before = process.memoryUsage().heapUsed;
    expect(collectGarbage()).toBe(true);
    // 200,000 small objects and their array: several MiB.
    expect(before - process.memoryUsage().heapUsed).toBeGreaterThan(4 * MiB);
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
  });

  it("is harmless when there is nothing to give back", async () => {
    await releaseFreedMemory({ trimAfterGcMs: 0 });
    const result = await releaseFreedMemory({ trimAfterGcMs: 0 });
    expect(result.rssBeforeBytes).toBeGreaterThan(0);
    expect(result.rssAfterBytes).toBeGreaterThan(0);
  });
});
