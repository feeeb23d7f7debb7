import { EventEmitter } from "node:events";
import {
  Metadata,
  status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type StatusObject,
} from "@grpc/grpc-js";
import { MeshidError } from "@meshid/errors";
import type { spiffeWorkload } from "@meshid/proto";
import { parseSelector, type Selector } from "@meshid/spiffe";
import { createMemoryLogger } from "@meshid/telemetry";
import type { Meter, ObservableResult } from "@opentelemetry/api";
import type { AgentBundle, CachedSvid, WorkloadIdentity, WorkloadProcess } from "../domain/types";
import type { WatchIdentityOptions, WorkloadAttestation, WorkloadIdentitySource } from "./deps";
import {
  JWT_UNIMPLEMENTED_MESSAGE,
  METRIC_WORKLOAD_API_OPEN_STREAMS,
  NO_IDENTITY_MESSAGE,
  WORKLOAD_API_HEADER,
  bundleToX509BundlesResponse,
  createWorkloadApiHandlers,
  createX509SvidResponseCache,
  identityToX509SvidResponse,
  type WorkloadApiDeps,
} from "./workload-api";

// ---- fixtures -------------------------------------------------------------------------------

const bundle: AgentBundle = {
  trustDomain: "example.org",
  x509AuthoritiesDer: [Uint8Array.of(0x30, 1), Uint8Array.of(0x30, 2)],
  taintedAuthorityIds: [],
  sequenceNumber: 1,
};

function svid(spiffeId: string, seed: number): CachedSvid {
  return {
    entryId: `entry-${seed}`,
    spiffeId,
    hint: `hint-${seed}`,
    certChainDer: [Uint8Array.of(0x30, seed, 1), Uint8Array.of(0x30, seed, 2)],
    privateKeyPkcs8Der: Uint8Array.of(0x30, 0xee, seed, 0xee, 0xee, 0xee),
    serialHex: `0${seed}`,
    notBefore: new Date(0),
    notAfter: new Date(3_600_000),
    rotateAt: new Date(1_800_000),
    authorityId: "aa",
    entryRevision: 1,
  };
}

const svidA = svid("spiffe://example.org/a", 7);
const svidB = svid("spiffe://example.org/b", 8);
const process: WorkloadProcess = { pid: 4242, uid: 1000, gid: 1000 };
const PEER = "connection-1";

/** A list a test pushes into and a watch iterates; the watch ends on abort or `end()`. */
class Feed<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *iterate(signal: AbortSignal): AsyncGenerator<T> {
    const onAbort = (): void => this.wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        if (signal.aborted) return;
        const item = this.items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}

interface FakeSource extends WorkloadIdentitySource {
  readonly identities: Feed<WorkloadIdentity>;
  readonly bundles: Feed<AgentBundle>;
  readonly watches: { selectors: readonly Selector[]; options: WatchIdentityOptions }[];
}

function fakeSource(): FakeSource {
  const identities = new Feed<WorkloadIdentity>();
  const bundles = new Feed<AgentBundle>();
  const watches: FakeSource["watches"] = [];
  return {
    identities,
    bundles,
    watches,
    watchIdentity(selectors, options) {
      watches.push({ selectors, options });
      return identities.iterate(options.signal);
    },
    watchBundle(signal) {
      return bundles.iterate(signal);
    },
  };
}

const unixSelectors = [parseSelector("unix:uid:1000")];

function fakeAttestation(result: Selector[] | Error = unixSelectors): WorkloadAttestation & {
  calls: WorkloadProcess[];
} {
  const calls: WorkloadProcess[] = [];
  return {
    calls,
    attest(p) {
      calls.push(p);
      return result instanceof Error ? Promise.reject(result) : Promise.resolve(result);
    },
  };
}

/** A grpc-js server stream as the handlers see it, recording writes and the final status. */
class FakeStreamCall<Response> extends EventEmitter {
  readonly metadata = new Metadata();
  readonly request = {};
  cancelled = false;
  destroyed = false;
  writableEnded = false;
  readonly written: Response[] = [];
  readonly status: Promise<Partial<StatusObject>>;
  private writeWaiters: (() => void)[] = [];

