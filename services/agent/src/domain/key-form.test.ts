import { createPrivateKey } from "node:crypto";
import { createTestCa } from "@meshid/testkit";
import { loadKey, storeKey } from "./key-form";
import { readLeafLayout } from "./leaf-fields";

describe("key form", () => {
  it("key form – an EC key is stored as its scalar, its curve's form shared, and comes back whole", async () => {
    const ca = await createTestCa();
    for (const [keyType, scalarBytes] of [
      ["ec-p256", 32],
      ["ec-p384", 48],
    ] as const) {
      const stored = [];
      for (const name of ["a", "b"]) {
        const svid = await ca.issueSvid({ spiffeId: `spiffe://example.org/${name}`, keyType });
        const leaf = svid.certChainDer[0]!;
        const { publicKeyStart, publicKeyEnd } = readLeafLayout(leaf);
        const key = storeKey(svid.keyPkcs8Der, leaf, publicKeyStart, publicKeyEnd);
        expect(key.bytes).toHaveLength(scalarBytes);
        const back = loadKey(key, leaf, publicKeyStart, publicKeyEnd);
        expect(back.equals(Buffer.from(svid.keyPkcs8Der))).toBe(true);
        stored.push(key);
      }
      expect(stored[0]!.form).toBeDefined();
      expect(stored[0]!.form).toBe(stored[1]!.form);
    }
  });

  it("key form – RSA keys, keys of another certificate and EC keys without their point are kept whole", async () => {
    const ca = await createTestCa();
    const rsa = await ca.issueSvid({ spiffeId: "spiffe://example.org/r", keyType: "rsa-2048" });
    const ec = await ca.issueSvid({ spiffeId: "spiffe://example.org/e" });
    const other = await ca.issueSvid({ spiffeId: "spiffe://example.org/o" });
    // The same P-256 key without the optional public point (RFC 5915 allows it).
    const d = Buffer.from(ec.keyPkcs8Der);
    const algorithm = d.subarray(6, 27); // SEQUENCE { ecPublicKey, prime256v1 }
    const scalar = d.subarray(36, 68);
    const pointless = Buffer.concat([
      Buffer.from([0x30, 0x41, 0x02, 0x01, 0x00]),
      algorithm,
      Buffer.from([0x04, 0x27, 0x30, 0x25, 0x02, 0x01, 0x01, 0x04, 0x20]),
      scalar,
    ]);
    expect(
      createPrivateKey({ key: pointless, format: "der", type: "pkcs8" }).asymmetricKeyType,
    ).toBe("ec");
    for (const [leafDer, keyDer] of [
      [rsa.certChainDer[0]!, rsa.keyPkcs8Der],
      [ec.certChainDer[0]!, other.keyPkcs8Der],
      [ec.certChainDer[0]!, pointless],
      [ec.certChainDer[0]!, Uint8Array.of(0x30, 0x00)],
    ] as const) {
      const { publicKeyStart, publicKeyEnd } = readLeafLayout(leafDer);
      const key = storeKey(keyDer, leafDer, publicKeyStart, publicKeyEnd);
      expect(key.form).toBeUndefined();
      expect(key.bytes).toBe(Buffer.from(keyDer).toString("latin1"));
      expect(loadKey(key, leafDer, publicKeyStart, publicKeyEnd).equals(Buffer.from(keyDer))).toBe(
        true,
      );
    }
  });
});
