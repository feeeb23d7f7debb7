import { promises as fs } from "node:fs";
import path from "node:path";
import { sign, verify } from "node:crypto";
import { exportSpkiDer } from "@meshid/pki";
import { createMemoryLogger } from "@meshid/telemetry";
import { createTempDir, type TempDir } from "@meshid/testkit";
import { createDiskKeyManager, KEYS_FILE_NAME } from "../src/adapters/disk-key-manager";
import { createMemoryKeyManager } from "../src/adapters/memory-key-manager";
import { describeKeyManagerContract } from "../src/testing/key-manager-contract";

describeKeyManagerContract("memory", () =>
  Promise.resolve({ subject: createMemoryKeyManager(), cleanup: () => Promise.resolve() }),
);

describeKeyManagerContract("disk", async () => {
  const dir = await createTempDir("meshid-ca-keys-");
  const subject = await createDiskKeyManager({ dataDir: path.join(dir.path, "data") });
  return { subject, cleanup: () => dir.cleanup() };
});

function mode(stat: { mode: number }): number {
  return stat.mode & 0o777;
}

function spkiHex(key: { publicKey: Parameters<typeof exportSpkiDer>[0] }): string {
  return Buffer.from(exportSpkiDer(key.publicKey)).toString("hex");
}

describe("disk key manager", () => {
  let tmp: TempDir;
  let dataDir: string;
  let keysFile: string;

  beforeEach(async () => {
    tmp = await createTempDir("meshid-ca-disk-keys-");
    dataDir = path.join(tmp.path, "data");
    keysFile = path.join(dataDir, KEYS_FILE_NAME);
  });

  afterEach(async () => {
    await tmp.cleanup();
  });

  it("disk key manager – a new instance on the same dir returns the same keys", async () => {
    const first = await createDiskKeyManager({ dataDir });
    const a = await first.generateKey("authority-1", "ec-p256");
    const b = await first.generateKey("authority-2", "rsa-2048");
    await first.generateKey("gone", "ec-p384");
    await first.deleteKey("gone");

    const second = await createDiskKeyManager({ dataDir });
    const keys = await second.listKeys();
    expect(keys.map((k) => [k.keyId, k.keyType])).toEqual([
      ["authority-1", "ec-p256"],
      ["authority-2", "rsa-2048"],
    ]);
    const a2 = await second.getKey("authority-1");
    const b2 = await second.getKey("authority-2");
    expect(spkiHex(a2!)).toBe(spkiHex(a));
    expect(spkiHex(b2!)).toBe(spkiHex(b));
    // The reloaded private key signs what the original public key verifies.
    const data = Buffer.from("restart");
    expect(verify("sha256", data, a.publicKey, sign("sha256", data, a2!.privateKey))).toBe(true);
    expect(await second.getKey("gone")).toBeUndefined();
  });

  it("disk key manager – a replaced key stays replaced after a restart", async () => {
    const first = await createDiskKeyManager({ dataDir });
    await first.generateKey("k", "ec-p256");
    const replaced = await first.generateKey("k", "ec-p384");
    const again = await (await createDiskKeyManager({ dataDir })).getKey("k");
    expect(again?.keyType).toBe("ec-p384");
    expect(spkiHex(again!)).toBe(spkiHex(replaced));
  });

  it("disk key manager – creates the data dir 0700 and the keys file 0600", async () => {
    const km = await createDiskKeyManager({ dataDir });
    expect(mode(await fs.stat(dataDir))).toBe(0o700);
    await km.generateKey("k", "ec-p256");
    expect(mode(await fs.stat(keysFile))).toBe(0o600);
    // Only the keys file is left behind: no temp files.
    expect(await fs.readdir(dataDir)).toEqual([KEYS_FILE_NAME]);
  });

  it("disk key manager – keeps 0600 and 0700 under a permissive umask", async () => {
    const old = process.umask(0o000);
    try {
      const km = await createDiskKeyManager({ dataDir });
      await km.generateKey("k", "ec-p256");
    } finally {
      process.umask(old);
    }
    expect(mode(await fs.stat(dataDir))).toBe(0o700);
    expect(mode(await fs.stat(keysFile))).toBe(0o600);
  });

  it("disk key manager – stores keys as PKCS#8 PEM with id and type", async () => {
    const km = await createDiskKeyManager({ dataDir });
    await km.generateKey("k", "ec-p256");
    const doc = JSON.parse(await fs.readFile(keysFile, "utf8")) as {
      version: number;
      keys: { keyId: string; keyType: string; pkcs8Pem: string }[];
    };
    expect(doc.version).toBe(1);
    expect(doc.keys).toHaveLength(1);
    expect(doc.keys[0]).toMatchObject({ keyId: "k", keyType: "ec-p256" });
    expect(doc.keys[0]?.pkcs8Pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it("disk key manager – refuses a keys file readable by group or others (0644)", async () => {
    await (await createDiskKeyManager({ dataDir })).generateKey("k", "ec-p256");
    await fs.chmod(keysFile, 0o644);
    const err = await createDiskKeyManager({ dataDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ca.key.file_permissions", kind: "failed_precondition" });
    expect((err as Error).message).toBe(
      `keys file ${keysFile} has mode 0644: private keys must not be readable by group or others (chmod 600 ${keysFile})`,
    );
  });

  it("disk key manager – refuses a keys file readable by group only (0640)", async () => {
    await (await createDiskKeyManager({ dataDir })).generateKey("k", "ec-p256");
    await fs.chmod(keysFile, 0o640);
    await expect(createDiskKeyManager({ dataDir })).rejects.toMatchObject({
      code: "ca.key.file_permissions",
    });
  });

  it("disk key manager – refuses a data dir accessible by others", async () => {
    await fs.mkdir(dataDir, { mode: 0o700 });
    await fs.chmod(dataDir, 0o755);
    const err = await createDiskKeyManager({ dataDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ca.key.data_dir_permissions", kind: "failed_precondition" });
    expect((err as Error).message).toContain(`data dir ${dataDir} has mode 0755`);
  });

  it("disk key manager – accepts an existing 0700 data dir", async () => {
    await fs.mkdir(dataDir, { mode: 0o700 });
    await fs.chmod(dataDir, 0o700);
    const km = await createDiskKeyManager({ dataDir });
    expect(await km.listKeys()).toEqual([]);
  });

  it("disk key manager – refuses a data dir that is a file", async () => {
    await fs.writeFile(dataDir, "not a dir");
    await expect(createDiskKeyManager({ dataDir })).rejects.toMatchObject({
      code: "ca.key.data_dir_unusable",
    });
  });

  it.each([
    ["not JSON", "{ this is not json", "it is not valid JSON"],
    ["a JSON array", "[]", "it is not a JSON object"],
    ["a wrong version", '{"version": 7, "keys": []}', "version is 7, expected 1"],
    ["keys not an array", '{"version": 1, "keys": {}}', '"keys" is not an array'],
    [
      "a bad key type",
      '{"version": 1, "keys": [{"keyId": "k", "keyType": "dsa", "pkcs8Pem": ""}]}',
      "keys[0].keyType is not a supported key type",
    ],
    [
      "a bad PEM",
      '{"version": 1, "keys": [{"keyId": "k", "keyType": "ec-p256", "pkcs8Pem": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"}]}',
      "keys[0].pkcs8Pem is not a valid PKCS#8 private key",
    ],
    [
      "an empty key id",
      '{"version": 1, "keys": [{"keyId": "", "keyType": "ec-p256", "pkcs8Pem": ""}]}',
      "keys[0].keyId is not a non-empty string",
    ],
  ])("disk key manager – refuses a corrupt keys file (%s)", async (_name, content, what) => {
    await fs.mkdir(dataDir, { mode: 0o700 });
    await fs.writeFile(keysFile, content, { mode: 0o600 });
    const err = await createDiskKeyManager({ dataDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ca.key.file_corrupt", kind: "failed_precondition" });
    expect((err as Error).message).toBe(
      `keys file ${keysFile} is corrupt: ${what}; restore it from a backup or remove it to start with new keys (a new CA authority)`,
    );
  });

  it("disk key manager – refuses a key whose stored type does not match the key", async () => {
    await (await createDiskKeyManager({ dataDir })).generateKey("k", "ec-p256");
    const doc = JSON.parse(await fs.readFile(keysFile, "utf8")) as {
      keys: { keyType: string }[];
    };
    doc.keys[0]!.keyType = "ec-p384";
    await fs.writeFile(keysFile, JSON.stringify(doc), { mode: 0o600 });
    await expect(createDiskKeyManager({ dataDir })).rejects.toThrow(
      "keys[0].keyType says ec-p384 but the key is ec-p256",
    );
  });

  it("disk key manager – refuses a truncated keys file without showing its content", async () => {
    await (await createDiskKeyManager({ dataDir })).generateKey("k", "ec-p256");
    const text = await fs.readFile(keysFile, "utf8");
    await fs.writeFile(keysFile, text.slice(0, Math.floor(text.length / 2)), { mode: 0o600 });
    const err = await createDiskKeyManager({ dataDir }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ca.key.file_corrupt" });
    expect((err as Error).message).not.toContain("PRIVATE KEY");
    expect((err as Error).message).not.toContain(text.slice(100, 140));
  });

  it("disk key manager – never logs key material", async () => {
    const mem = createMemoryLogger();
    const km = await createDiskKeyManager({ dataDir, logger: mem.logger });
    const key = await km.generateKey("k", "ec-p256");
    await km.deleteKey("k");
    await createDiskKeyManager({ dataDir, logger: mem.logger });
    const logged = mem.text();
    expect(logged).toContain("key generated");
    expect(logged).not.toContain("PRIVATE KEY");
    const der = Buffer.from(key.privateKey.export({ type: "pkcs8", format: "der" }));
    expect(logged).not.toContain(der.toString("base64").slice(20, 60));
  });
});
