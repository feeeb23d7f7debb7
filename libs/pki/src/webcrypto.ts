import "reflect-metadata";
import { webcrypto, type KeyObject } from "node:crypto";

type CryptoKey = webcrypto.CryptoKey;
type EcdsaParams = webcrypto.EcdsaParams;
type Algorithm = webcrypto.Algorithm;
import * as x509 from "@peculiar/x509";
import { keyTypeOf, type KeyType } from "./keys";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** WebCrypto import + signing parameters for a key type. */
export function webcryptoAlgorithm(type: KeyType): {
  importParams: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  signParams: EcdsaParams | Algorithm;
} {
  switch (type) {
    case "ec-p256":
      return {
        importParams: { name: "ECDSA", namedCurve: "P-256" },
        signParams: { name: "ECDSA", hash: "SHA-256" },
      };
    case "ec-p384":
      return {
        importParams: { name: "ECDSA", namedCurve: "P-384" },
        signParams: { name: "ECDSA", hash: "SHA-384" },
      };
    case "rsa-2048":
    case "rsa-4096":
      return {
        importParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
        signParams: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
      };
  }
}

/** Converts a node:crypto private key to a WebCrypto signing key for @peculiar/x509. */
export async function toSigningCryptoKey(
  privateKey: KeyObject,
): Promise<{ key: CryptoKey; signParams: EcdsaParams | Algorithm }> {
  const { importParams, signParams } = webcryptoAlgorithm(keyTypeOf(privateKey));
  const der = privateKey.export({ type: "pkcs8", format: "der" });
  const key = await webcrypto.subtle.importKey("pkcs8", der, importParams, false, ["sign"]);
  return { key, signParams };
}

export { x509, type CryptoKey };
