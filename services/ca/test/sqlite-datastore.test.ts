import { statSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { isMeshidError } from "@meshid/errors";
import { parseSelector, parseSpiffeId } from "@meshid/spiffe";
import { createMemoryLogger } from "@meshid/telemetry";
import { type TempDir, createTempDir } from "@meshid/testkit";
import Database from "better-sqlite3";
import { createSqliteDatastore } from "../src/adapters/sqlite-datastore";
import {
  SQLITE_MIGRATIONS,
  SQLITE_SCHEMA_VERSION,
  applySqliteMigrations,
  readSqliteSchemaVersion,
} from "../src/adapters/sqlite/migrations";
import type { NewRegistrationEntry } from "../src/domain/types";
import type { Datastore } from "../src/ports";
import { describeDatastoreContract } from "../src/testing/datastore-contract";

describeDatastoreContract("sqlite file", async () => {
  const dir = await createTempDir("ca-store");
  const store = await createSqliteDatastore({ path: join(dir.path, "data", "ca.db") });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await dir.cleanup();
    },
  };
});

describeDatastoreContract("sqlite :memory:", async () => {
  const store = await createSqliteDatastore({ path: ":memory:" });
  return { store, cleanup: () => store.close() };
});

const entry = (name: string): NewRegistrationEntry => ({
  spiffeId: parseSpiffeId(`spiffe://example.org/ns/default/sa/${name}`),
  parentId: parseSpiffeId("spiffe://example.org/meshid/agent/join_token/node-a"),
  selectors: [parseSelector("k8s:ns:default"), parseSelector(`k8s:sa:${name}`)],
  x509SvidTtlSeconds: 0,
  dnsNames: [],
  admin: false,
  hint: "",
  owner: "",
});

const silentLogger = () => createMemoryLogger({ level: "silent" }).logger;

