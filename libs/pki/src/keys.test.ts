import { createPrivateKey, generateKeyPairSync } from "node:crypto";
import { isMeshidError } from "@meshid/errors";
import {
  exportPkcs8Der,
  exportPkcs8Pem,
  exportSpkiDer,
  exportSpkiPem,
  generateKeyPair,
  importPkcs8,
  importSpki,
  isKeyType,
  KEY_TYPES,
  keyTypeOf,
} from "./keys";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isMeshidError(err) ? err.code : "not-a-meshid-error";
  }
  return undefined;
}

describe("keys", () => {
  test.each(KEY_TYPES)("keys – %s generates, reports its type and round-trips", async (type) => {
    const { privateKey, publicKey } = await generateKeyPair(type);
    expect(keyTypeOf(privateKey)).toBe(type);
    expect(keyTypeOf(publicKey)).toBe(type);
    const der = exportPkcs8Der(privateKey);
    const pem = exportPkcs8Pem(privateKey);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    for (const imported of [importPkcs8(der), importPkcs8(pem)]) {
      expect(keyTypeOf(imported)).toBe(type);
      expect(Buffer.from(exportSpkiDer(imported))).toEqual(Buffer.from(exportSpkiDer(publicKey)));
    }
    const spkiPem = exportSpkiPem(publicKey);
    expect(spkiPem).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    expect(importSpki(spkiPem).equals(publicKey)).toBe(true);
    expect(importSpki(exportSpkiDer(publicKey)).equals(publicKey)).toBe(true);
  });

  test("keys – isKeyType accepts only supported names", () => {
    expect(isKeyType("ec-p256")).toBe(true);
    expect(isKeyType("ec-p521")).toBe(false);
    expect(isKeyType(256)).toBe(false);
  });

  test("keys – unsupported key types and curves throw pki.key.unsupported", async () => {
    await expect(generateKeyPair("ed25519" as never)).rejects.toMatchObject({
      code: "pki.key.unsupported",
      kind: "invalid_argument",
    });
    const ed = generateKeyPairSync("ed25519");
    expect(codeOf(() => keyTypeOf(ed.publicKey))).toBe("pki.key.unsupported");
    const p521 = generateKeyPairSync("ec", { namedCurve: "secp521r1" });
    expect(codeOf(() => keyTypeOf(p521.privateKey))).toBe("pki.key.unsupported");
    const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 });
    expect(codeOf(() => keyTypeOf(rsa1024.publicKey))).toBe("pki.key.unsupported");
  });

  test("keys – malformed input throws pki.key.malformed without echoing the input", () => {
    const secretLooking =
      "-----BEGIN PRIVATE KEY-----\nAAAAsecretAAAA\n-----END PRIVATE KEY-----\n";
    for (const bad of [new Uint8Array([1, 2, 3]), "garbage", secretLooking, new Uint8Array(0)]) {
      let caught: unknown;
      try {
        importPkcs8(bad);
      } catch (err) {
        caught = err;
      }
      expect(isMeshidError(caught, "pki.key.malformed")).toBe(true);
      expect((caught as Error).message).not.toContain("secret");
    }
    expect(codeOf(() => importSpki(new Uint8Array([0x30, 0x03, 1])))).toBe("pki.key.malformed");
    expect(codeOf(() => importSpki("-----BEGIN PRIVATE KEY-----"))).toBe("pki.key.malformed");
  });

  test("keys – exporting the wrong kind of key throws pki.key.malformed", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ec-p256");
    expect(codeOf(() => exportPkcs8Der(publicKey))).toBe("pki.key.malformed");
    expect(codeOf(() => exportPkcs8Pem(publicKey))).toBe("pki.key.malformed");
    // A private key exports its public half.
    expect(Buffer.from(exportSpkiDer(privateKey))).toEqual(Buffer.from(exportSpkiDer(publicKey)));
    expect(keyTypeOf(createPrivateKey(exportPkcs8Pem(privateKey)))).toBe("ec-p256");
  });
});
