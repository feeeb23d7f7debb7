import { createPublicKey } from "node:crypto";
import { isMeshidError } from "@meshid/errors";
import { exportSpkiDer, generateKeyPair, KEY_TYPES } from "./keys";
import { importSpkiFast, keyIdentifier, spkiFromKeyObject } from "./spki";

describe("spki", () => {
  test.each(KEY_TYPES)("spki – %s fast import/export agree with node's DER", async (type) => {
    const { privateKey, publicKey } = await generateKeyPair(type);
    const der = exportSpkiDer(publicKey);
    for (const key of [publicKey, privateKey]) {
      const fast = spkiFromKeyObject(key);
      expect(fast.keyType).toBe(type);
      expect(Buffer.from(fast.spkiDer)).toEqual(Buffer.from(der));
    }
    const imported = importSpkiFast(der);
    expect(imported.keyType).toBe(type);
    expect(imported.key.equals(publicKey)).toBe(true);
    expect(keyIdentifier(der)).toHaveLength(20);
  });

  test("spki – an EC point off the curve is pki.key.malformed", async () => {
    const der = Buffer.from(exportSpkiDer((await generateKeyPair("ec-p256")).publicKey));
    der[der.length - 1] = (der[der.length - 1] as number) ^ 0x01;
    let caught: unknown;
    try {
      importSpkiFast(der);
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "pki.key.malformed")).toBe(true);
    expect(() => createPublicKey({ key: der, format: "der", type: "spki" })).toThrow();
  });
});