  constructor(
    private readonly peer = PEER,
    header = true,
  ) {
    super();
    if (header) this.metadata.set(WORKLOAD_API_HEADER, "true");
    this.status = new Promise((resolve) => {
      this.once("error", (s: Partial<StatusObject>) => {
        this.writableEnded = true;
        resolve(s);
      });
      this.once("ended", () => resolve({ code: status.OK }));
    });
  }

  getPeer(): string {
    return this.peer;
  }

  write(message: Response, callback: (err?: Error | null) => void): boolean {
    this.written.push(message);
    for (const waiter of this.writeWaiters.splice(0)) waiter();
    callback(null);
    return true;
  }

  end(): void {
    this.writableEnded = true;
    this.emit("ended");
  }

  /** Resolves once `count` messages have been written. */
  async writes(count: number): Promise<Response[]> {
    while (this.written.length < count) {
      await new Promise<void>((resolve) => this.writeWaiters.push(resolve));
    }
    return this.written;
  }

  cancel(): void {
    this.cancelled = true;
    this.emit("cancelled", "cancelled");
  }

  asCall<Request>(): ServerWritableStream<Request, Response> {
    return this as unknown as ServerWritableStream<Request, Response>;
  }
}

interface GaugeRecord {
  readonly value: number;
  readonly method: unknown;
}

function fakeMeter(): { meter: Meter; readonly records: GaugeRecord[]; open(): number } {
  const callbacks: ((result: ObservableResult) => void)[] = [];
  const collect = (): GaugeRecord[] => {
    const records: GaugeRecord[] = [];
    const result = {
      observe: (value: number, attributes?: Record<string, unknown>) =>
        records.push({ value, method: attributes?.method }),
    } as unknown as ObservableResult;
    for (const cb of callbacks) cb(result);
    return records;
  };
  const meter = {
    createObservableUpDownCounter(name: string) {
      expect(name).toBe(METRIC_WORKLOAD_API_OPEN_STREAMS);
      return {
        addCallback: (cb: (result: ObservableResult) => void) => callbacks.push(cb),
        removeCallback: () => undefined,
      };
    },
  } as unknown as Meter;
  return {
    meter,
    get records() {
      return collect();
    },
    open: () => collect().reduce((sum, r) => sum + r.value, 0),
  };
}

function setup(overrides: Partial<WorkloadApiDeps> = {}) {
  const source = fakeSource();
  const attestation = fakeAttestation();
  const memory = createMemoryLogger();
  const gauge = fakeMeter();
  const handlers = createWorkloadApiHandlers({
    attestation,
    identities: source,
    logger: memory.logger,
    peerProcess: (peer) => (peer === PEER ? process : undefined),
    meter: gauge.meter,
    ...overrides,
  });
  return { source, attestation, memory, gauge, handlers };
}

type SvidCall = FakeStreamCall<spiffeWorkload.X509SVIDResponse>;

// ---- tests ----------------------------------------------------------------------------------

describe("workload API converters", () => {
  it("converters – X509SVIDResponse carries DER chain leaf first, PKCS#8 key, DER bundle, hint", () => {
    const response = identityToX509SvidResponse({ svids: [svidA, svidB], bundle });
    expect(response.crl).toEqual([]);
    expect(response.federatedBundles).toEqual({});
    expect(response.svids).toEqual([
      {
        spiffeId: "spiffe://example.org/a",
        x509Svid: Buffer.from([0x30, 7, 1, 0x30, 7, 2]),
        x509SvidKey: Buffer.from(svidA.privateKeyPkcs8Der),
        bundle: Buffer.from([0x30, 1, 0x30, 2]),
        hint: "hint-7",
      },
      {
        spiffeId: "spiffe://example.org/b",
        x509Svid: Buffer.from([0x30, 8, 1, 0x30, 8, 2]),
        x509SvidKey: Buffer.from(svidB.privateKeyPkcs8Der),
        bundle: Buffer.from([0x30, 1, 0x30, 2]),
        hint: "hint-8",
      },
    ]);
  });

  it("converters – X509BundlesResponse is keyed by the trust-domain ID", () => {
    expect(bundleToX509BundlesResponse(bundle)).toEqual({
      crl: [],
      bundles: { "spiffe://example.org": Buffer.from([0x30, 1, 0x30, 2]) },
    });
  });
});

