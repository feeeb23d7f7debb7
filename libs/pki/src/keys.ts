import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair as nodeGenerateKeyPair,
  type KeyObject,
} from "node:crypto";
import { promisify } from "node:util";
import { MeshidError } from "@meshid/errors";

const generateKeyPairAsync = promisify(nodeGenerateKeyPair);

/** Key algorithms meshid issues and accepts (the NGINX Service Mesh `caKeyType` values). */
export type KeyType = "ec-p256" | "ec-p384" | "rsa-2048" | "rsa-4096";

/** Every supported {@link KeyType}, in order of preference. */
export const KEY_TYPES: readonly KeyType[] = Object.freeze([
  "ec-p256",
  "ec-p384",
  "rsa-2048",
  "rsa-4096",
]);

/** A private key and its public key, both node:crypto `KeyObject`s. */
export interface KeyPair {
  /** The private key (type "private"). */
  readonly privateKey: KeyObject;
  /** The matching public key (type "public"). */
  readonly publicKey: KeyObject;
}

/** Reports whether `value` names a supported {@link KeyType}. */
export function isKeyType(value: unknown): value is KeyType {
  return typeof value === "string" && (KEY_TYPES as readonly string[]).includes(value);
}

/**
 * Generates a new key pair of the given type with node:crypto (RSA exponent 65537).
 * Throws `pki.key.unsupported` (invalid_argument) for an unknown type.
 */
export async function generateKeyPair(type: KeyType): Promise<KeyPair> {
  switch (type) {
    case "ec-p256":
      return generateKeyPairAsync("ec", { namedCurve: "prime256v1" });
    case "ec-p384":
      return generateKeyPairAsync("ec", { namedCurve: "secp384r1" });
    case "rsa-2048":
      return generateKeyPairAsync("rsa", { modulusLength: 2048, publicExponent: 0x10001 });
    case "rsa-4096":
      return generateKeyPairAsync("rsa", { modulusLength: 4096, publicExponent: 0x10001 });
    default:
      throw unsupported(`unsupported key type ${JSON.stringify(String(type))}`);
  }
}

function unsupported(message: string): MeshidError {
  return new MeshidError("invalid_argument", "pki.key.unsupported", message);
}

/**
 * Returns the {@link KeyType} of a public or private key. Throws `pki.key.unsupported`
 * (invalid_argument) for other algorithms, curves or RSA sizes.
 */
export function keyTypeOf(key: KeyObject): KeyType {
  if (key.type === "secret") throw unsupported("a secret key is not an asymmetric key");
  const details = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === "ec") {
    if (details.namedCurve === "prime256v1") return "ec-p256";
    if (details.namedCurve === "secp384r1") return "ec-p384";
    throw unsupported(`unsupported EC curve ${String(details.namedCurve)}`);
  }
  if (key.asymmetricKeyType === "rsa") {
    if (details.modulusLength === 2048) return "rsa-2048";
    if (details.modulusLength === 4096) return "rsa-4096";
    throw unsupported(`unsupported RSA key size ${String(details.modulusLength)}`);
  }
  throw unsupported(`unsupported key algorithm ${String(key.asymmetricKeyType)}`);
}

function malformed(message: string, cause?: unknown): MeshidError {
  return new MeshidError("invalid_argument", "pki.key.malformed", message, { cause });
}

function requireType(key: KeyObject, type: "private" | "public", what: string): void {
  if (key.type !== type) throw malformed(`${what} needs a ${type} key, got a ${key.type} key`);
}

/** Exports a private key as PKCS#8 DER. Throws `pki.key.malformed` for a non-private key. */
export function exportPkcs8Der(privateKey: KeyObject): Uint8Array {
  requireType(privateKey, "private", "exportPkcs8Der");
  return new Uint8Array(privateKey.export({ type: "pkcs8", format: "der" }));
}

/** Exports a private key as a PEM `PRIVATE KEY` block (PKCS#8, unencrypted). */
export function exportPkcs8Pem(privateKey: KeyObject): string {
  requireType(privateKey, "private", "exportPkcs8Pem");
  return privateKey.export({ type: "pkcs8", format: "pem" }) as string;
}

/** Exports a public (or private: its public half) key as SubjectPublicKeyInfo DER. */
export function exportSpkiDer(key: KeyObject): Uint8Array {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  requireType(pub, "public", "exportSpkiDer");
  return new Uint8Array(pub.export({ type: "spki", format: "der" }));
}

/** Exports a public (or private: its public half) key as a PEM `PUBLIC KEY` block. */
export function exportSpkiPem(key: KeyObject): string {
  const pub = key.type === "private" ? createPublicKey(key) : key;
  requireType(pub, "public", "exportSpkiPem");
  return pub.export({ type: "spki", format: "pem" }) as string;
}

function isPemText(input: string | Uint8Array): input is string {
  return typeof input === "string";
}

/**
 * Imports a PKCS#8 private key from DER bytes or a PEM `PRIVATE KEY` block (PEM
 * `EC PRIVATE KEY` / `RSA PRIVATE KEY` blocks are accepted too). Throws `pki.key.malformed`
 * (invalid_argument) when it cannot be parsed; the message never contains key material.
 */
export function importPkcs8(derOrPem: Uint8Array | string): KeyObject {
  try {
    if (isPemText(derOrPem)) {
      if (!derOrPem.includes("-----BEGIN")) throw new Error("not PEM");
      return createPrivateKey({ key: derOrPem, format: "pem" });
    }
    return createPrivateKey({ key: Buffer.from(derOrPem), format: "der", type: "pkcs8" });
  } catch (err) {
    throw malformed("private key is not a valid PKCS#8 key (DER or PEM)", err);
  }
}

/**
 * Imports a public key from SubjectPublicKeyInfo DER bytes or a PEM `PUBLIC KEY` block.
 * Throws `pki.key.malformed` (invalid_argument) when it cannot be parsed.
 */
export function importSpki(derOrPem: Uint8Array | string): KeyObject {
  try {
    if (isPemText(derOrPem)) {
      if (!derOrPem.includes("-----BEGIN PUBLIC KEY-----")) throw new Error("not SPKI PEM");
      return createPublicKey({ key: derOrPem, format: "pem", type: "spki" });
    }
    return createPublicKey({ key: Buffer.from(derOrPem), format: "der", type: "spki" });
  } catch (err) {
    throw malformed("public key is not a valid SubjectPublicKeyInfo (DER or PEM)", err);
  }
}
