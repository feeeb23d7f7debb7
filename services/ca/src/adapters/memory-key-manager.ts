import { MeshidError } from "@meshid/errors";
import { generateKeyPair, type KeyType } from "@meshid/pki";
import type { KeyManager, ManagedKey } from "../ports";

/**
 * Checks that `keyId` is a usable key id: a non-empty string of at most 256 characters.
 * Throws `ca.key.invalid_id` (invalid_argument) otherwise.
 */
export function requireValidKeyId(keyId: string): void {
  if (typeof keyId !== "string" || keyId.length === 0 || keyId.length > 256) {
    throw new MeshidError(
      "invalid_argument",
      "ca.key.invalid_id",
      "key id must be a non-empty string of at most 256 characters",
    );
  }
}

/**
 * Generates a new key pair of `keyType` with `@meshid/pki` `generateKeyPair` and returns it as
 * a frozen {@link ManagedKey} under `keyId` (not stored anywhere: that is the caller's job).
 * Throws `ca.key.invalid_id` (invalid_argument) for an invalid key id and
 * `pki.key.unsupported` for an unknown key type.
 */
export async function generateManagedKey(keyId: string, keyType: KeyType): Promise<ManagedKey> {
  requireValidKeyId(keyId);
  const pair = await generateKeyPair(keyType);
  return Object.freeze({
    keyId,
    keyType,
    publicKey: pair.publicKey,
    privateKey: pair.privateKey,
  });
}

/**
 * Creates a {@link KeyManager} that keeps its keys in process memory only: a restart loses
 * them (use the disk key manager to keep the same authority across restarts). Keys are
 * generated with `@meshid/pki` `generateKeyPair`; generating under an existing id replaces
 * that key; deleting an unknown id is a no-op; `listKeys` returns keys sorted by id. Throws `ca.key.invalid_id` (invalid_argument) for an empty key id and
 * `pki.key.unsupported` for an unknown key type.
 */
export function createMemoryKeyManager(): KeyManager {
  const keys = new Map<string, ManagedKey>();
  return {
    async generateKey(keyId: string, keyType: KeyType): Promise<ManagedKey> {
      const key = await generateManagedKey(keyId, keyType);
      keys.set(keyId, key);
      return key;
    },
    getKey(keyId: string): Promise<ManagedKey | undefined> {
      return Promise.resolve(keys.get(keyId));
    },
    listKeys(): Promise<ManagedKey[]> {
      return Promise.resolve([...keys.values()].sort((a, b) => compareIds(a.keyId, b.keyId)));
    },
    deleteKey(keyId: string): Promise<void> {
      keys.delete(keyId);
      return Promise.resolve();
    },
  };
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
