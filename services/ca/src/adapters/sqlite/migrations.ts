import { MeshidError } from "@meshid/errors";
import type { Logger } from "@meshid/telemetry";
import type Database from "better-sqlite3";

/** One versioned schema change of the SQLite datastore. */
export interface SqliteMigration {
  /** Schema version the migration leads to; versions start at 1 and increase by 1. */
  readonly version: number;
  /** Short description, recorded in `schema_migrations`. */
  readonly name: string;
  /** SQL run with `exec` inside the migration's transaction. */
  readonly sql: string;
}

// Times are integer milliseconds since the Unix epoch (UTC). Selector sets are stored twice:
// `entries.selectors` holds the normalised set as JSON (the canonical form, also the key of
// the duplicate rule), `entry_selectors` one row per selector for lookups by selector.
const SCHEMA_V1 = `
CREATE TABLE store_revision (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  revision INTEGER NOT NULL
);
INSERT INTO store_revision (id, revision) VALUES (1, 0);

CREATE TABLE entries (
  id TEXT PRIMARY KEY NOT NULL,
  spiffe_id TEXT NOT NULL,
  parent_id TEXT NOT NULL,
  selectors TEXT NOT NULL,
  selector_count INTEGER NOT NULL,
  x509_svid_ttl_seconds INTEGER NOT NULL,
  dns_names TEXT NOT NULL,
  admin INTEGER NOT NULL,
  hint TEXT NOT NULL,
  owner TEXT NOT NULL,
  revision INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
-- The SPIRE rule: one entry per (selector set, parent, SPIFFE ID). Also serves exact-selector
-- lookups (leading column).
CREATE UNIQUE INDEX entries_identity ON entries (selectors, parent_id, spiffe_id);
CREATE INDEX entries_parent_id ON entries (parent_id, id);
CREATE INDEX entries_spiffe_id ON entries (spiffe_id, id);
CREATE INDEX entries_owner ON entries (owner, id);
CREATE INDEX entries_revision ON entries (revision);

CREATE TABLE entry_selectors (
  entry_id TEXT NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
  type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (entry_id, type, value)
) WITHOUT ROWID;
CREATE INDEX entry_selectors_lookup ON entry_selectors (type, value, entry_id);

CREATE TABLE agents (
  spiffe_id TEXT PRIMARY KEY NOT NULL,
  attestation_type TEXT NOT NULL,
  selectors TEXT NOT NULL,
  x509_svid_serial TEXT NOT NULL,
  x509_svid_expires_at INTEGER NOT NULL,
  banned INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX agents_attestation_type ON agents (attestation_type, spiffe_id);

CREATE TABLE join_tokens (
  token TEXT PRIMARY KEY NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX join_tokens_expires_at ON join_tokens (expires_at);

CREATE TABLE authorities (
  authority_id TEXT PRIMARY KEY NOT NULL,
  state TEXT NOT NULL,
  cert_der BLOB NOT NULL,
  key_id TEXT NOT NULL,
  key_type TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  tainted INTEGER NOT NULL,
  upstream_authority_id TEXT NOT NULL
);
CREATE TABLE authority_upstream_chain (
  authority_id TEXT NOT NULL REFERENCES authorities (authority_id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  cert_der BLOB NOT NULL,
  PRIMARY KEY (authority_id, position)
);

CREATE TABLE bundle (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  trust_domain TEXT NOT NULL,
  sequence_number INTEGER NOT NULL,
  refresh_hint_seconds INTEGER NOT NULL
);
CREATE TABLE bundle_x509_authorities (
  bundle_id INTEGER NOT NULL REFERENCES bundle (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  cert_der BLOB NOT NULL,
  tainted INTEGER NOT NULL,
  PRIMARY KEY (bundle_id, position)
);
`;

