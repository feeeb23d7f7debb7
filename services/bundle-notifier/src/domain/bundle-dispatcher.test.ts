import { createMemoryLogger } from "@meshid/telemetry";
import { systemClock } from "../notifier";
import type { BundleTarget, TargetWrite } from "../ports";
import type { NotifierBundle } from "./bundle";
import { createBundleDispatcher, type BundleDispatcher } from "./bundle-dispatcher";
import { PartialTargetFailure } from "./partial-target-failure";

function bundle(sequenceNumber: number): NotifierBundle {
  return {
    trustDomain: "example.org",
    sequenceNumber,
    pem: `pem#${sequenceNumber}`,
    spiffeJwks: `jwks#${sequenceNumber}`,
  };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A CA stand-in for the port: a bundle, open streams that can be fed, failed or stalled. */
function createFakeCa(initial: NotifierBundle) {
  let current = initial;
  let down = false;
  let stalled = false;
  let getBundleCalls = 0;
  const streams = new Set<{ push: (b: NotifierBundle) => void; fail: (e: Error) => void }>();
  return {
    set(b: NotifierBundle): void {
      current = b;
      if (!stalled) for (const s of streams) s.push(b);
    },
    /** Breaks open streams and refuses new ones until `up()`. */
    down(): void {
      down = true;
      for (const s of streams) s.fail(new Error("UNAVAILABLE: connection refused"));
    },
    up(): void {
      down = false;
    },
    /** Open streams stay open but deliver nothing more. */
    stall(): void {
      stalled = true;
    },
    getBundleCalls: () => getBundleCalls,
    openStreams: () => streams.size,
    client: {
      async *watchBundle(signal: AbortSignal): AsyncIterable<NotifierBundle> {
        if (down) throw new Error("UNAVAILABLE: connection refused");
        const queue: NotifierBundle[] = [current];
        let failure: Error | undefined;
        let wake: (() => void) | undefined;
        const entry = {
          push: (b: NotifierBundle) => {
            queue.push(b);
            wake?.();
          },
          fail: (e: Error) => {
            failure = e;
            wake?.();
          },
        };
        const onAbort = (): void => wake?.();
        signal.addEventListener("abort", onAbort);
        streams.add(entry);
        try {
          while (!signal.aborted) {
            if (failure !== undefined) throw failure;
            const next = queue.shift();
            if (next !== undefined) {
              yield next;
              continue;
            }
            await new Promise<void>((r) => (wake = r));
          }
        } finally {
          streams.delete(entry);
          signal.removeEventListener("abort", onAbort);
        }
      },
      getBundle(): Promise<NotifierBundle> {
        getBundleCalls++;
        return down ? Promise.reject(new Error("UNAVAILABLE")) : Promise.resolve(current);
      },
    },
  };
}

/** A target that records what it was given and writes when the sequence differs. */
function createRecordingTarget(name: string) {
  const applied: number[] = [];
  let held: number | undefined;
  let failuresLeft = 0;
  const target: BundleTarget = {
    name,
    apply(b): Promise<TargetWrite[]> {
      applied.push(b.sequenceNumber);
      if (failuresLeft > 0) {
        failuresLeft--;
        return Promise.reject(new Error(`${name} refused`));
      }
      if (held === b.sequenceNumber) return Promise.resolve([]);
      held = b.sequenceNumber;
      return Promise.resolve([{ target: `${name}/object` }]);
    },
  };
  return {
    target,
    applied,
    held: () => held,
    failNext(times: number): void {
      failuresLeft = times;
    },
  };
}

/** A queue of wake-up sequence numbers. */
function createWakeups() {
  const queue: number[] = [];
  let wake: (() => void) | undefined;
  return {
    push(n: number): void {
      queue.push(n);
      wake?.();
    },
    iterable: {
      async *[Symbol.asyncIterator](): AsyncIterator<number> {
        for (;;) {
          const next = queue.shift();
          if (next !== undefined) yield next;
          else await new Promise<void>((r) => (wake = r));
        }
      },
    },
  };
}

describe("bundle dispatcher", () => {
  const running: { stop: AbortController; done: Promise<void> }[] = [];

  function start(d: BundleDispatcher): void {
    const stop = new AbortController();
    running.push({ stop, done: d.run(stop.signal) });
  }

  afterEach(async () => {
    for (const r of running.splice(0)) {
      r.stop.abort();
      await r.done;
    }
  });

  it("bundle dispatcher – every target gets the bundle and each change; ready after each wrote once; one bundle.published per write", async () => {
    const ca = createFakeCa(bundle(1));
    const a = createRecordingTarget("a");
    const b = createRecordingTarget("b");
    const published: { sequenceNumber: number; target: string }[] = [];
    const d = createBundleDispatcher({
      ca: ca.client,
      targets: [a.target, b.target],
      published: {
        publish: (p) => {
          published.push(p);
          return Promise.resolve();
        },
      },
      clock: systemClock,
      logger: createMemoryLogger().logger,
      retry: { initialDelayMs: 10, maxDelayMs: 50 },
      resyncIntervalMs: 3_600_000,
    });
    expect(d.ready()).toBe(false);
    start(d);
    await waitFor("both targets at 1", () => a.held() === 1 && b.held() === 1);
    await waitFor("ready", () => d.ready());
    ca.set(bundle(2));
    await waitFor("both targets at 2", () => a.held() === 2 && b.held() === 2);
    const order = (x: { sequenceNumber: number; target: string }): string =>
      `${x.sequenceNumber}:${x.target}`;
    expect(published.map(order).sort()).toEqual([
      "1:a/object",
      "1:b/object",
      "2:a/object",
      "2:b/object",
    ]);
    expect(d.status()).toMatchObject({
      caConnected: true,
      sequenceNumber: 2,
      targets: [
        { name: "a", ready: true, lastSequenceNumber: 2, writes: 2, errors: 0 },
        { name: "b", ready: true, lastSequenceNumber: 2, writes: 2, errors: 0 },
      ],
    });
  });

  it("bundle dispatcher – a failing target is retried with backoff and never holds the others back", async () => {
    const ca = createFakeCa(bundle(1));
    const good = createRecordingTarget("good");
    const flaky = createRecordingTarget("flaky");
    flaky.failNext(3);
    const d = createBundleDispatcher({
      ca: ca.client,
      targets: [flaky.target, good.target],
      clock: systemClock,
      logger: createMemoryLogger().logger,
      retry: { initialDelayMs: 10, maxDelayMs: 40 },
      resyncIntervalMs: 3_600_000,
    });
    start(d);
    await waitFor("good target written", () => good.held() === 1);
    await waitFor("flaky target written after its failures", () => flaky.held() === 1);
    expect(flaky.applied).toEqual([1, 1, 1, 1]);
    const flakyStatus = d.status().targets.find((t) => t.name === "flaky");
    expect(flakyStatus).toMatchObject({ ready: true, errors: 3 });
    expect(flakyStatus?.lastError).toBeUndefined();
    await waitFor("ready", () => d.ready());
  });

  it("bundle dispatcher – writes made before a partial failure are announced, and the apply is retried", async () => {
    const ca = createFakeCa(bundle(1));
    let calls = 0;
    const partial: BundleTarget = {
      name: "multi",
      apply() {
        calls++;
        if (calls === 1) {
          return Promise.reject(
            new PartialTargetFailure([{ target: "multi/one" }], new Error("two failed")),
          );
        }
        return Promise.resolve(calls === 2 ? [{ target: "multi/two" }] : []);
      },
    };
    const published: string[] = [];
    const d = createBundleDispatcher({
      ca: ca.client,
      targets: [partial],
      published: {
        publish: (p) => {
          published.push(`${p.sequenceNumber}:${p.target}`);
          return Promise.resolve();
        },
      },
      clock: systemClock,
      logger: createMemoryLogger().logger,
      retry: { initialDelayMs: 10, maxDelayMs: 40 },
      resyncIntervalMs: 3_600_000,
    });
    start(d);
    await waitFor("ready", () => d.ready());
    expect(published).toEqual(["1:multi/one", "1:multi/two"]);
    expect(d.status().targets[0]).toMatchObject({ writes: 2, errors: 1, ready: true });
  });

  it("bundle dispatcher – a broken stream is re-opened with backoff; not ready while the CA is down; a change made meanwhile arrives", async () => {
    const ca = createFakeCa(bundle(1));
    const t = createRecordingTarget("t");
    const d = createBundleDispatcher({
      ca: ca.client,
      targets: [t.target],
      clock: systemClock,
      logger: createMemoryLogger().logger,
      retry: { initialDelayMs: 10, maxDelayMs: 40 },
      resyncIntervalMs: 3_600_000,
    });
    start(d);
    await waitFor("ready", () => d.ready());
    ca.down();
    await waitFor("not ready", () => !d.ready());
    expect(d.status().caConnected).toBe(false);
    ca.set(bundle(2));
    ca.up();
    await waitFor("target at 2", () => t.held() === 2);
    await waitFor("ready again", () => d.ready());
    expect(d.status().streamOpens).toBeGreaterThanOrEqual(2);
  });

  it("bundle dispatcher – a bundle.updated wake-up with a newer sequence re-fetches past a stalled stream; older ones are ignored", async () => {
    const ca = createFakeCa(bundle(1));
    const t = createRecordingTarget("t");
    const wakeups = createWakeups();
    const d = createBundleDispatcher({
      ca: ca.client,
      targets: [t.target],
      wakeups: wakeups.iterable,
      clock: systemClock,
      logger: createMemoryLogger().logger,
      retry: { initialDelayMs: 10, maxDelayMs: 40 },
      resyncIntervalMs: 3_600_000,
    });
    start(d);
    await waitFor("target at 1", () => t.held() === 1);
    wakeups.push(1);
    ca.stall();
    ca.set(bundle(2));
    wakeups.push(2);
    await waitFor("target at 2 through GetBundle", () => t.held() === 2);
    expect(ca.getBundleCalls()).toBe(1);
  });

  it("bundle dispatcher – the resync re-applies every target without a new bundle", async () => {
    const ca = createFakeCa(bundle(1));
    const t = createRecordingTarget("t");
    const d = createBundleDispatcher({
      ca: ca.client,
      targets: [t.target],
      clock: systemClock,
      logger: createMemoryLogger().logger,
      retry: { initialDelayMs: 10, maxDelayMs: 40 },
      resyncIntervalMs: 20,
    });
    start(d);
    await waitFor("three applies of the same bundle", () => t.applied.length >= 3);
    expect(new Set(t.applied)).toEqual(new Set([1]));
    expect(d.status().targets[0]?.writes).toBe(1);
  });
});
