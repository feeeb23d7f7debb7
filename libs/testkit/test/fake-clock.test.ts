import { createFakeClock } from "../src/fake-clock";

const START = new Date("2026-01-01T00:00:00.000Z");

describe("fake clock", () => {
  test("fake clock – now starts at the given date and returns fresh Dates", () => {
    const clock = createFakeClock(START);
    const a = clock.now();
    a.setTime(0);
    expect(clock.now().toISOString()).toBe(START.toISOString());
  });

  test("fake clock – rejects an invalid start date", () => {
    expect(() => createFakeClock(new Date(Number.NaN))).toThrow(RangeError);
  });

  test("fake clock – sleep resolves only once enough time is advanced", async () => {
    const clock = createFakeClock(START);
    let done = false;
    const p = clock.sleep(1_000).then(() => {
      done = true;
    });
    await clock.advance(999);
    expect(done).toBe(false);
    expect(clock.pendingSleeps()).toBe(1);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);
    expect(clock.pendingSleeps()).toBe(0);
    expect(clock.now().getTime()).toBe(START.getTime() + 1_000);
  });

  test("fake clock – advance resolves due sleeps in due order and shows their due time", async () => {
    const clock = createFakeClock(START);
    const seen: [string, number][] = [];
    const track = (name: string, ms: number): Promise<void> =>
      clock.sleep(ms).then(() => {
        seen.push([name, clock.now().getTime() - START.getTime()]);
      });
    const all = Promise.all([track("c", 300), track("a", 100), track("b", 200), track("a2", 100)]);
    await clock.advance(1_000);
    await all;
    expect(seen).toEqual([
      ["a", 100],
      ["a2", 100],
      ["b", 200],
      ["c", 300],
    ]);
    expect(clock.now().getTime()).toBe(START.getTime() + 1_000);
  });

  test("fake clock – sleeps started by woken code within the same advance are resolved too", async () => {
    const clock = createFakeClock(START);
    const wakes: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 5; i++) {
        await clock.sleep(100);
        wakes.push(clock.now().getTime() - START.getTime());
      }
    })();
    await clock.advance(350);
    expect(wakes).toEqual([100, 200, 300]);
    await clock.advance(1_000);
    await loop;
    expect(wakes).toEqual([100, 200, 300, 400, 500]);
  });

  test("fake clock – sleep of zero or less resolves without advancing", async () => {
    const clock = createFakeClock(START);
    await clock.sleep(0);
    await clock.sleep(-5);
    expect(clock.pendingSleeps()).toBe(0);
  });

  test("fake clock – abort rejects a pending sleep with the signal's reason and drops it", async () => {
    const clock = createFakeClock(START);
    const ac = new AbortController();
    const p = clock.sleep(1_000, ac.signal);
    expect(clock.pendingSleeps()).toBe(1);
    const reason = new Error("stop");
    ac.abort(reason);
    await expect(p).rejects.toBe(reason);
    expect(clock.pendingSleeps()).toBe(0);
  });

  test("fake clock – an already aborted signal rejects at once", async () => {
    const clock = createFakeClock(START);
    const ac = new AbortController();
    ac.abort();
    await expect(clock.sleep(10, ac.signal)).rejects.toMatchObject({ name: "AbortError" });
    expect(clock.pendingSleeps()).toBe(0);
  });

  test("fake clock – set jumps the wall time without waking sleeps", async () => {
    const clock = createFakeClock(START);
    let done = false;
    const p = clock.sleep(1_000).then(() => {
      done = true;
    });
    clock.set(new Date(START.getTime() + 86_400_000));
    await clock.advance(0);
    expect(done).toBe(false);
    expect(clock.now().getTime()).toBe(START.getTime() + 86_400_000);
    clock.set(START);
    await clock.advance(1_000);
    await p;
    expect(done).toBe(true);
    expect(clock.now().getTime()).toBe(START.getTime() + 1_000);
  });

  test("fake clock – whenSleeping resolves once enough sleeps are pending", async () => {
    const clock = createFakeClock(START);
    await expect(Promise.race([clock.whenSleeping(), Promise.resolve("no")])).resolves.toBe("no");
    const waiting = clock.whenSleeping(2);
    void clock.sleep(10);
    let resolved = false;
    void waiting.then(() => {
      resolved = true;
    });
    await Promise.resolve();
    expect(resolved).toBe(false);
    void clock.sleep(20);
    await waiting;
    await clock.whenSleeping(1);
    await clock.advance(20);
    expect(clock.pendingSleeps()).toBe(0);
  });

  test("fake clock – advance refuses negative or non-finite amounts", async () => {
    const clock = createFakeClock(START);
    await expect(clock.advance(-1)).rejects.toThrow(RangeError);
    await expect(clock.advance(Number.POSITIVE_INFINITY)).rejects.toThrow(RangeError);
    expect(() => clock.set(new Date(Number.NaN))).toThrow(RangeError);
  });
});
