import type { MemoryReleaseResult } from "./release";
import { createMemoryReleaser, type MemoryReleaserOptions } from "./releaser";

const QUIET_MS = 30;

function fakeRelease(dropBytes = 1000): {
  calls: number;
  release: () => Promise<MemoryReleaseResult>;
} {
  const state = {
    calls: 0,
    release(): Promise<MemoryReleaseResult> {
      state.calls++;
      return Promise.resolve({
        rssBeforeBytes: 5000,
        rssAfterBytes: 5000 - dropBytes,
        gcMs: 1,
        trimMs: 1,
        trimmed: true,
      });
    },
  };
  return state;
}

function releaser(overrides: Partial<MemoryReleaserOptions> = {}) {
  const fake = fakeRelease();
  const done: number[] = [];
  const r = createMemoryReleaser({
    minWork: 10,
    quietMs: QUIET_MS,
    release: fake.release,
    onRelease: (_result, work) => done.push(work),
    ...overrides,
  });
  return { r, fake, done };
}

/** Moves jest's fake clock on by `ms`. */
async function sleep(ms: number): Promise<void> {
  await jest.advanceTimersByTimeAsync(ms);
}

describe("createMemoryReleaser", () => {
  beforeEach(() => {
    jest.useFakeTimers();
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it("releases once, after the work stopped for the quiet time", async () => {
    const { r, fake, done } = releaser();
    r.noteWork(6);
    r.noteWork(6);
    expect(r.stats().pendingWork).toBe(12);
    await sleep(QUIET_MS - 1);
    expect(fake.calls).toBe(0);
    await sleep(1);
    expect(fake.calls).toBe(1);
    expect(done).toEqual([12]);
    expect(r.stats()).toEqual({ pendingWork: 0, releases: 1, releasedBytes: 1000 });
    r.close();
  });

  it("does nothing for less work than minWork", async () => {
    const { r, fake } = releaser();
    r.noteWork(9);
    r.noteWork(0);
    r.noteWork(-5);
    r.noteWork(Number.NaN);
    await sleep(QUIET_MS * 4);
    expect(fake.calls).toBe(0);
    expect(r.stats().pendingWork).toBe(9);
    r.close();
  });

  it("waits while work goes on (never releases in the middle of a burst)", async () => {
    const { r, fake } = releaser();
    for (let i = 0; i < 8; i++) {
      r.noteWork(10);
      await sleep(QUIET_MS - 1);
    }
    expect(fake.calls).toBe(0);
    await sleep(1);
    expect(fake.calls).toBe(1);
    expect(r.stats().releases).toBe(1);
    r.close();
  });

  it("counts a growth as nothing released", async () => {
    const { r } = releaser({ release: fakeRelease(-4096).release });
    r.noteWork(10);
    await sleep(QUIET_MS * 4);
    expect(r.stats()).toMatchObject({ releases: 1, releasedBytes: 0 });
    r.close();
  });

  it("reports a throwing release and carries on", async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const { r } = releaser({
      release: () => {
        calls++;
        return Promise.reject(new Error("boom"));
      },
      onError: (err) => errors.push(err),
    });
    r.noteWork(10);
    await sleep(QUIET_MS * 4);
    r.noteWork(10);
    await sleep(QUIET_MS * 4);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(2);
    r.close();
  });

  it("work during a release is released after its own quiet time", async () => {
    let finish: (() => void) | undefined;
    let calls = 0;
    const { r } = releaser({
      release: () => {
        calls++;
        return new Promise((resolve) => {
          finish = () =>
            resolve({ rssBeforeBytes: 2, rssAfterBytes: 1, gcMs: 0, trimMs: 0, trimmed: true });
        });
      },
    });
    r.noteWork(10);
    await sleep(QUIET_MS);
    expect(calls).toBe(1);
    r.noteWork(10);
    await sleep(QUIET_MS);
    // Still releasing: the new work waits for another quiet time instead of a second GC at once.
    expect(calls).toBe(1);
    finish?.();
    await sleep(QUIET_MS);
    expect(calls).toBe(2);
    finish?.();
    await sleep(0);
    expect(r.stats()).toMatchObject({ releases: 2, pendingWork: 0 });
    r.close();
  });

  it("cancels a pending release on close and ignores later work", async () => {
    const { r, fake } = releaser();
    r.noteWork(10);
    r.close();
    r.noteWork(10);
    await sleep(QUIET_MS * 4);
    expect(fake.calls).toBe(0);
  });

  it("rejects a minWork or quietMs below 1", () => {
    expect(() => createMemoryReleaser({ minWork: 0, quietMs: 10 })).toThrow(
      "minWork must be an integer ≥ 1, got 0",
    );
    expect(() => createMemoryReleaser({ minWork: 1, quietMs: 0.5 })).toThrow(
      "quietMs must be an integer ≥ 1, got 0.5",
    );
  });
});
