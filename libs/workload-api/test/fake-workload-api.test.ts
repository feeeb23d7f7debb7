// The client against a fake Workload API written from the SPIFFE standard: proof that it works
// with any SPIFFE agent (header, retries on PERMISSION_DENIED / UNAVAILABLE / stream end).
import { isMeshidError } from "@meshid/errors";
import { Client, Metadata, credentials, type ServiceError } from "@grpc/grpc-js";
import { createTestCa, type TestCa, type TestSvid } from "@meshid/testkit";
import { Status } from "nice-grpc";
import {
  CALL_REFUSED_CODE,
  SOURCE_CLOSED_CODE,
  createWorkloadX509Source,
  fetchX509Context,
  pickSvidById,
  watchX509Context,
  type WatchRetryEvent,
  type X509Context,
} from "../src";
import { responseOf, startFakeWorkloadApi, type FakeWorkloadApi } from "./fake-workload-api";

jest.setTimeout(60_000);

const FAST_BACKOFF = { initialMs: 10, maxMs: 50 };
const WAIT_MS = 20_000;

/** Reads the next value of `it`, failing after {@link WAIT_MS}. */
async function nextOf<T>(it: AsyncIterator<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no value within ${WAIT_MS} ms`)), WAIT_MS);
  });
  try {
    const result = await Promise.race([it.next(), timeout]);
    if (result.done === true) throw new Error("iterator finished");
    return result.value;
  } finally {
    clearTimeout(timer);
  }
}

async function eventually(check: () => boolean): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("Workload API client against a fake SPIFFE agent", () => {
  let ca: TestCa;
  let one: TestSvid;
  let two: TestSvid;
  let fake: FakeWorkloadApi;

  beforeAll(async () => {
    ca = await createTestCa();
    one = await ca.issueSvid({ spiffeId: "spiffe://example.org/one" });
    two = await ca.issueSvid({ spiffeId: "spiffe://example.org/two" });
  });

  beforeEach(async () => {
    fake = await startFakeWorkloadApi();
  });

  afterEach(async () => {
    await fake.stop();
  });

  it("fake agent – refuses a call without the workload.spiffe.io header (INVALID_ARGUMENT)", async () => {
    const client = new Client(`unix://${fake.socketPath}`, credentials.createInsecure());
    const status = await new Promise<number>((resolve) => {
      const call = client.makeServerStreamRequest(
        "/SpiffeWorkloadAPI/FetchX509SVID",
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        Buffer.alloc(0),
        new Metadata(),
      );
      call.on("data", () => undefined);
      call.on("error", (err: ServiceError) => resolve(err.code));
    });
    client.close();
    expect(status).toBe(Status.INVALID_ARGUMENT);
    expect(fake.stats.withoutHeader).toBe(1);
  });

  it("watch – retries PERMISSION_DENIED and UNAVAILABLE with backoff, then follows rotations and stream ends", async () => {
    fake.script(
      { kind: "refuse", status: Status.PERMISSION_DENIED },
      { kind: "refuse", status: Status.PERMISSION_DENIED },
      { kind: "refuse", status: Status.UNAVAILABLE },
      { kind: "stream", messages: [responseOf([one], ca.rootCertDer)], then: "hold" },
      { kind: "stream", messages: [responseOf([two], ca.rootCertDer)], then: "hold" },
    );
    const controller = new AbortController();
    const retries: WatchRetryEvent[] = [];
    const it = watchX509Context({
      socketPath: fake.socketPath,
      signal: controller.signal,
      backoff: FAST_BACKOFF,
      onRetry: (e) => retries.push(e),
    })[Symbol.asyncIterator]();

    const first = await nextOf(it);
    expect(first.svids.map((s) => s.spiffeId)).toEqual(["spiffe://example.org/one"]);
    expect(retries.map((r) => [r.reason, r.attempt])).toEqual([
      ["PERMISSION_DENIED", 1],
      ["PERMISSION_DENIED", 2],
      ["UNAVAILABLE", 3],
    ]);
    expect(retries.every((r) => r.delayMs > 0 && r.delayMs <= FAST_BACKOFF.maxMs)).toBe(true);

    // A rotation on the same stream.
    const rotated = await ca.issueSvid({ spiffeId: "spiffe://example.org/one" });
    fake.publish(responseOf([rotated, two], ca.rootCertDer));
    const second = await nextOf(it);
    expect(second.svids.map((s) => s.spiffeId)).toEqual([
      "spiffe://example.org/one",
      "spiffe://example.org/two",
    ]);
    expect(second.svids[0]!.serialNumber).not.toBe(first.svids[0]!.serialNumber);

    // The agent ends the stream: the watch calls again.
    fake.endHeld();
    const third = await nextOf(it);
    expect(third.svids.map((s) => s.spiffeId)).toEqual(["spiffe://example.org/two"]);
    expect(retries[retries.length - 1]?.reason).toBe("STREAM_ENDED");
    expect(retries[retries.length - 1]?.attempt).toBe(1);

    expect(fake.stats.withoutHeader).toBe(0);
    controller.abort();
    await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it("watch – an unusable message is retried, never yielded", async () => {
    fake.script(
      { kind: "stream", messages: [{ svids: [], crl: [], federatedBundles: {} }], then: "hold" },
      { kind: "stream", messages: [responseOf([one], ca.rootCertDer)], then: "hold" },
    );
    const controller = new AbortController();
    const retries: string[] = [];
    const it = watchX509Context({
      socketPath: fake.socketPath,
      signal: controller.signal,
      backoff: FAST_BACKOFF,
      onRetry: (e) => retries.push(e.reason),
    })[Symbol.asyncIterator]();
    const context = await nextOf(it);
    expect(context.svids).toHaveLength(1);
    expect(retries).toEqual(["INVALID_RESPONSE"]);
    controller.abort();
    await it.return?.();
  });

  it("watch – INVALID_ARGUMENT from the agent is final (call_refused), not retried forever", async () => {
    fake.script({ kind: "refuse", status: Status.INVALID_ARGUMENT, details: "bad request" });
    const controller = new AbortController();
    const it = watchX509Context({
      socketPath: fake.socketPath,
      signal: controller.signal,
      backoff: FAST_BACKOFF,
    })[Symbol.asyncIterator]();
    let caught: unknown;
    try {
      await nextOf(it);
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, CALL_REFUSED_CODE)).toBe(true);
    expect((caught as { kind: string }).kind).toBe("invalid_argument");
    controller.abort();
  });

  it("watch – aborting while waiting to retry finishes the iterable quietly", async () => {
    const controller = new AbortController();
    let retried = 0;
    const it = watchX509Context({
      socketPath: fake.socketPath,
      signal: controller.signal,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      onRetry: () => {
        retried += 1;
        controller.abort();
      },
    })[Symbol.asyncIterator]();
    await expect(it.next()).resolves.toEqual({ done: true, value: undefined });
    expect(retried).toBe(1);
  });

  it("fetch – returns the first message, maps PERMISSION_DENIED and times out", async () => {
    fake.script(
      { kind: "refuse", status: Status.PERMISSION_DENIED, details: "no identity" },
      { kind: "stream", messages: [responseOf([one, two], ca.rootCertDer)], then: "hold" },
      { kind: "stream", messages: [], then: "hold" },
      { kind: "stream", messages: [], then: "end" },
    );
    let denied: unknown;
    try {
      await fetchX509Context({ socketPath: fake.socketPath });
    } catch (err) {
      denied = err;
    }
    expect((denied as { kind?: string }).kind).toBe("permission_denied");

    const context: X509Context = await fetchX509Context({ socketPath: fake.socketPath });
    expect(context.svids.map((s) => s.spiffeId)).toEqual([
      "spiffe://example.org/one",
      "spiffe://example.org/two",
    ]);
    expect(context.bundles.get("spiffe://example.org")).toHaveLength(1);

    await expect(
      fetchX509Context({ socketPath: fake.socketPath, timeoutMs: 300 }),
    ).rejects.toMatchObject({ kind: "deadline_exceeded" });
    await expect(fetchX509Context({ socketPath: fake.socketPath })).rejects.toMatchObject({
      code: "workload_api.stream_ended",
    });
  });

  it("source – serves the picked SVID, follows its rotations, ignores messages without it", async () => {
    fake.script(
      { kind: "refuse", status: Status.PERMISSION_DENIED },
      { kind: "stream", messages: [responseOf([one, two], ca.rootCertDer)], then: "hold" },
    );
    const source = await createWorkloadX509Source({
      socketPath: fake.socketPath,
      pick: pickSvidById("spiffe://example.org/two"),
      backoff: FAST_BACKOFF,
    });
    try {
      expect(source.svid().spiffeId).toBe("spiffe://example.org/two");
      expect(source.current().certChainPem).toBe(two.certChainPem);
      expect(source.current().keyPem).toBe(two.keyPem);
      expect(source.current().bundlePem).toBe(ca.bundlePem);
      const seen: string[] = [];
      source.subscribe((m) => seen.push(m.certChainPem));

      // Only `one` rotates: nothing changes for this source.
      const oneAgain = await ca.issueSvid({ spiffeId: "spiffe://example.org/one" });
      fake.publish(responseOf([oneAgain, two], ca.rootCertDer));
      // `two` is withdrawn: the source keeps serving it.
      fake.publish(responseOf([oneAgain], ca.rootCertDer));
      const twoAgain = await ca.issueSvid({ spiffeId: "spiffe://example.org/two" });
      fake.publish(responseOf([oneAgain, twoAgain], ca.rootCertDer));
      await eventually(() => seen.length > 0);
      expect(seen).toEqual([twoAgain.certChainPem]);
      expect(source.current().certChainPem).toBe(twoAgain.certChainPem);
      expect(source.context().svids).toHaveLength(2);
    } finally {
      source.close();
    }
    await expect(source.done()).resolves.toEqual({ kind: "closed" });
  });

  it("source – closing (signal) before the first SVID rejects with source_closed", async () => {
    const controller = new AbortController();
    const pending = createWorkloadX509Source({
      socketPath: fake.socketPath,
      signal: controller.signal,
      backoff: FAST_BACKOFF,
    });
    await eventually(() => fake.stats.calls >= 2);
    controller.abort();
    let caught: unknown;
    try {
      await pending;
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, SOURCE_CLOSED_CODE)).toBe(true);
  });
});
