import { createTestCa } from "@meshid/testkit";
import type { CallContext } from "nice-grpc-common";
import type { BundleRecord } from "../domain/types";
import type { CaCallContext } from "./authz";
import { createBundleService } from "./bundle-service";

function fakeAuthority(initial: BundleRecord) {
  let current = initial;
  const listeners = new Set<(b: BundleRecord) => void>();
  return {
    bundle: () => current,
    onBundleChange(listener: (b: BundleRecord) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    publish(b: BundleRecord) {
      current = b;
      for (const l of listeners) l(b);
    },
    listenerCount: () => listeners.size,
  };
}

function context(signal: AbortSignal): CallContext & CaCallContext {
  return {
    signal,
    caller: { role: "admin", spiffeId: undefined, local: true },
  } as unknown as CallContext & CaCallContext;
}

describe("bundle service", () => {
  it("bundle service – GetBundle returns the bundle, its PEM and its JWKS", async () => {
    const ca = await createTestCa();
    const authority = fakeAuthority({
      trustDomain: "example.org",
      x509Authorities: [{ certDer: ca.rootCertDer, tainted: false }],
      sequenceNumber: 1,
      refreshHintSeconds: 300,
    });
    const service = createBundleService({ authority });
    const res = await service.getBundle({}, context(new AbortController().signal));
    expect(res.bundle?.sequenceNumber).toBe(1);
    expect(res.pem).toContain("BEGIN CERTIFICATE");
    expect(JSON.parse(res.spiffeJwks ?? "{}")).toMatchObject({ spiffe_sequence: 1 });
  });

  it("bundle service – WatchBundle sends the current bundle, then each newer one, and ends on abort", async () => {
    const ca = await createTestCa();
    const record = (seq: number): BundleRecord => ({
      trustDomain: "example.org",
      x509Authorities: [{ certDer: ca.rootCertDer, tainted: false }],
      sequenceNumber: seq,
      refreshHintSeconds: 0,
    });
    const authority = fakeAuthority(record(1));
    const stop = new AbortController();
    const service = createBundleService({ authority, signal: stop.signal });
    const call = new AbortController();
    const stream = service.watchBundle({}, context(call.signal))[Symbol.asyncIterator]();
    expect((await stream.next()).value?.bundle?.sequenceNumber).toBe(1);
    const second = stream.next();
    authority.publish(record(1)); // not newer: skipped
    authority.publish(record(2));
    expect((await second).value?.bundle?.sequenceNumber).toBe(2);
    const third = stream.next();
    call.abort();
    expect((await third).done).toBe(true);
    expect(authority.listenerCount()).toBe(0);

    // The server-wide signal ends open streams too.
    const other = service
      .watchBundle({}, context(new AbortController().signal))
      [Symbol.asyncIterator]();
    await other.next();
    const pending = other.next();
    stop.abort();
    expect((await pending).done).toBe(true);
  });
});
