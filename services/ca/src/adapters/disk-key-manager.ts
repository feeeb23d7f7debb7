import { createPublicKey, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import path from "node:path";
import { MeshidError } from "@meshid/errors";
import { exportPkcs8Pem, importPkcs8, isKeyType, keyTypeOf, type KeyType } from "@meshid/pki";
import { createNoopLogger, LogKeys, type Logger } from "@meshid/telemetry";
import type { KeyManager, ManagedKey } from "../ports";
import { generateManagedKey } from "./memory-key-manager";

/** Name of the keys file inside the data dir. */
export const KEYS_FILE_NAME = "keys.json";

/** Version written in (and required of) the keys file. */
export const KEYS_FILE_VERSION = 1;

/** Permission bits of the data dir the disk key manager creates (and requires). */
export const DATA_DIR_MODE = 0o700;

/** Permission bits of the keys file. */
export const KEYS_FILE_MODE = 0o600;

/** Dependencies of {@link createDiskKeyManager}. */
export interface DiskKeyManagerDeps {
  /** Directory holding the keys file; created 0700 when missing, refused when group/world accessible. */
  readonly dataDir: string;
  /** Logs loads and changes (key ids and types only, never key material). Default: no-op. */
  readonly logger?: Logger;
}

interface StoredKey {
  readonly keyId: string;
  readonly keyType: KeyType;
  readonly pkcs8Pem: string;
}

interface KeysFile {
  readonly version: number;
  readonly keys: readonly StoredKey[];
}

function failed(code: string, message: string, file: string, cause?: unknown): MeshidError {
  return new MeshidError("failed_precondition", code, message, {
    cause,
    details: { path: file },
  });
}

function modeText(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

async function prepareDataDir(dataDir: string): Promise<void> {
  let stat = await fs.stat(dataDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw failed(
      "ca.key.data_dir_unusable",
      `key manager data dir ${dataDir} cannot be read: ${err.code ?? err.message}`,
      dataDir,
      err,
    );
  });
  if (stat === undefined) {
    await fs.mkdir(dataDir, { recursive: true, mode: DATA_DIR_MODE });
    // mkdir's mode is filtered by the umask; set it exactly.
    await fs.chmod(dataDir, DATA_DIR_MODE);
    stat = await fs.stat(dataDir);
  }
  if (!stat.isDirectory()) {
    throw failed(
      "ca.key.data_dir_unusable",
      `key manager data dir ${dataDir} is not a directory`,
      dataDir,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    throw failed(
      "ca.key.data_dir_permissions",
      `key manager data dir ${dataDir} has mode ${modeText(stat.mode)}: it must not be accessible by group or others (chmod 700 ${dataDir})`,
      dataDir,
    );
  }
}

function corrupt(file: string, what: string, cause?: unknown): MeshidError {
  return failed(
    "ca.key.file_corrupt",
    `keys file ${file} is corrupt: ${what}; restore it from a backup or remove it to start with new keys (a new CA authority)`,
    file,
    cause,
  );
}

function parseKeysFile(file: string, text: string): Map<string, ManagedKey> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, "it is not valid JSON", err);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw corrupt(file, "it is not a JSON object");
  }
  const { version, keys } = doc as Partial<Record<keyof KeysFile, unknown>>;
  if (version !== KEYS_FILE_VERSION) {
    throw corrupt(file, `version is ${JSON.stringify(version)}, expected ${KEYS_FILE_VERSION}`);
  }
  if (!Array.isArray(keys)) throw corrupt(file, '"keys" is not an array');
  const out = new Map<string, ManagedKey>();
  keys.forEach((entry: unknown, index) => {
    const where = `keys[${index}]`;
    if (typeof entry !== "object" || entry === null)
      throw corrupt(file, `${where} is not an object`);
    const { keyId, keyType, pkcs8Pem } = entry as Partial<Record<keyof StoredKey, unknown>>;
    if (typeof keyId !== "string" || keyId.length === 0) {
      throw corrupt(file, `${where}.keyId is not a non-empty string`);
    }
    if (!isKeyType(keyType)) throw corrupt(file, `${where}.keyType is not a supported key type`);
    if (typeof pkcs8Pem !== "string") throw corrupt(file, `${where}.pkcs8Pem is not a string`);
    if (out.has(keyId)) throw corrupt(file, `${where} repeats key id ${JSON.stringify(keyId)}`);
    let privateKey;
    try {
      privateKey = importPkcs8(pkcs8Pem);
    } catch (err) {
      // The pki error never carries key material; keep it as the cause.
      throw corrupt(file, `${where}.pkcs8Pem is not a valid PKCS#8 private key`, err);
    }
    let actual: KeyType;
    try {
      actual = keyTypeOf(privateKey);
    } catch (err) {
      throw corrupt(file, `${where} holds a key of an unsupported type`, err);
    }
    if (actual !== keyType) {
      throw corrupt(file, `${where}.keyType says ${keyType} but the key is ${actual}`);
    }
    out.set(
      keyId,
      Object.freeze({ keyId, keyType, privateKey, publicKey: createPublicKey(privateKey) }),
    );
  });
  return out;
}

