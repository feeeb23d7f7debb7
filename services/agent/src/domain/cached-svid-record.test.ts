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
});