describe("X509SVIDResponse cache", () => {
  it("response cache – one response object per identity; a rotation, a new SVID or bundle misses", () => {
    const responseOf = createX509SvidResponseCache();
    const first = responseOf({ svids: [svidA], bundle });
    // Another caller (another identity object) with the same SVID records and bundle.
    expect(responseOf({ svids: [svidA], bundle })).toBe(first);
    expect(first).toEqual(identityToX509SvidResponse({ svids: [svidA], bundle }));
    // Rotated: a new record (same entry, new serial and key).
    const rotated = { ...svid("spiffe://example.org/a", 9), entryId: svidA.entryId };
    const afterRotation = responseOf({ svids: [rotated], bundle });
    expect(afterRotation).not.toBe(first);
    expect(afterRotation.svids[0]!.x509SvidKey).toEqual(Buffer.from(rotated.privateKeyPkcs8Der));
    // A record replaced under the same entry id and serial (never reused by the CA) still misses.
    const sameSerial = { ...rotated };
    expect(responseOf({ svids: [sameSerial], bundle })).not.toBe(afterRotation);
    // A new bundle object.
    const newBundle = { ...bundle, sequenceNumber: 2 };
    const withNewBundle = responseOf({ svids: [sameSerial], bundle: newBundle });
    expect(withNewBundle).not.toBe(afterRotation);
    expect(responseOf({ svids: [sameSerial], bundle: newBundle })).toBe(withNewBundle);
    // Two SVIDs are their own identity.
    expect(responseOf({ svids: [svidA, svidB], bundle }).svids).toHaveLength(2);
  });

  it("response cache – a response larger than the bound is built every time", () => {
    const responseOf = createX509SvidResponseCache(10);
    expect(responseOf({ svids: [svidA], bundle })).not.toBe(responseOf({ svids: [svidA], bundle }));
  });

  it("response cache – keeps at most `maxBytes`, dropping the least recently used", () => {
    // A one-SVID response here holds 4 + 6 + 6 bytes of DER, counted twice: 32; two SVIDs 56.
    const responseOf = createX509SvidResponseCache(100);
    const a = responseOf({ svids: [svidA], bundle });
    const b = responseOf({ svids: [svidB], bundle });
    expect(responseOf({ svids: [svidA], bundle })).toBe(a);
    responseOf({ svids: [svidA, svidB], bundle });
    // B was the least recently used: built again; A is still there.
    expect(responseOf({ svids: [svidA], bundle })).toBe(a);
    expect(responseOf({ svids: [svidB], bundle })).not.toBe(b);
  });
});

