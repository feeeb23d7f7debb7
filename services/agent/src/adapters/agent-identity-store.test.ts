import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createMemoryLogger } from "@meshid/telemetry";
import { createTempDir, createTestCa, type TempDir, type TestCa } from "@meshid/testkit";
import type { PersistedAgentIdentity } from "../ports";
import {
  AGENT_BUNDLE_FILE,
  AGENT_KEY_FILE,
  AGENT_SVID_FILE,
  AgentIdentityStoreErrorCode,
  createDiskAgentIdentityStore,
} from "./agent-identity-store";

const TD = "example.org";
let ca: TestCa;
let dir: TempDir;

beforeAll(async () => {
  ca = await createTestCa({ trustDomain: TD });
});

beforeEach(async () => {
  dir = await createTempDir("agent-store-");
});

afterEach(async () => {
  await dir.cleanup();
});

async function identity(): Promise<PersistedAgentIdentity> {
  const svid = await ca.issueSvid({ spiffeId: `spiffe://${TD}/meshid/agent/join_token/t` });
  return {
    certChainDer: svid.certChainDer,
    privateKeyPkcs8Der: svid.keyPkcs8Der,
    bundle: {
      trustDomain: TD,
      x509AuthoritiesDer: [ca.rootCertDer],
      taintedAuthorityIds: ["0a0b"],
      sequenceNumber: 7,
    },
  };
}

describe("disk agent identity store", () => {
  it("agent identity store – save then load round-trips with 0700 dir and 0600 files, no temp files left", async () => {
    const dataDir = join(dir.path, "nested", "agent");
    const store = createDiskAgentIdentityStore({ dataDir, logger: createMemoryLogger().logger });
    expect(await store.load()).toBeUndefined();
    const saved = await identity();
    await store.save(saved);
    const loaded = await store.load();
    expect(loaded?.certChainDer).toEqual(saved.certChainDer);
    expect(loaded?.privateKeyPkcs8Der).toEqual(saved.privateKeyPkcs8Der);
    expect(loaded?.bundle).toEqual(saved.bundle);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    expect((await readdir(dataDir)).sort()).toEqual(
      [AGENT_BUNDLE_FILE, AGENT_KEY_FILE, AGENT_SVID_FILE].sort(),
    );
    for (const f of await readdir(dataDir)) {
      expect((await stat(join(dataDir, f))).mode & 0o777).toBe(0o600);
    }
    expect(await readFile(join(dataDir, AGENT_KEY_FILE), "utf8")).toContain(
      "-----BEGIN PRIVATE KEY-----",
    );
  });

  it("agent identity store – refuses a key file or data dir open to group or others", async () => {
    const dataDir = join(dir.path, "agent");
    const store = createDiskAgentIdentityStore({ dataDir, logger: createMemoryLogger().logger });
    await store.save(await identity());
    await chmod(join(dataDir, AGENT_KEY_FILE), 0o640);
    await expect(store.load()).rejects.toMatchObject({
      code: AgentIdentityStoreErrorCode.keyFilePermissions,
    });
    await chmod(join(dataDir, AGENT_KEY_FILE), 0o600);
    await chmod(dataDir, 0o755);
    await expect(store.load()).rejects.toMatchObject({
      code: AgentIdentityStoreErrorCode.dataDirPermissions,
    });
    await expect(store.save(await identity())).rejects.toMatchObject({
      code: AgentIdentityStoreErrorCode.dataDirPermissions,
    });
  });

  it("agent identity store – incomplete, corrupt or mismatched files load as nothing, without key material in logs", async () => {
    const dataDir = join(dir.path, "agent");
    const mem = createMemoryLogger();
    const store = createDiskAgentIdentityStore({ dataDir, logger: mem.logger });
    const first = await identity();
    await store.save(first);

    // The SVID of another key: a crash between the key and SVID writes.
    const other = await identity();
    await store.save({ ...other, privateKeyPkcs8Der: first.privateKeyPkcs8Der });
    expect(await store.load()).toBeUndefined();

    await store.save(first);
    await writeFile(join(dataDir, AGENT_BUNDLE_FILE), "{ not json", { mode: 0o600 });
    expect(await store.load()).toBeUndefined();

    await store.save(first);
    await writeFile(join(dataDir, AGENT_SVID_FILE), "garbage", { mode: 0o600 });
    expect(await store.load()).toBeUndefined();
    expect(mem.text()).not.toContain("PRIVATE KEY");
    expect(mem.text()).toContain("attesting again");
  });

  it("agent identity store – a data dir path that is a file is unusable", async () => {
    const dataDir = join(dir.path, "file");
    await mkdir(dir.path, { recursive: true });
    await writeFile(dataDir, "x");
    const store = createDiskAgentIdentityStore({ dataDir, logger: createMemoryLogger().logger });
    await expect(store.load()).rejects.toMatchObject({
      code: AgentIdentityStoreErrorCode.dataDirUnusable,
    });
  });
});