async function loadKeysFile(file: string): Promise<Map<string, ManagedKey>> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw failed(
      "ca.key.file_unreadable",
      `keys file ${file} cannot be opened: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      file,
      err,
    );
  }
  try {
    // Check the file we opened (not the path again), like ssh does for private keys.
    const stat = await handle.stat();
    if (!stat.isFile()) throw corrupt(file, "it is not a regular file");
    if ((stat.mode & 0o077) !== 0) {
      throw failed(
        "ca.key.file_permissions",
        `keys file ${file} has mode ${modeText(stat.mode)}: private keys must not be readable by group or others (chmod 600 ${file})`,
        file,
      );
    }
    return parseKeysFile(file, await handle.readFile("utf8"));
  } finally {
    await handle.close();
  }
}

async function writeFileAtomic(dataDir: string, file: string, content: string): Promise<void> {
  const tmp = path.join(dataDir, `.${KEYS_FILE_NAME}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await fs.open(tmp, "wx", KEYS_FILE_MODE);
  try {
    try {
      await handle.chmod(KEYS_FILE_MODE);
      await handle.writeFile(content, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  // Make the rename itself durable.
  const dir = await fs.open(dataDir, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Creates a {@link KeyManager} that keeps its keys in one file, `<dataDir>/keys.json` (each
 * key as a PKCS#8 PEM with its id and type), so a restart — a new instance on the same dir —
 * returns the same keys and the CA keeps its authority. The data dir is created with mode 0700
 * when missing; the file is written 0600 atomically (temp file, fsync, rename, dir fsync) on
 * every change. Key material is never logged nor put in errors.
 *
 * Throws (failed_precondition) `ca.key.data_dir_permissions` when the data dir is accessible
 * by group or others, `ca.key.file_permissions` when the keys file is (like ssh, it refuses
 * to start rather than use exposed keys), `ca.key.file_corrupt` when the file cannot be
 * parsed, and `ca.key.data_dir_unusable` / `ca.key.file_unreadable` for other I/O problems.
 * Its `generateKey` throws `ca.key.invalid_id` (invalid_argument) for an empty id and
 * `pki.key.unsupported` for an unknown key type.
 */
export async function createDiskKeyManager(deps: DiskKeyManagerDeps): Promise<KeyManager> {
  const dataDir = path.resolve(deps.dataDir);
  const file = path.join(dataDir, KEYS_FILE_NAME);
  const logger = (deps.logger ?? createNoopLogger()).child({ component: "disk-key-manager" });
  await prepareDataDir(dataDir);
  const keys = await loadKeysFile(file);
  logger.info(
    { [LogKeys.path]: file, keyIds: [...keys.keys()] },
    `loaded ${keys.size} key(s) from the keys file`,
  );

  // Changes are applied one at a time so two writers never interleave their files.
  let queue: Promise<unknown> = Promise.resolve();
  function serialize<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  }

  async function persist(next: Map<string, ManagedKey>): Promise<void> {
    const doc: KeysFile = {
      version: KEYS_FILE_VERSION,
      keys: [...next.values()].map((k) => ({
        keyId: k.keyId,
        keyType: k.keyType,
        pkcs8Pem: exportPkcs8Pem(k.privateKey),
      })),
    };
    await writeFileAtomic(dataDir, file, `${JSON.stringify(doc, null, 2)}\n`);
  }

  return {
    async generateKey(keyId: string, keyType: KeyType): Promise<ManagedKey> {
      const key = await generateManagedKey(keyId, keyType);
      return serialize(async () => {
        const next = new Map(keys);
        next.set(keyId, key);
        await persist(next);
        keys.set(keyId, key);
        logger.info({ keyId, keyType }, "key generated and saved");
        return key;
      });
    },
    getKey(keyId: string): Promise<ManagedKey | undefined> {
      return Promise.resolve(keys.get(keyId));
    },
    listKeys(): Promise<ManagedKey[]> {
      return Promise.resolve(
        [...keys.values()].sort((a, b) => (a.keyId < b.keyId ? -1 : a.keyId > b.keyId ? 1 : 0)),
      );
    },
    deleteKey(keyId: string): Promise<void> {
      return serialize(async () => {
        if (!keys.has(keyId)) return;
        const next = new Map(keys);
        next.delete(keyId);
        await persist(next);
        keys.delete(keyId);
        logger.info({ keyId }, "key deleted");
      });
    },
  };
}
