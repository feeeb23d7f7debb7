import { CachedSvidRecord } from "./cached-svid-record";
import type { CachedSvid } from "./types";

describe("cached svid record", () => {
  const record = new CachedSvidRecord({
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

  it("cached svid record – dates come from the stored milliseconds, fresh on each access", () => {
    const svid: CachedSvid = record;
    expect(svid.notAfter.toISOString()).toBe("2026-01-01T01:00:00.000Z");
    expect(svid.rotateAt.toISOString()).toBe("2026-01-01T00:30:00.000Z");
    expect(svid.notBefore).not.toBe(svid.notBefore);
  });

  it("cached svid record – JSON never carries the private key", () => {
    const json = JSON.stringify(record);
    expect(json).not.toContain("privateKey");
    expect(json).toContain('"rotateAt":"2026-01-01T00:30:00.000Z"');
  });

  it("cached svid record – leaf and key in one copy; the chain is leaf then the shared intermediates", () => {
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
    expect(a.certChainDer[0]!.buffer).toBe(a.privateKeyPkcs8Der.buffer);
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
