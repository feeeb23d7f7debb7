import { X509Certificate } from "node:crypto";
import { createTestCa, type TestSvid } from "@meshid/testkit";
import { CachedSvidRecord, type CachedSvidRecordInit } from "./cached-svid-record";
import type { CachedSvid } from "./types";

describe("cached svid record", () => {
  let svid: TestSvid;
  let record: CachedSvidRecord;
  const init = (): CachedSvidRecordInit => ({
    entryId: "e1",
    spiffeId: "spiffe://example.org/w",
    hint: "",
    certChainDer: [svid.certChainDer[0]!],
    privateKeyPkcs8Der: svid.keyPkcs8Der,
    authorityId: "ab",
    entryRevision: 3,
    notBeforeMs: Date.parse("2026-01-01T00:00:00Z"),
    notAfterMs: Date.parse("2026-01-01T01:00:00Z"),
    rotateAtMs: Date.parse("2026-01-01T00:30:00Z"),
  });

  beforeAll(async () => {
    const ca = await createTestCa();
    svid = await ca.issueSvid({ spiffeId: "spiffe://example.org/w" });
    record = new CachedSvidRecord(init());
  });

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

  it("cached svid record – leaf and key kept as one copy; the chain is leaf then the shared intermediates", async () => {
    const ca = await createTestCa();
    const intermediate = await ca.issueIntermediate();
    const issued = await intermediate.issueSvid({ spiffeId: "spiffe://example.org/v" });
    const leaf = Uint8Array.from(issued.certChainDer[0]!);
    const key = Uint8Array.from(issued.keyPkcs8Der);
    const intermediates = Object.freeze([intermediate.certDer]);
    const a = new CachedSvidRecord({
      ...init(),
      certChainDer: [leaf],
      intermediates,
      privateKeyPkcs8Der: key,
    });
    const b = new CachedSvidRecord({
      ...init(),
      certChainDer: [leaf],
      intermediates,
      privateKeyPkcs8Der: key,
    });
    const leafBytes = [...leaf];
    const keyBytes = [...key];
    leaf[1] = 0xff;
    key[1] = 0xff;
    expect(a.certChainDer.map((d) => [...d])).toEqual([leafBytes, [...intermediate.certDer]]);
    expect([...a.privateKeyPkcs8Der]).toEqual(keyBytes);
    // Fresh copies on each access: changing one never reaches the cache.
    a.certChainDer[0]![0] = 0;
    a.privateKeyPkcs8Der[0] = 0;
    expect([...a.certChainDer[0]!]).toEqual(leafBytes);
    expect([...a.privateKeyPkcs8Der]).toEqual(keyBytes);
    expect(a.certChainDer[1]).toBe(b.certChainDer[1]);
    // Without a shared list the intermediates come from the chain given.
    const c = new CachedSvidRecord({
      ...init(),
      intermediates: undefined,
      certChainDer: issued.certChainDer,
    });
    expect(c.certChainDer.map((d) => [...d])).toEqual(issued.certChainDer.map((d) => [...d]));
  });

  it("cached svid record – the key comes back byte for byte for every key type, also one that is not the leaf's", async () => {
    const ca = await createTestCa();
    const other = await ca.issueSvid({ spiffeId: "spiffe://example.org/other" });
    for (const keyType of ["ec-p256", "ec-p384", "rsa-2048"] as const) {
      const issued = await ca.issueSvid({ spiffeId: "spiffe://example.org/k", keyType });
      for (const key of [issued.keyPkcs8Der, other.keyPkcs8Der]) {
        const r = new CachedSvidRecord({
          ...init(),
          certChainDer: issued.certChainDer,
          privateKeyPkcs8Der: key,
        });
        expect(Buffer.from(r.privateKeyPkcs8Der).equals(Buffer.from(key))).toBe(true);
      }
    }
  });

  it("cached svid record – the serial number is read from the leaf, lowercase hex without sign octets", () => {
    const serial = new X509Certificate(svid.certChainDer[0]!).serialNumber.toLowerCase();
    expect(record.serialHex).toBe(serial.replace(/^(00)+(?=.)/, ""));
    expect(JSON.parse(JSON.stringify(record))).toMatchObject({ serialHex: record.serialHex });
  });

  it("cached svid record – a chain without a leaf or a malformed leaf is agent.svid.malformed", () => {
    for (const certChainDer of [[], [Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x01)]]) {
      expect(() => new CachedSvidRecord({ ...init(), certChainDer })).toThrow(
        expect.objectContaining({ code: "agent.svid.malformed" }) as Error,
      );
    }
  });
});