describe("sqlite datastore – on disk", () => {
  let dir: TempDir;
  let path: string;
  const open: Datastore[] = [];

  const openStore = async (options: { now?: () => Date } = {}): Promise<Datastore> => {
    const store = await createSqliteDatastore({ path, logger: silentLogger(), ...options });
    open.push(store);
    return store;
  };

  /** A second, raw connection to inspect the file. */
  const inspect = <T>(fn: (db: Database.Database) => T): T => {
    const db = new Database(path);
    try {
      return fn(db);
    } finally {
      db.close();
    }
  };

  beforeEach(async () => {
    dir = await createTempDir("ca-sqlite");
    path = join(dir.path, "data", "ca.db");
  });

  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    await dir.cleanup();
  });

  it("sqlite datastore – creates the file 0600 in a 0700 data dir", async () => {
    const store = await openStore();
    expect(statSync(join(dir.path, "data")).mode & 0o777).toBe(0o700);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await store.createEntries([entry("web")]);
    // WAL and shared-memory files follow the database file's mode.
    for (const extra of [`${path}-wal`, `${path}-shm`]) {
      if (existsSync(extra)) expect(statSync(extra).mode & 0o777).toBe(0o600);
    }
  });

  it("sqlite datastore – applies every migration to a fresh file in WAL mode", async () => {
    await openStore();
    const { versions, journal, tables } = inspect((db) => ({
      versions: db.prepare("SELECT version FROM schema_migrations ORDER BY version").pluck().all(),
      journal: db.pragma("journal_mode", { simple: true }),
      tables: db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .pluck()
        .all(),
    }));
    expect(versions).toEqual(SQLITE_MIGRATIONS.map((m) => m.version));
    expect(SQLITE_SCHEMA_VERSION).toBe(SQLITE_MIGRATIONS.length);
    expect(journal).toBe("wal");
    expect(tables).toEqual(
      expect.arrayContaining([
        "agents",
        "authorities",
        "bundle",
        "entries",
        "entry_selectors",
        "join_tokens",
        "schema_migrations",
      ]),
    );
  });

  it("sqlite datastore – reopening is idempotent and keeps every kind of data", async () => {
    const memory = createMemoryLogger({ level: "info" });
    const first = await createSqliteDatastore({ path, logger: memory.logger });
    const migratedLines = memory.entries().filter((l) => l.msg === "datastore schema migrated");
    expect(migratedLines).toHaveLength(SQLITE_SCHEMA_VERSION);
    const [created] = await first.createEntries([entry("web"), entry("api")]);
    await first.putAgent({
      spiffeId: parseSpiffeId("spiffe://example.org/meshid/agent/join_token/node-a"),
      attestationType: "join_token",
      selectors: [],
      x509SvidSerial: "01",
      x509SvidExpiresAt: new Date(1_000_000),
      banned: false,
      createdAt: new Date(1000),
      updatedAt: new Date(2000),
    });
    await first.createJoinToken({ token: "t", expiresAt: new Date(9_000_000_000_000) });
    await first.saveAuthorities([
      {
        authorityId: "aa",
        state: "active",
        certDer: new Uint8Array([1, 2, 3]),
        upstreamChainDer: [new Uint8Array([4, 5])],
        keyId: "k",
        keyType: "ec-p256",
        notBefore: new Date(0),
        notAfter: new Date(1000),
        tainted: false,
        upstreamAuthorityId: "",
      },
    ]);
    await first.saveBundle({
      trustDomain: "example.org",
      sequenceNumber: 7,
      refreshHintSeconds: 300,
      x509Authorities: [{ certDer: new Uint8Array([9]), tainted: false }],
    });
    await first.close();
    const before = inspect((db) => db.prepare("SELECT * FROM schema_migrations").all());

    const memory2 = createMemoryLogger({ level: "info" });
    const second = await createSqliteDatastore({ path, logger: memory2.logger });
    open.push(second);
    expect(memory2.entries().filter((l) => l.msg === "datastore schema migrated")).toEqual([]);
    expect(inspect((db) => db.prepare("SELECT * FROM schema_migrations").all())).toEqual(before);

    expect(await second.getRevision()).toBe(2);
    const id = created?.ok === true ? created.value.id : "";
    expect((await second.getEntry(id))?.spiffeId.toString()).toContain("/sa/web");
    expect((await second.listEntries({})).items).toHaveLength(2);
    expect(
      (await second.getAgent("spiffe://example.org/meshid/agent/join_token/node-a"))
        ?.x509SvidSerial,
    ).toBe("01");
    expect(await second.consumeJoinToken("t", new Date(0))).toBe("consumed");
    const [auth] = await second.listAuthorities();
    expect([...auth!.certDer]).toEqual([1, 2, 3]);
    expect(auth!.upstreamChainDer.map((d) => [...d])).toEqual([[4, 5]]);
    expect((await second.getBundle())?.sequenceNumber).toBe(7);
    // The revision counter carries on.
    const [next] = await second.createEntries([entry("db")]);
    expect(next?.ok === true && next.value.revision).toBe(3);
  });

  it("sqlite datastore – refuses a store whose schema is newer than the code", async () => {
    const store = await openStore();
    await store.close();
    inspect((db) =>
      db
        .prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .run(SQLITE_SCHEMA_VERSION + 1, "from the future", 0),
    );
    let caught: unknown;
    try {
      open.push(await createSqliteDatastore({ path }));
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught, "ca.store.schema_too_new")).toBe(true);
    expect(isMeshidError(caught) && caught.kind).toBe("failed_precondition");
    expect(isMeshidError(caught) && caught.message).toContain(
      `schema version ${SQLITE_SCHEMA_VERSION + 1}`,
    );
    // Nothing was changed by the refused open.
    expect(inspect((db) => readSqliteSchemaVersion(db))).toBe(SQLITE_SCHEMA_VERSION + 1);
  });

  it("sqlite datastore – refuses a file that is not a database", async () => {
    const bad = join(dir.path, "not-a-db");
    writeFileSync(bad, "this is not an SQLite database, just some text ".repeat(20));
    let caught: unknown;
    try {
      open.push(await createSqliteDatastore({ path: bad }));
    } catch (err) {
      caught = err;
    }
    expect(isMeshidError(caught)).toBe(true);
    expect(isMeshidError(caught) && caught.code).toMatch(/^ca\.store\./);
  });

  it("sqlite datastore – stamps createdAt and updatedAt from the injected clock", async () => {
    let nowMs = Date.parse("2026-11-22T12:00:00.000Z");
    const store = await openStore({ now: () => new Date(nowMs) });
    const [created] = await store.createEntries([entry("web")]);
    if (created?.ok !== true) throw new Error("create failed");
    expect(created.value.createdAt.toISOString()).toBe("2026-11-22T12:00:00.000Z");
    nowMs += 90_500;
    const [updated] = await store.updateEntries([
      { ...entry("web"), hint: "x", id: created.value.id },
    ]);
    if (updated?.ok !== true) throw new Error("update failed");
    expect(updated.value.after.createdAt.toISOString()).toBe("2026-11-22T12:00:00.000Z");
    expect(updated.value.after.updatedAt.toISOString()).toBe("2026-11-22T12:01:30.500Z");
    const stored = await store.getEntry(created.value.id);
    expect(stored?.updatedAt.toISOString()).toBe("2026-11-22T12:01:30.500Z");
  });

  it("sqlite datastore – deleting an entry removes its selector rows (foreign keys on)", async () => {
    const store = await openStore();
    const [created] = await store.createEntries([entry("web")]);
    if (created?.ok !== true) throw new Error("create failed");
    const count = (): unknown =>
      inspect((db) => db.prepare("SELECT count(*) FROM entry_selectors").pluck().get());
    expect(count()).toBe(2);
    await store.deleteEntries([created.value.id]);
    expect(count()).toBe(0);
  });

  it("sqlite datastore – two stores on one file share the revision counter", async () => {
    const a = await openStore();
    const b = await openStore();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).createEntries([entry(`w${i}`)])),
    );
    const revisions = results.flat().map((r) => (r.ok ? r.value.revision : -1));
    expect(new Set(revisions).size).toBe(20);
    expect(Math.min(...revisions)).toBe(1);
    expect(await a.getRevision()).toBe(20);
    expect(await b.getRevision()).toBe(20);
    expect((await b.listEntries({})).items).toHaveLength(20);
  });
});

