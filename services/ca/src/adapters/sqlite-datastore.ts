import { randomUUID } from "node:crypto";
import { closeSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import { MeshidError } from "@meshid/errors";
import { type Selector, type SpiffeId, normalizeSelectors, parseSpiffeId } from "@meshid/spiffe";
import { LogKeys, type Logger, createNoopLogger } from "@meshid/telemetry";
import Database from "better-sqlite3";
import type {
  AttestationType,
  AttestedAgent,
  AuthorityRecord,
  AuthorityState,
  BatchItemResult,
  BundleRecord,
  EntryRef,
  JoinToken,
  NewRegistrationEntry,
  Page,
  RegistrationEntry,
  RegistrationEntryUpdate,
} from "../domain/types";
import type {
  ConsumeJoinTokenResult,
  Datastore,
  ListAgentsParams,
  ListEntriesParams,
} from "../ports";
import { SCHEMA_TOO_NEW_CODE, applySqliteMigrations } from "./sqlite/migrations";
import {
  PAGE_SIZE_CODE,
  PAGE_TOKEN_CODE,
  decodePageToken,
  encodePageToken,
  resolvePageSize,
} from "./sqlite/page-token";

/** Default time a statement waits for another connection's write lock, in milliseconds. */
export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5000;

/** Parameters of {@link createSqliteDatastore}. */
export interface CreateSqliteDatastoreParams {
  /**
   * The database file (created 0600, its directory 0700 when missing), or `":memory:"` for a
   * private in-memory store (tests).
   */
  readonly path: string;
  readonly logger?: Logger;
  /** Time source of entries' createdAt/updatedAt; default `() => new Date()`. */
  readonly now?: () => Date;
  /** How long a write waits for a lock held by another connection; default 5000 ms. */
  readonly busyTimeoutMs?: number;
}

/** Error codes the datastore adapters use (kinds in parentheses). */
export const DatastoreErrorCode = {
  /** (failed_precondition) The store was written by a newer CA. */
  schemaTooNew: SCHEMA_TOO_NEW_CODE,
  /** (invalid_argument) Page size negative, fractional or over 1000. */
  pageSize: PAGE_SIZE_CODE,
  /** (invalid_argument) Malformed page token, or one of another listing. */
  pageToken: PAGE_TOKEN_CODE,
  /** (not_found) No entry with that id. */
  entryNotFound: "ca.entry.not_found",
  /** (already_exists) Another entry has the same SPIFFE ID, parent ID and selector set. */
  entryDuplicate: "ca.entry.duplicate",
  /** (already_exists) The caller-chosen entry id is in use. */
  entryIdTaken: "ca.entry.id_taken",
  /** (already_exists) The join token exists. */
  joinTokenDuplicate: "ca.join_token.duplicate",
  /** (invalid_argument) An authorities journal names the same authority twice. */
  authorityDuplicate: "ca.store.authority_duplicate",
  /** (unavailable) The store was closed. */
  closed: "ca.store.closed",
  /** (unavailable) The database is locked, full or unreadable; retrying may help. */
  unavailable: "ca.store.unavailable",
  /** (internal) Any other database failure. */
  internal: "ca.store.internal",
} as const;

interface EntryRow {
  id: string;
  spiffe_id: string;
  parent_id: string;
  selectors: string;
  x509_svid_ttl_seconds: number;
  dns_names: string;
  admin: number;
  hint: string;
  owner: string;
  revision: number;
  created_at: number;
  updated_at: number;
}

interface AgentRow {
  spiffe_id: string;
  attestation_type: string;
  selectors: string;
  x509_svid_serial: string;
  previous_x509_svid_serial: string;
  x509_svid_expires_at: number;
  banned: number;
  created_at: number;
  updated_at: number;
}

interface AuthorityRow {
  authority_id: string;
  state: string;
  cert_der: Buffer;
  key_id: string;
  key_type: string;
  not_before: number;
  not_after: number;
  tainted: number;
  upstream_authority_id: string;
}

const ENTRY_COLUMNS =
  "e.id, e.spiffe_id, e.parent_id, e.selectors, e.x509_svid_ttl_seconds, e.dns_names, e.admin, e.hint, e.owner, e.revision, e.created_at, e.updated_at";
const AGENT_COLUMNS =
  "spiffe_id, attestation_type, selectors, x509_svid_serial, previous_x509_svid_serial, x509_svid_expires_at, banned, created_at, updated_at";

/** The canonical text of a selector list: JSON `[[type, value], …]` (unambiguous). */
function selectorsToJson(selectors: readonly Selector[]): string {
  return JSON.stringify(selectors.map((s) => [s.type, s.value]));
}

function selectorsFromJson(text: string): Selector[] {
  return (JSON.parse(text) as [string, string][]).map(([type, value]) => ({ type, value }));
}

function toBlob(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A private copy, so callers never hold a view of a driver buffer. */
function fromBlob(blob: Buffer): Uint8Array {
  return new Uint8Array(blob);
}

// SpiffeIds are immutable and parents repeat across many entries: reuse parsed ones on reads.
const SPIFFE_ID_CACHE_LIMIT = 10_000;
const spiffeIdCache = new Map<string, SpiffeId>();

function storedSpiffeId(text: string): SpiffeId {
  let id = spiffeIdCache.get(text);
  if (id === undefined) {
    id = parseSpiffeId(text);
    if (spiffeIdCache.size >= SPIFFE_ID_CACHE_LIMIT) spiffeIdCache.clear();
    spiffeIdCache.set(text, id);
  }
  return id;
}

function rowToEntry(row: EntryRow): RegistrationEntry {
  return {
    id: row.id,
    spiffeId: storedSpiffeId(row.spiffe_id),
    parentId: storedSpiffeId(row.parent_id),
    selectors: selectorsFromJson(row.selectors),
    x509SvidTtlSeconds: row.x509_svid_ttl_seconds,
    dnsNames: JSON.parse(row.dns_names) as string[],
    admin: row.admin !== 0,
    hint: row.hint,
    owner: row.owner,
    revision: row.revision,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function rowToAgent(row: AgentRow): AttestedAgent {
  return {
    spiffeId: storedSpiffeId(row.spiffe_id),
    attestationType: row.attestation_type as AttestationType,
    selectors: selectorsFromJson(row.selectors),
    x509SvidSerial: row.x509_svid_serial,
    ...(row.previous_x509_svid_serial === ""
      ? {}
      : { previousX509SvidSerial: row.previous_x509_svid_serial }),
    x509SvidExpiresAt: new Date(row.x509_svid_expires_at),
    banned: row.banned !== 0,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

function entryNotFound(id: string): MeshidError {
  return new MeshidError("not_found", DatastoreErrorCode.entryNotFound, `entry ${id} not found`, {
    details: { entryId: id },
  });
}

function entryDuplicate(existingId: string): MeshidError {
  return new MeshidError(
    "already_exists",
    DatastoreErrorCode.entryDuplicate,
    `an entry with the same SPIFFE ID, parent ID and selectors already exists (${existingId})`,
    { details: { existingEntryId: existingId } },
  );
}

const UNAVAILABLE_SQLITE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|NOMEM)/;

/** Turns a driver or decoding failure into a `ca.store.*` MeshidError; keeps MeshidErrors. */
function storeError(err: unknown, operation: string): MeshidError {
  if (err instanceof MeshidError) return err;
  if (err instanceof Database.SqliteError && UNAVAILABLE_SQLITE_CODES.test(err.code)) {
    return new MeshidError(
      "unavailable",
      DatastoreErrorCode.unavailable,
      `datastore ${operation} failed: ${err.message}`,
      { cause: err, details: { sqliteCode: err.code } },
    );
  }
  const message = err instanceof Error ? err.message : String(err);
  return new MeshidError(
    "internal",
    DatastoreErrorCode.internal,
    `datastore ${operation} failed: ${message}`,
    { cause: err },
  );
}

/** Creates the database file 0600 (and its directory 0700) unless it exists. */
function createDatabaseFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return;
    throw err;
  }
  closeSync(fd);
}

/**
 * Opens (creating when missing) the CA's SQLite datastore and applies pending schema
 * migrations, each in its own transaction (see ./sqlite/migrations).
 *
 * The database runs in WAL mode with `synchronous=NORMAL`: a commit is durable once written to
 * the WAL, so every acknowledged write survives `kill -9` of the CA process; only an OS crash
 * or power loss may lose the last commits (never corrupting the file). Foreign keys are on and
 * writers wait up to `busyTimeoutMs` for another connection's lock. Methods are synchronous
 * underneath (better-sqlite3) and resolve once committed; batch methods commit each batch in
 * one transaction with a savepoint per item, so a refused item leaves the others applied.
 * Times are stored as integer milliseconds.
 *
 * @throws MeshidError `ca.store.schema_too_new` (failed_precondition) when the file was
 *   written by a newer CA; `ca.store.unavailable` / `ca.store.internal` when it cannot be
 *   opened or migrated.
 */
export function createSqliteDatastore(params: CreateSqliteDatastoreParams): Promise<Datastore> {
  try {
    return Promise.resolve(openSqliteDatastore(params));
  } catch (err) {
    return Promise.reject(storeError(err, "open"));
  }
}

function openSqliteDatastore(params: CreateSqliteDatastoreParams): Datastore {
  const logger = (params.logger ?? createNoopLogger()).child({ component: "sqlite-datastore" });
  const now = params.now ?? (() => new Date());
  const busyTimeoutMs = params.busyTimeoutMs ?? DEFAULT_SQLITE_BUSY_TIMEOUT_MS;
  let db: Database.Database;
  try {
    if (params.path !== ":memory:") createDatabaseFile(params.path);
    db = new Database(params.path);
  } catch (err) {
    throw storeError(err, "open");
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    applySqliteMigrations({ db, logger, now });
  } catch (err) {
    db.close();
    throw storeError(err, "open");
  }
  logger.debug({ [LogKeys.path]: params.path }, "datastore opened");
  return sqliteDatastore(db, now);
}

function sqliteDatastore(db: Database.Database, now: () => Date): Datastore {
  let closed = false;

  const stmt = {
    bumpRevision: db.prepare<[], { revision: number }>(
      "UPDATE store_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision",
    ),
    getRevision: db.prepare<[], { revision: number }>(
      "SELECT revision FROM store_revision WHERE id = 1",
    ),
    getRevisions: db.prepare<[], { revision: number; graphRevision: number }>(
      "SELECT revision, graph_revision AS graphRevision FROM store_revision WHERE id = 1",
    ),
    // Called inside the write's transaction, right after bumpRevision.
    setGraphRevision: db.prepare<[number], unknown>(
      "UPDATE store_revision SET graph_revision = ? WHERE id = 1",
    ),
    hasChildren: db.prepare<[string], { one: number }>(
      "SELECT 1 AS one FROM entries WHERE parent_id = ? LIMIT 1",
    ),
    listChangedSince: db.prepare<[number, number], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM entries e WHERE e.revision > ? ORDER BY e.revision LIMIT ?`,
    ),
    getEntry: db.prepare<[string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM entries e WHERE e.id = ?`,
    ),
    entryIdExists: db.prepare<[string], { one: number }>(
      "SELECT 1 AS one FROM entries WHERE id = ?",
    ),
    findIdentity: db.prepare<[string, string, string], { id: string }>(
      "SELECT id FROM entries WHERE selectors = ? AND parent_id = ? AND spiffe_id = ?",
    ),
    insertEntry: db.prepare(
      `INSERT INTO entries (id, spiffe_id, parent_id, selectors, selector_count, x509_svid_ttl_seconds,
         dns_names, admin, hint, owner, revision, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    updateEntry: db.prepare(
      `UPDATE entries SET spiffe_id = ?, parent_id = ?, selectors = ?, selector_count = ?,
         x509_svid_ttl_seconds = ?, dns_names = ?, admin = ?, hint = ?, owner = ?, revision = ?,
         updated_at = ?
       WHERE id = ?`,
    ),
    deleteEntry: db.prepare("DELETE FROM entries WHERE id = ?"),
    insertSelector: db.prepare(
      "INSERT INTO entry_selectors (entry_id, type, value) VALUES (?, ?, ?)",
    ),
    deleteSelectors: db.prepare("DELETE FROM entry_selectors WHERE entry_id = ?"),
    listByParents: db.prepare<[string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM entries e
       WHERE e.parent_id IN (SELECT value FROM json_each(?)) ORDER BY e.id`,
    ),
    // Three columns, no JSON: the graph walk of every sync reads all of an agent's entries.
    listRefsByParents: db.prepare<[string], EntryRef>(
      `SELECT e.id AS id, e.spiffe_id AS spiffeId, e.revision AS revision FROM entries e
       WHERE e.parent_id IN (SELECT value FROM json_each(?)) ORDER BY e.id`,
    ),
    getEntriesByIds: db.prepare<[string], EntryRow>(
      `SELECT ${ENTRY_COLUMNS} FROM entries e
       WHERE e.id IN (SELECT value FROM json_each(?)) ORDER BY e.id`,
    ),
    putAgent: db.prepare(
      `INSERT INTO agents (${AGENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (spiffe_id) DO UPDATE SET attestation_type = excluded.attestation_type,
         selectors = excluded.selectors, x509_svid_serial = excluded.x509_svid_serial,
         previous_x509_svid_serial = excluded.previous_x509_svid_serial,
         x509_svid_expires_at = excluded.x509_svid_expires_at, banned = excluded.banned,
         created_at = excluded.created_at, updated_at = excluded.updated_at`,
    ),
    getAgent: db.prepare<[string], AgentRow>(
      `SELECT ${AGENT_COLUMNS} FROM agents WHERE spiffe_id = ?`,
    ),
    deleteAgent: db.prepare("DELETE FROM agents WHERE spiffe_id = ?"),
    insertJoinToken: db.prepare(
      "INSERT INTO join_tokens (token, expires_at) VALUES (?, ?) ON CONFLICT (token) DO NOTHING",
    ),
    consumeJoinToken: db.prepare<[string], { expires_at: number }>(
      "DELETE FROM join_tokens WHERE token = ? RETURNING expires_at",
    ),
    pruneJoinTokens: db.prepare("DELETE FROM join_tokens WHERE expires_at <= ?"),
    listAuthorities: db.prepare<[], AuthorityRow>(
      `SELECT authority_id, state, cert_der, key_id, key_type, not_before, not_after, tainted,
         upstream_authority_id FROM authorities ORDER BY authority_id`,
    ),
    listAuthorityChains: db.prepare<[], { authority_id: string; cert_der: Buffer }>(
      "SELECT authority_id, cert_der FROM authority_upstream_chain ORDER BY authority_id, position",
    ),
    deleteAuthorities: db.prepare("DELETE FROM authorities"),
    insertAuthority: db.prepare(
      `INSERT INTO authorities (authority_id, state, cert_der, key_id, key_type, not_before,
         not_after, tainted, upstream_authority_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertAuthorityChain: db.prepare(
      "INSERT INTO authority_upstream_chain (authority_id, position, cert_der) VALUES (?, ?, ?)",
    ),
    getBundle: db.prepare<
      [],
      { trust_domain: string; sequence_number: number; refresh_hint_seconds: number }
    >("SELECT trust_domain, sequence_number, refresh_hint_seconds FROM bundle WHERE id = 1"),
    getBundleAuthorities: db.prepare<[], { cert_der: Buffer; tainted: number }>(
      "SELECT cert_der, tainted FROM bundle_x509_authorities WHERE bundle_id = 1 ORDER BY position",
    ),
    upsertBundle: db.prepare(
      `INSERT INTO bundle (id, trust_domain, sequence_number, refresh_hint_seconds)
       VALUES (1, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET trust_domain = excluded.trust_domain,
         sequence_number = excluded.sequence_number,
         refresh_hint_seconds = excluded.refresh_hint_seconds`,
    ),
    deleteBundleAuthorities: db.prepare("DELETE FROM bundle_x509_authorities WHERE bundle_id = 1"),
    insertBundleAuthority: db.prepare(
      "INSERT INTO bundle_x509_authorities (bundle_id, position, cert_der, tainted) VALUES (1, ?, ?, ?)",
    ),
  };

  // Dynamic listing queries, prepared once per distinct SQL text.
  const listStatements = new Map<string, Database.Statement<unknown[], unknown>>();
  const prepareList = <R>(sql: string): Database.Statement<unknown[], R> => {
    let s = listStatements.get(sql);
    if (s === undefined) {
      s = db.prepare<unknown[], unknown>(sql);
      listStatements.set(sql, s);
    }
    return s as Database.Statement<unknown[], R>;
  };

  const nextRevision = (): number => {
    const row = stmt.bumpRevision.get();
    if (row === undefined) throw new Error("store_revision row is missing");
    return row.revision;
  };

  const insertSelectors = (entryId: string, selectors: readonly Selector[]): void => {
    for (const s of selectors) stmt.insertSelector.run(entryId, s.type, s.value);
  };

  const createOne = db.transaction((entry: NewRegistrationEntry): RegistrationEntry => {
    const id = entry.id === undefined || entry.id === "" ? randomUUID() : entry.id;
    if (stmt.entryIdExists.get(id) !== undefined) {
      throw new MeshidError(
        "already_exists",
        DatastoreErrorCode.entryIdTaken,
        `entry id ${id} is already taken`,
        { details: { entryId: id } },
      );
    }
    const selectors = normalizeSelectors(entry.selectors);
    const selectorsJson = selectorsToJson(selectors);
    const spiffeId = entry.spiffeId.toString();
    const parentId = entry.parentId.toString();
    const existing = stmt.findIdentity.get(selectorsJson, parentId, spiffeId);
    if (existing !== undefined) throw entryDuplicate(existing.id);
    const revision = nextRevision();
    // Existing entries parented to the new SPIFFE ID join the sets of the agents the new entry
    // is authorised for, without changing themselves: a graph change.
    if (stmt.hasChildren.get(spiffeId) !== undefined) stmt.setGraphRevision.run(revision);
    const at = now();
    stmt.insertEntry.run(
      id,
      spiffeId,
      parentId,
      selectorsJson,
      selectors.length,
      entry.x509SvidTtlSeconds,
      JSON.stringify(entry.dnsNames),
      entry.admin ? 1 : 0,
      entry.hint,
      entry.owner,
      revision,
      at.getTime(),
      at.getTime(),
    );
    insertSelectors(id, selectors);
    return {
      id,
      spiffeId: entry.spiffeId,
      parentId: entry.parentId,
      selectors,
      x509SvidTtlSeconds: entry.x509SvidTtlSeconds,
      dnsNames: [...entry.dnsNames],
      admin: entry.admin,
      hint: entry.hint,
      owner: entry.owner,
      revision,
      createdAt: new Date(at.getTime()),
      updatedAt: new Date(at.getTime()),
    };
  });

  const updateOne = db.transaction(
    (update: RegistrationEntryUpdate): { before: RegistrationEntry; after: RegistrationEntry } => {
      const row = stmt.getEntry.get(update.id);
      if (row === undefined) throw entryNotFound(update.id);
      const selectors = normalizeSelectors(update.selectors);
      const selectorsJson = selectorsToJson(selectors);
      const spiffeId = update.spiffeId.toString();
      const parentId = update.parentId.toString();
      const existing = stmt.findIdentity.get(selectorsJson, parentId, spiffeId);
      if (existing !== undefined && existing.id !== update.id) throw entryDuplicate(existing.id);
      const revision = nextRevision();
      // A new parent or SPIFFE ID moves the entry, or the entries below it, between sets.
      if (parentId !== row.parent_id || spiffeId !== row.spiffe_id) {
        stmt.setGraphRevision.run(revision);
      }
      const at = now();
      stmt.updateEntry.run(
        spiffeId,
        parentId,
        selectorsJson,
        selectors.length,
        update.x509SvidTtlSeconds,
        JSON.stringify(update.dnsNames),
        update.admin ? 1 : 0,
        update.hint,
        update.owner,
        revision,
        at.getTime(),
        update.id,
      );
      if (selectorsJson !== row.selectors) {
        stmt.deleteSelectors.run(update.id);
        insertSelectors(update.id, selectors);
      }
      const before = rowToEntry(row);
      return {
        before,
        after: {
          id: update.id,
          spiffeId: update.spiffeId,
          parentId: update.parentId,
          selectors,
          x509SvidTtlSeconds: update.x509SvidTtlSeconds,
          dnsNames: [...update.dnsNames],
          admin: update.admin,
          hint: update.hint,
          owner: update.owner,
          revision,
          createdAt: before.createdAt,
          updatedAt: new Date(at.getTime()),
        },
      };
    },
  );

  const deleteOne = db.transaction((id: string): RegistrationEntry => {
    const row = stmt.getEntry.get(id);
    if (row === undefined) throw entryNotFound(id);
    const revision = nextRevision();
    stmt.setGraphRevision.run(revision);
    stmt.deleteEntry.run(id);
    return { ...rowToEntry(row), revision };
  });

  /**
   * Runs `apply` for each item under its own savepoint inside one IMMEDIATE transaction: an
   * item refused with a MeshidError is rolled back alone; any other failure aborts the batch.
   */
  const runBatch = <I, O>(items: readonly I[], apply: (item: I) => O): BatchItemResult<O>[] =>
    db
      .transaction(() =>
        items.map((item): BatchItemResult<O> => {
          try {
            return { ok: true, value: apply(item) };
          } catch (err) {
            if (err instanceof MeshidError) return { ok: false, error: err };
            throw err;
          }
        }),
      )
      .immediate();

  const saveAuthoritiesTx = db.transaction((records: readonly AuthorityRecord[]) => {
    stmt.deleteAuthorities.run();
    for (const r of records) {
      stmt.insertAuthority.run(
        r.authorityId,
        r.state,
        toBlob(r.certDer),
        r.keyId,
        r.keyType,
        r.notBefore.getTime(),
        r.notAfter.getTime(),
        r.tainted ? 1 : 0,
        r.upstreamAuthorityId,
      );
      r.upstreamChainDer.forEach((der, position) => {
        stmt.insertAuthorityChain.run(r.authorityId, position, toBlob(der));
      });
    }
  });

  const saveBundleTx = db.transaction((bundle: BundleRecord) => {
    stmt.upsertBundle.run(bundle.trustDomain, bundle.sequenceNumber, bundle.refreshHintSeconds);
    stmt.deleteBundleAuthorities.run();
    bundle.x509Authorities.forEach((a, position) => {
      stmt.insertBundleAuthority.run(position, toBlob(a.certDer), a.tainted ? 1 : 0);
    });
  });

  /** Runs a store operation: refuses after close, maps driver errors to `ca.store.*`. */
  const run = <T>(operation: string, body: () => T): Promise<T> => {
    if (closed) {
      return Promise.reject(
        new MeshidError("unavailable", DatastoreErrorCode.closed, "the datastore is closed"),
      );
    }
    try {
      return Promise.resolve(body());
    } catch (err) {
      return Promise.reject(storeError(err, operation));
    }
  };

  const listEntries = (params: ListEntriesParams): Page<RegistrationEntry> => {
    const pageSize = resolvePageSize(params.pageSize);
    const after = decodePageToken("entries", params.pageToken);
    const args: unknown[] = [];
    const where: string[] = [];
    let from = "entries e";
    if (params.bySelectors !== undefined) {
      const selectors = normalizeSelectors(params.bySelectors.selectors);
      if (params.bySelectors.match === "exact") {
        where.push("e.selectors = ?");
        args.push(selectorsToJson(selectors));
      } else {
        // Subset: the entry's selectors are all among the given ones, i.e. the number of its
        // selectors found in the given set equals its selector count.
        if (selectors.length === 0) return { items: [], nextPageToken: "" };
        from = `entries e JOIN (
            SELECT es.entry_id AS entry_id, count(*) AS matched
            FROM json_each(?) w
            JOIN entry_selectors es
              ON es.type = json_extract(w.value, '$[0]') AND es.value = json_extract(w.value, '$[1]')
            ${after === undefined ? "" : "WHERE es.entry_id > ?"}
            GROUP BY es.entry_id
          ) m ON m.entry_id = e.id AND m.matched = e.selector_count`;
        args.push(selectorsToJson(selectors));
        if (after !== undefined) args.push(after);
      }
    }
    if (params.byParentId !== undefined) {
      where.push("e.parent_id = ?");
      args.push(params.byParentId);
    }
    if (params.bySpiffeId !== undefined) {
      where.push("e.spiffe_id = ?");
      args.push(params.bySpiffeId);
    }
    if (params.byOwner !== undefined) {
      where.push("e.owner = ?");
      args.push(params.byOwner);
    }
    if (after !== undefined) {
      where.push("e.id > ?");
      args.push(after);
    }
    const sql = `SELECT ${ENTRY_COLUMNS} FROM ${from}${
      where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""
    } ORDER BY e.id LIMIT ?`;
    args.push(pageSize + 1);
    const rows = prepareList<EntryRow>(sql).all(...args);
    const more = rows.length > pageSize;
    const items = (more ? rows.slice(0, pageSize) : rows).map(rowToEntry);
    const last = items[items.length - 1];
    return {
      items,
      nextPageToken: more && last !== undefined ? encodePageToken("entries", last.id) : "",
    };
  };

  const listAgents = (params: ListAgentsParams): Page<AttestedAgent> => {
    const pageSize = resolvePageSize(params.pageSize);
    const after = decodePageToken("agents", params.pageToken);
    const args: unknown[] = [];
    const where: string[] = [];
    if (params.byAttestationType !== undefined) {
      where.push("attestation_type = ?");
      args.push(params.byAttestationType);
    }
    if (params.onlyBanned === true) where.push("banned = 1");
    if (after !== undefined) {
      where.push("spiffe_id > ?");
      args.push(after);
    }
    const sql = `SELECT ${AGENT_COLUMNS} FROM agents${
      where.length > 0 ? ` WHERE ${where.join(" AND ")}` : ""
    } ORDER BY spiffe_id LIMIT ?`;
    args.push(pageSize + 1);
    const rows = prepareList<AgentRow>(sql).all(...args);
    const more = rows.length > pageSize;
    const items = (more ? rows.slice(0, pageSize) : rows).map(rowToAgent);
    const last = items[items.length - 1];
    return {
      items,
      nextPageToken:
        more && last !== undefined ? encodePageToken("agents", last.spiffeId.toString()) : "",
    };
  };

  return {
    createEntries: (entries) => run("createEntries", () => runBatch(entries, createOne)),
    updateEntries: (updates) => run("updateEntries", () => runBatch(updates, updateOne)),
    deleteEntries: (ids) => run("deleteEntries", () => runBatch(ids, deleteOne)),
    getEntry: (id) =>
      run("getEntry", () => {
        const row = stmt.getEntry.get(id);
        return row === undefined ? undefined : rowToEntry(row);
      }),
    listEntries: (params) => run("listEntries", () => listEntries(params)),
    listEntriesByParents: (parentIds) =>
      run("listEntriesByParents", () =>
        parentIds.length === 0
          ? []
          : stmt.listByParents.all(JSON.stringify(parentIds)).map(rowToEntry),
      ),
    listEntryRefsByParents: (parentIds) =>
      run("listEntryRefsByParents", () =>
        parentIds.length === 0 ? [] : stmt.listRefsByParents.all(JSON.stringify(parentIds)),
      ),
    getEntriesByIds: (ids) =>
      run("getEntriesByIds", () =>
        ids.length === 0 ? [] : stmt.getEntriesByIds.all(JSON.stringify(ids)).map(rowToEntry),
      ),
    getRevision: () => run("getRevision", () => stmt.getRevision.get()?.revision ?? 0),
    getRevisions: () =>
      run("getRevisions", () => {
        const row = stmt.getRevisions.get();
        return { revision: row?.revision ?? 0, graphRevision: row?.graphRevision ?? 0 };
      }),
    listEntriesChangedSince: (revision, limit) =>
      run("listEntriesChangedSince", () => {
        if (!Number.isSafeInteger(limit) || limit < 1) {
          throw new MeshidError(
            "invalid_argument",
            DatastoreErrorCode.pageSize,
            `limit must be an integer ≥ 1, got ${String(limit)}`,
          );
        }
        return stmt.listChangedSince.all(revision, limit).map(rowToEntry);
      }),

    putAgent: (agent) =>
      run("putAgent", () => {
        stmt.putAgent.run(
          agent.spiffeId.toString(),
          agent.attestationType,
          selectorsToJson(agent.selectors),
          agent.x509SvidSerial,
          agent.previousX509SvidSerial ?? "",
          agent.x509SvidExpiresAt.getTime(),
          agent.banned ? 1 : 0,
          agent.createdAt.getTime(),
          agent.updatedAt.getTime(),
        );
      }),
    getAgent: (spiffeId) =>
      run("getAgent", () => {
        const row = stmt.getAgent.get(spiffeId);
        return row === undefined ? undefined : rowToAgent(row);
      }),
    listAgents: (params) => run("listAgents", () => listAgents(params)),
    deleteAgent: (spiffeId) => run("deleteAgent", () => stmt.deleteAgent.run(spiffeId).changes > 0),

    createJoinToken: (token: JoinToken) =>
      run("createJoinToken", () => {
        if (stmt.insertJoinToken.run(token.token, token.expiresAt.getTime()).changes === 0) {
          throw new MeshidError(
            "already_exists",
            DatastoreErrorCode.joinTokenDuplicate,
            "the join token already exists",
          );
        }
      }),
    consumeJoinToken: (token, at) =>
      run("consumeJoinToken", (): ConsumeJoinTokenResult => {
        // One DELETE … RETURNING: atomic, so two concurrent consumers cannot both succeed.
        const row = stmt.consumeJoinToken.get(token);
        if (row === undefined) return "not_found";
        return row.expires_at <= at.getTime() ? "expired" : "consumed";
      }),
    pruneJoinTokens: (at) =>
      run("pruneJoinTokens", () => stmt.pruneJoinTokens.run(at.getTime()).changes),

    listAuthorities: () =>
      run("listAuthorities", () => {
        const chains = new Map<string, Uint8Array[]>();
        for (const c of stmt.listAuthorityChains.all()) {
          const chain = chains.get(c.authority_id) ?? [];
          chain.push(fromBlob(c.cert_der));
          chains.set(c.authority_id, chain);
        }
        return stmt.listAuthorities.all().map((r): AuthorityRecord => ({
          authorityId: r.authority_id,
          state: r.state as AuthorityState,
          certDer: fromBlob(r.cert_der),
          upstreamChainDer: chains.get(r.authority_id) ?? [],
          keyId: r.key_id,
          keyType: r.key_type as AuthorityRecord["keyType"],
          notBefore: new Date(r.not_before),
          notAfter: new Date(r.not_after),
          tainted: r.tainted !== 0,
          upstreamAuthorityId: r.upstream_authority_id,
        }));
      }),
    saveAuthorities: (records) =>
      run("saveAuthorities", () => {
        const ids = new Set<string>();
        for (const r of records) {
          if (ids.has(r.authorityId)) {
            throw new MeshidError(
              "invalid_argument",
              DatastoreErrorCode.authorityDuplicate,
              `authority ${r.authorityId} appears twice in the journal`,
              { details: { authorityId: r.authorityId } },
            );
          }
          ids.add(r.authorityId);
        }
        saveAuthoritiesTx.immediate(records);
      }),

    getBundle: () =>
      run("getBundle", (): BundleRecord | undefined => {
        const row = stmt.getBundle.get();
        if (row === undefined) return undefined;
        return {
          trustDomain: row.trust_domain,
          sequenceNumber: row.sequence_number,
          refreshHintSeconds: row.refresh_hint_seconds,
          x509Authorities: stmt.getBundleAuthorities.all().map((a) => ({
            certDer: fromBlob(a.cert_der),
            tainted: a.tainted !== 0,
          })),
        };
      }),
    saveBundle: (bundle) => run("saveBundle", () => saveBundleTx.immediate(bundle)),

    close: () => {
      if (!closed) {
        closed = true;
        db.close();
      }
      return Promise.resolve();
    },
  };
}