describe("createWorkloadApiHandlers", () => {
  it("FetchX509SVID – without the workload.spiffe.io header: INVALID_ARGUMENT, nobody attested", async () => {
    const { handlers, attestation, gauge } = setup();
    const call: SvidCall = new FakeStreamCall(PEER, false);
    handlers.fetchX509SVID(call.asCall());
    const s = await call.status;
    expect(s.code).toBe(status.INVALID_ARGUMENT);
    expect(s.details).toMatch(/workload\.spiffe\.io/);
    expect(attestation.calls).toEqual([]);
    await waitFor(() => gauge.open() === 0);
  });

  it("FetchX509SVID – a header value other than true is refused", async () => {
    const { handlers } = setup();
    const call: SvidCall = new FakeStreamCall(PEER, false);
    call.metadata.set(WORKLOAD_API_HEADER, "yes");
    handlers.fetchX509SVID(call.asCall());
    expect((await call.status).code).toBe(status.INVALID_ARGUMENT);
  });

  it("FetchX509SVID – an unknown connection is PERMISSION_DENIED", async () => {
    const { handlers, attestation } = setup();
    const call: SvidCall = new FakeStreamCall("connection-unknown");
    handlers.fetchX509SVID(call.asCall());
    expect((await call.status).code).toBe(status.PERMISSION_DENIED);
    expect(attestation.calls).toEqual([]);
  });

  it.each([
    [
      "permission_denied (PID reused)",
      new MeshidError(
        "permission_denied",
        "agent.attestation.pid_reused",
        "process 4242 was replaced",
      ),
      status.PERMISSION_DENIED,
    ],
    [
      "unavailable (kubelet down)",
      new MeshidError(
        "unavailable",
        "agent.attestation.kubelet_unavailable",
        "kubelet unreachable",
      ),
      status.UNAVAILABLE,
    ],
    ["a plain Error", new Error("boom"), status.PERMISSION_DENIED],
  ])("FetchX509SVID – attestation failing with %s maps to its status", async (_, error, code) => {
    const { handlers, source } = setup({ attestation: fakeAttestation(error) });
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    const s = await call.status;
    expect(s.code).toBe(code);
    expect(source.watches).toEqual([]);
  });

  it("FetchX509SVID – attests the peer's process and watches its selectors with the mint wait", async () => {
    const { handlers, attestation, source } = setup({ mintWaitMs: 1234 });
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [svidA], bundle });
    await call.writes(1);
    expect(attestation.calls).toEqual([process]);
    expect(source.watches).toHaveLength(1);
    expect(source.watches[0]!.selectors).toEqual(unixSelectors);
    expect(source.watches[0]!.options.mintWaitMs).toBe(1234);
    call.cancel();
  });

  it("FetchX509SVID – no SVID in the first message: PERMISSION_DENIED no identity issued", async () => {
    const { handlers, source } = setup();
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [], bundle });
    const s = await call.status;
    expect(s).toEqual({ code: status.PERMISSION_DENIED, details: NO_IDENTITY_MESSAGE });
    expect(call.written).toEqual([]);
  });

  it("FetchX509SVID – full state on every change, then PERMISSION_DENIED when all are withdrawn", async () => {
    const { handlers, source, gauge } = setup();
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [svidA], bundle });
    await call.writes(1);
    await waitFor(() => gauge.open() === 1);
    source.identities.push({ svids: [svidA, svidB], bundle });
    source.identities.push({ svids: [svidB], bundle });
    await call.writes(3);
    source.identities.push({ svids: [], bundle });
    const s = await call.status;
    expect(s).toEqual({ code: status.PERMISSION_DENIED, details: NO_IDENTITY_MESSAGE });
    expect(call.written.map((m) => m.svids.map((x) => x.spiffeId))).toEqual([
      ["spiffe://example.org/a"],
      ["spiffe://example.org/a", "spiffe://example.org/b"],
      ["spiffe://example.org/b"],
    ]);
    await waitFor(() => gauge.open() === 0);
    expect(gauge.records.every((r) => r.method === "FetchX509SVID")).toBe(true);
  });

  it("FetchX509SVID – the client going away aborts the watch and sends nothing more", async () => {
    const { handlers, source, gauge } = setup();
    const call: SvidCall = new FakeStreamCall();
    const ended = jest.fn();
    call.on("ended", ended);
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [svidA], bundle });
    await call.writes(1);
    const signal = source.watches[0]!.options.signal;
    expect(signal.aborted).toBe(false);
    call.cancel();
    expect(signal.aborted).toBe(true);
    await waitFor(() => gauge.open() === 0);
    expect(ended).not.toHaveBeenCalled();
  });

  it("FetchX509SVID – server shutdown ends open streams with UNAVAILABLE", async () => {
    const shutdown = new AbortController();
    const { handlers, source } = setup({ shutdownSignal: shutdown.signal });
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [svidA], bundle });
    await call.writes(1);
    shutdown.abort();
    expect((await call.status).code).toBe(status.UNAVAILABLE);

    const late: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(late.asCall());
    expect((await late.status).code).toBe(status.UNAVAILABLE);
  });

  it("FetchX509SVID – an identity source that stops on its own ends the stream UNAVAILABLE", async () => {
    const { handlers, source } = setup();
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [svidA], bundle });
    await call.writes(1);
    source.identities.end();
    expect((await call.status).code).toBe(status.UNAVAILABLE);
  });

  it("FetchX509SVID – streams beyond maxConcurrentStreams get UNAVAILABLE", async () => {
    const { handlers, source } = setup({ maxConcurrentStreams: 1 });
    const first: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(first.asCall());
    source.identities.push({ svids: [svidA], bundle });
    await first.writes(1);
    const second: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(second.asCall());
    expect((await second.status).code).toBe(status.UNAVAILABLE);
    first.cancel();
  });

  it("FetchX509SVID – an unexpected source error is INTERNAL without its message", async () => {
    const { handlers, memory } = setup({
      identities: {
        watchIdentity: () => ({
          [Symbol.asyncIterator]: () => ({
            next: () => Promise.reject(new Error("secret detail")),
          }),
        }),
        watchBundle: () => fakeSource().watchBundle(new AbortController().signal),
      },
    });
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    expect(await call.status).toEqual({ code: status.INTERNAL, details: "internal error" });
    expect(memory.text()).toMatch(/secret detail/);
  });

  it("FetchX509SVID – never logs key material", async () => {
    const { handlers, source, memory } = setup();
    const call: SvidCall = new FakeStreamCall();
    handlers.fetchX509SVID(call.asCall());
    source.identities.push({ svids: [svidA, svidB], bundle });
    await call.writes(1);
    call.cancel();
    const text = memory.text();
    expect(text).toMatch(/spiffe:\/\/example\.org\/a/);
    for (const key of [svidA.privateKeyPkcs8Der, svidB.privateKeyPkcs8Der]) {
      const buf = Buffer.from(key);
      expect(text).not.toContain(buf.toString("base64"));
      expect(text).not.toContain(buf.toString("hex"));
      expect(text).not.toContain(JSON.stringify(Array.from(buf)).slice(1, -1));
    }
  });

  it("FetchX509Bundles – sends the bundle keyed by spiffe://<td> at once and on each change", async () => {
    const { handlers, source, attestation } = setup();
    const call = new FakeStreamCall<spiffeWorkload.X509BundlesResponse>();
    handlers.fetchX509Bundles(call.asCall());
    source.bundles.push(bundle);
    source.bundles.push({
      ...bundle,
      x509AuthoritiesDer: [Uint8Array.of(0x30, 9)],
      sequenceNumber: 2,
    });
    const written = await call.writes(2);
    expect(written.map((m) => m.bundles)).toEqual([
      { "spiffe://example.org": Buffer.from([0x30, 1, 0x30, 2]) },
      { "spiffe://example.org": Buffer.from([0x30, 9]) },
    ]);
    expect(attestation.calls).toEqual([process]);
    call.cancel();
  });

  it("FetchX509Bundles – requires the header and a successful attestation", async () => {
    const noHeader = new FakeStreamCall<spiffeWorkload.X509BundlesResponse>(PEER, false);
    setup().handlers.fetchX509Bundles(noHeader.asCall());
    expect((await noHeader.status).code).toBe(status.INVALID_ARGUMENT);

    const denied = new FakeStreamCall<spiffeWorkload.X509BundlesResponse>();
    setup({
      attestation: fakeAttestation(
        new MeshidError("permission_denied", "agent.attestation.process_gone", "gone"),
      ),
    }).handlers.fetchX509Bundles(denied.asCall());
    expect((await denied.status).code).toBe(status.PERMISSION_DENIED);
  });

  it("JWT methods – UNIMPLEMENTED with the header, INVALID_ARGUMENT without", async () => {
    const { handlers } = setup();
    for (const header of [true, false]) {
      const expected = header ? status.UNIMPLEMENTED : status.INVALID_ARGUMENT;
      const metadata = new Metadata();
      if (header) metadata.set(WORKLOAD_API_HEADER, "true");
      const unaryCall = { metadata, request: {} } as unknown as ServerUnaryCall<never, never>;
      const svidCallback = jest.fn();
      handlers.fetchJWTSVID(unaryCall, svidCallback);
      expect(svidCallback).toHaveBeenCalledWith(expect.objectContaining({ code: expected }), null);
      const validateCallback = jest.fn();
      handlers.validateJWTSVID(unaryCall, validateCallback);
      expect(validateCallback).toHaveBeenCalledWith(
        expect.objectContaining({ code: expected }),
        null,
      );
      const stream = new FakeStreamCall<spiffeWorkload.JWTBundlesResponse>(PEER, header);
      handlers.fetchJWTBundles(stream.asCall());
      expect((await stream.status).code).toBe(expected);
    }
    const callback = jest.fn();
    const metadata = new Metadata();
    metadata.set(WORKLOAD_API_HEADER, "true");
    handlers.fetchJWTSVID({ metadata } as unknown as ServerUnaryCall<never, never>, callback);
    expect(callback).toHaveBeenCalledWith(
      { code: status.UNIMPLEMENTED, details: JWT_UNIMPLEMENTED_MESSAGE },
      null,
    );
  });
});

/** Polls `condition` on the event loop (no wall-clock assertions). */
async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !condition(); i++) {
    await new Promise((resolve) => setImmediate(resolve));
  }
  expect(condition()).toBe(true);
}
