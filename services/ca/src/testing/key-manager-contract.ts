/// <reference types="jest" />
import { sign, verify, type KeyObject } from "node:crypto";
import { exportSpkiDer, keyTypeOf, type KeyType } from "@meshid/pki";
import { describeContract, type ContractSubject } from "@meshid/testkit";
import type { KeyManager, ManagedKey } from "../ports";

/** Key types the suite generates on every test run; rsa-4096 (slow) is generated once. */
const FAST_KEY_TYPES: readonly KeyType[] = ["ec-p256", "ec-p384", "rsa-2048"];

/** Timeout of the test that generates an rsa-4096 key (it can take seconds on 2 cores). */
const RSA_4096_TIMEOUT_MS = 60_000;

function spkiHex(key: KeyObject): string {
  return Buffer.from(exportSpkiDer(key)).toString("hex");
}

function signsAndVerifies(key: ManagedKey): boolean {
  const data = Buffer.from(`meshid key manager contract ${key.keyId}`);
  const hash = key.keyType === "ec-p384" ? "sha384" : "sha256";
  const signature = sign(hash, data, key.privateKey);
  return verify(hash, data, key.publicKey, signature);
}

function ids(keys: readonly ManagedKey[]): string[] {
  return keys.map((k) => k.keyId).sort();
}

/**
 * Runs the {@link KeyManager} contract against one adapter: each key type generated, get /
 * list / delete, replace on the same id, sign + verify with the returned keys, and that keys
 * never show key material when serialised. `create` makes a fresh, empty key manager for each
 * test (and how to clean it up). Call at module level of a test file, like `describe`.
 */
export function describeKeyManagerContract(
  name: string,
  create: () => Promise<ContractSubject<KeyManager>>,
): void {
  describeContract<KeyManager>("KeyManager", [{ name, create }], (get) => {
    it.each(FAST_KEY_TYPES)(
      "key manager – generates an %s key that signs and verifies",
      async (keyType) => {
        const key = await get().generateKey(`k-${keyType}`, keyType);
        expect(key.keyId).toBe(`k-${keyType}`);
        expect(key.keyType).toBe(keyType);
        expect(key.privateKey.type).toBe("private");
        expect(key.publicKey.type).toBe("public");
        expect(keyTypeOf(key.privateKey)).toBe(keyType);
        expect(keyTypeOf(key.publicKey)).toBe(keyType);
        expect(signsAndVerifies(key)).toBe(true);
      },
    );

    it(
      "key manager – generates an rsa-4096 key that signs and verifies",
      async () => {
        const key = await get().generateKey("big", "rsa-4096");
        expect(key.keyType).toBe("rsa-4096");
        expect(keyTypeOf(key.privateKey)).toBe("rsa-4096");
        expect(signsAndVerifies(key)).toBe(true);
        const got = await get().getKey("big");
        expect(got && spkiHex(got.publicKey)).toBe(spkiHex(key.publicKey));
      },
      RSA_4096_TIMEOUT_MS,
    );

    it("key manager – starts empty", async () => {
      expect(await get().listKeys()).toEqual([]);
      expect(await get().getKey("missing")).toBeUndefined();
    });

    it("key manager – gets a generated key with the same key pair", async () => {
      const key = await get().generateKey("a", "ec-p256");
      const got = await get().getKey("a");
      expect(got).toBeDefined();
      expect(got?.keyId).toBe("a");
      expect(got?.keyType).toBe("ec-p256");
      expect(spkiHex(got!.publicKey)).toBe(spkiHex(key.publicKey));
      // The private key returned by getKey signs what the generated public key verifies.
      const data = Buffer.from("payload");
      expect(verify("sha256", data, key.publicKey, sign("sha256", data, got!.privateKey))).toBe(
        true,
      );
    });

    it("key manager – lists every key once", async () => {
      await get().generateKey("x", "ec-p256");
      await get().generateKey("y", "ec-p384");
      await get().generateKey("z", "ec-p256");
      const keys = await get().listKeys();
      expect(ids(keys)).toEqual(["x", "y", "z"]);
      expect(keys.find((k) => k.keyId === "y")?.keyType).toBe("ec-p384");
    });

    it("key manager – generating under an existing id replaces the key", async () => {
      const first = await get().generateKey("same", "ec-p256");
      const second = await get().generateKey("same", "ec-p384");
      expect(second.keyType).toBe("ec-p384");
      expect(spkiHex(second.publicKey)).not.toBe(spkiHex(first.publicKey));
      const got = await get().getKey("same");
      expect(got?.keyType).toBe("ec-p384");
      expect(spkiHex(got!.publicKey)).toBe(spkiHex(second.publicKey));
      expect(ids(await get().listKeys())).toEqual(["same"]);
    });

    it("key manager – replacing with the same type still makes a new key", async () => {
      const first = await get().generateKey("rot", "ec-p256");
      const second = await get().generateKey("rot", "ec-p256");
      expect(spkiHex(second.publicKey)).not.toBe(spkiHex(first.publicKey));
      expect(spkiHex((await get().getKey("rot"))!.publicKey)).toBe(spkiHex(second.publicKey));
    });

    it("key manager – deletes a key and leaves the others", async () => {
      await get().generateKey("keep", "ec-p256");
      await get().generateKey("drop", "ec-p256");
      await get().deleteKey("drop");
      expect(await get().getKey("drop")).toBeUndefined();
      expect(ids(await get().listKeys())).toEqual(["keep"]);
    });

    it("key manager – deleting an unknown key is a no-op", async () => {
      await get().generateKey("keep", "ec-p256");
      await expect(get().deleteKey("never-there")).resolves.toBeUndefined();
      expect(ids(await get().listKeys())).toEqual(["keep"]);
    });

    it("key manager – concurrent generations all land", async () => {
      await Promise.all(["c1", "c2", "c3", "c4"].map((id) => get().generateKey(id, "ec-p256")));
      expect(ids(await get().listKeys())).toEqual(["c1", "c2", "c3", "c4"]);
    });

    it("key manager – keys of different ids are different", async () => {
      const a = await get().generateKey("a", "ec-p256");
      const b = await get().generateKey("b", "ec-p256");
      expect(spkiHex(a.publicKey)).not.toBe(spkiHex(b.publicKey));
    });

    it("key manager – refuses an empty key id", async () => {
      await expect(get().generateKey("", "ec-p256")).rejects.toMatchObject({
        code: "ca.key.invalid_id",
        kind: "invalid_argument",
      });
    });

    it("key manager – refuses an unknown key type", async () => {
      await expect(get().generateKey("bad", "dsa-1024" as KeyType)).rejects.toMatchObject({
        code: "pki.key.unsupported",
      });
      expect(await get().getKey("bad")).toBeUndefined();
    });

    it("key manager – a serialised key shows no private key material", async () => {
      const key = await get().generateKey("secret", "ec-p256");
      const text = JSON.stringify(key);
      expect(text).not.toContain("PRIVATE KEY");
      expect(text).not.toContain(
        Buffer.from(key.privateKey.export({ type: "pkcs8", format: "der" })).toString("base64"),
      );
    });
  });
}