describe("sqlite migrations – the graph revision (schema 3)", () => {
  let dir: TempDir;

  beforeEach(async () => {
    dir = await createTempDir("ca-sqlite-v2");
  });

  afterEach(async () => {
    await dir.cleanup();
  });

  it("sqlite migrations – a schema-2 store migrates with graph revision = revision, then plain creates leave it", async () => {
    const path = join(dir.path, "ca.db");
    const db = new Database(path);
    try {
      const logger = silentLogger();
      const v2 = SQLITE_MIGRATIONS.slice(0, 2);
      expect(applySqliteMigrations({ db, logger, now: () => new Date(0), migrations: v2 })).toEqual(
        [1, 2],
      );
      // An old CA wrote 7 changes; which of them changed the graph is unknown.
      db.exec("UPDATE store_revision SET revision = 7 WHERE id = 1");
    } finally {
      db.close();
    }
    const store = await createSqliteDatastore({ path, logger: silentLogger() });
    try {
      expect(await store.getRevisions()).toEqual({ revision: 7, graphRevision: 7 });
      const created = await store.createEntries([entry("web")]);
      expect(created[0]?.ok).toBe(true);
      expect(await store.getRevisions()).toEqual({ revision: 8, graphRevision: 7 });
    } finally {
      await store.close();
    }
  });
});

describe("sqlite migrations – upgrades", () => {
  const logger = createMemoryLogger({ level: "silent" }).logger;
  const now = () => new Date(0);

  it("sqlite migrations – applies only pending migrations, in order, keeping data", () => {
    const db = new Database(":memory:");
    try {
      expect(readSqliteSchemaVersion(db)).toBe(0);
      const v1 = [{ version: 1, name: "t", sql: "CREATE TABLE t (a INTEGER)" }];
      expect(applySqliteMigrations({ db, logger, now, migrations: v1 })).toEqual([1]);
      db.exec("INSERT INTO t VALUES (42)");
      const v3 = [
        ...v1,
        { version: 2, name: "t.b", sql: "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x'" },
        { version: 3, name: "u", sql: "CREATE TABLE u (c INTEGER)" },
      ];
      expect(applySqliteMigrations({ db, logger, now, migrations: v3 })).toEqual([2, 3]);
      expect(applySqliteMigrations({ db, logger, now, migrations: v3 })).toEqual([]);
      expect(db.prepare("SELECT a, b FROM t").all()).toEqual([{ a: 42, b: "x" }]);
      expect(readSqliteSchemaVersion(db)).toBe(3);
    } finally {
      db.close();
    }
  });

  it("sqlite migrations – a failing migration rolls back alone and keeps the earlier version", () => {
    const db = new Database(":memory:");
    try {
      const migrations = [
        { version: 1, name: "t", sql: "CREATE TABLE t (a INTEGER)" },
        { version: 2, name: "broken", sql: "CREATE TABLE half (x INTEGER); NOT VALID SQL" },
      ];
      expect(() => applySqliteMigrations({ db, logger, now, migrations })).toThrow();
      expect(readSqliteSchemaVersion(db)).toBe(1);
      const half = db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get();
      expect(half).toBeUndefined();
    } finally {
      db.close();
    }
  });

  it("sqlite migrations – refuses a list whose versions are not 1, 2, 3, …", () => {
    const db = new Database(":memory:");
    try {
      expect(() =>
        applySqliteMigrations({
          db,
          logger,
          now,
          migrations: [{ version: 2, name: "x", sql: "SELECT 1" }],
        }),
      ).toThrow("expected 1");
    } finally {
      db.close();
    }
  });
});
