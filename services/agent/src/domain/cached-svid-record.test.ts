import { CachedSvidRecord } from "./cached-svid-record";
import type { CachedSvid } from "./types";

describe("cached svid record", () => {
  const init = () => ({
    entryId: "e1",
    spiffeId: "spiffe://example.org/w",
    hint: "",
    certChainDer: [new Uint8Array([1])],
    privateKeyPkcs8Der: new Uint8Array([0xaa, 0xbb]),
    serialHex: "01",
    authorityId: "ab",
    entryRevision: 3,
    notBeforeMs: Date.parse("2026-01-01T00:00:00Z"),
    notAfterMs: Date.parse("2026-01-01T01:00:00Z"),
    rotateAtMs: Date.parse("2026-01-01T00:30:00Z"),
  });
  const record = new CachedSvidRecord(init());

  it("cached svid record – dates come from the stored milliseconds, fresh on each access", () => {
    const svid: CachedSvid = record;
    expect(svid.notAfter.toISOString()).toBe("2026-01-01T01:00:00.000Z");
    expect(svid.rotateAt.toISOString()).toBe("2026-01-01T00:30:00.000Z");
    expect(svid.notBefore).not.toBe(svid.notBefore);
  });

  it("cached svid record – times round-trip to the millisecond, also far from the 2020 base", () => {
    for (const [notBeforeMs, notAfterMs, rotateAtMs] of [
      [
        Date.parse("2026-11-22T18:00:00Z"),
        Date.parse("2026-11-22T19:00:00Z"),
        Date.parse("2026-11-22T18:31:12.345Z"),
      ],
      [
        Date.parse("2100-01-01T00:00:00Z"),
        Date.parse("2100-03-01T00:00:00Z"),
        Date.parse("2100-01-31T00:00:00.001Z"),
      ],
      [
        Date.parse("1999-12-31T23:59:59Z"),
        Date.parse("2000-01-01T00:00:00Z"),
        Date.parse("1999-12-31T23:59:59.500Z"),
      ],
    ] as const) {
      const r = new CachedSvidRecord({ ...init(), notBeforeMs, notAfterMs, rotateAtMs });
      expect([r.notBeforeMs, r.notAfterMs, r.rotateAtMs]).toEqual([
        notBeforeMs,
        notAfterMs,
        rotateAtMs,
      ]);
      expect(r.notAfter.getTime()).toBe(notAfterMs);
    }
  });

  it("cached svid record – JSON never carries the private key", () => {
    const json = JSON.stringify(record);
    expect(json).not.toContain("privateKey");
    expect(json).toContain('"rotateAt":"2026-01-01T00:30:00.000Z"');
  });

  it("cached svid record – leaf and key kept as one copy; the chain is leaf then the shared intermediates", () => {
    const leaf = new Uint8Array([0x30, 1, 2]);
    const key = new Uint8Array([0x30, 9]);
    const intermediates = Object.freeze([new Uint8Array([0x30, 7])]);
    const init = {
      entryId: "e2",
      spiffeId: "spiffe://example.org/v",
      hint: "",
      certChainDer: [leaf],
      intermediates,
      privateKeyPkcs8Der: key,
      serialHex: "02",
      authorityId: "ab",
      entryRevision: 1,
      notBeforeMs: 0,
      notAfterMs: 1,
      rotateAtMs: 1,
    };
    const a = new CachedSvidRecord(init);
    const b = new CachedSvidRecord(init);
    leaf[1] = 0xff;
    key[1] = 0xff;
    expect(a.certChainDer.map((d) => [...d])).toEqual([
      [0x30, 1, 2],
      [0x30, 7],
    ]);
    expect([...a.privateKeyPkcs8Der]).toEqual([0x30, 9]);
    // Fresh copies on each access: changing one never reaches the cache.
    a.certChainDer[0]![0] = 0;
    a.privateKeyPkcs8Der[0] = 0;
    expect([...a.certChainDer[0]!]).toEqual([0x30, 1, 2]);
    expect([...a.privateKeyPkcs8Der]).toEqual([0x30, 9]);
    expect(a.certChainDer[1]).toBe(b.certChainDer[1]);
    // Without a shared list the intermediates come from the chain given.
    const c = new CachedSvidRecord({
      ...init,
      intermediates: undefined,
      certChainDer: [leaf, key],
    });
    expect(c.certChainDer).toHaveLength(2);
  });
});