/** The schema changes of the SQLite datastore, oldest first. Append; never edit a released one. */
export const SQLITE_MIGRATIONS: readonly SqliteMigration[] = Object.freeze([
  {
    version: 1,
    name: "entries, agents, join tokens, authorities journal, bundle",
    sql: SCHEMA_V1,
  },
  {
    version: 2,
    name: "agents remember the serial their last renewal replaced",
    sql: "ALTER TABLE agents ADD COLUMN previous_x509_svid_serial TEXT NOT NULL DEFAULT '';",
  },
  {
    version: 3,
    name: "the graph revision: the last change that can move an entry out of or into a set",
    // The last graph change of an existing store is unknown: take the current revision, so
    // every agent behind it gets the full ID list once (the safe side).
    sql: `ALTER TABLE store_revision ADD COLUMN graph_revision INTEGER NOT NULL DEFAULT 0;
UPDATE store_revision SET graph_revision = revision;`,
  },
]);

/** The schema version this code writes and reads (the last of {@link SQLITE_MIGRATIONS}). */
export const SQLITE_SCHEMA_VERSION: number = SQLITE_MIGRATIONS.length;

/** Error code of a store written by newer code than this. */
export const SCHEMA_TOO_NEW_CODE = "ca.store.schema_too_new";

const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY NOT NULL,
  name TEXT NOT NULL,
  applied_at INTEGER NOT NULL
)`;

/** Parameters of {@link applySqliteMigrations}. */
export interface ApplySqliteMigrationsParams {
  readonly db: Database.Database;
  /** Default {@link SQLITE_MIGRATIONS}. Versions must be 1, 2, 3, … in order. */
  readonly migrations?: readonly SqliteMigration[];
  readonly logger: Logger;
  /** Recorded as `applied_at`. */
  readonly now: () => Date;
}

/**
 * Brings the schema of `db` up to the last of `migrations`: each pending migration runs in its
 * own IMMEDIATE transaction together with its `schema_migrations` row, so a failed migration
 * leaves the previous version intact and two processes opening the same file never both apply
 * one. Returns the versions applied (empty when the schema was current).
 *
 * @throws MeshidError `ca.store.schema_too_new` (failed_precondition) when the store has a
 *   version newer than the last known migration; whatever a failing migration throws.
 */
export function applySqliteMigrations(params: ApplySqliteMigrationsParams): number[] {
  const { db, logger, now } = params;
  const migrations = params.migrations ?? SQLITE_MIGRATIONS;
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`SQLite migration ${i} has version ${m.version}, expected ${i + 1}`);
    }
  });
  const latest = migrations.length;
  db.exec(CREATE_MIGRATIONS_TABLE);
  const currentVersion = (): number =>
    (
      db.prepare("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").get() as {
        v: number;
      }
    ).v;
  const checkNotTooNew = (version: number): void => {
    if (version > latest) {
      throw new MeshidError(
        "failed_precondition",
        SCHEMA_TOO_NEW_CODE,
        `the datastore has schema version ${version}, newer than ${latest}, the newest this CA knows; run a newer CA or restore a backup`,
        { details: { schemaVersion: version, knownVersion: latest } },
      );
    }
  };
  checkNotTooNew(currentVersion());
  const applied: number[] = [];
  const record = db.prepare(
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
  );
  for (const migration of migrations) {
    const ran = db
      .transaction((): boolean => {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        const version = currentVersion();
        checkNotTooNew(version);
        if (version >= migration.version) return false;
        db.exec(migration.sql);
        record.run(migration.version, migration.name, now().getTime());
        return true;
      })
      .immediate();
    if (ran) {
      applied.push(migration.version);
      logger.info(
        { schemaVersion: migration.version, migration: migration.name },
        "datastore schema migrated",
      );
    }
  }
  return applied;
}

/** Reads the schema version recorded in `db` (0 when no migration ever ran). */
export function readSqliteSchemaVersion(db: Database.Database): number {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (table === undefined) return 0;
  return (
    db.prepare("SELECT coalesce(max(version), 0) AS v FROM schema_migrations").get() as {
      v: number;
    }
  ).v;
}
