import type Database from 'better-sqlite3';

/** Version of the on-disk layout, stored in `meta`. */
export const SCHEMA_VERSION = 1;

/**
 * Tables of the SQLite store:
 * - `meta`: the store-wide `revision`, the `compact_revision` (history at or before it is gone), `schema`;
 * - `kv`: current records (mod/create revision, version, lease);
 * - `changes`: one row per revision (the change log watches replay from), compacted to a bounded size;
 * - `leases`: live leases with absolute expiry by the store's clock;
 * - `epochs`: per-service fencing epochs.
 */
const DDL = `
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compact_revision', 0), ('schema', ${SCHEMA_VERSION});
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  mod_revision INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease_id TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_by_lease ON kv (lease_id) WHERE lease_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS changes (
  revision INTEGER PRIMARY KEY,
  type TEXT NOT NULL CHECK (type IN ('put', 'delete')),
  key TEXT NOT NULL,
  value TEXT,
  create_revision INTEGER,
  version INTEGER,
  lease_id TEXT
);
CREATE TABLE IF NOT EXISTS leases (id TEXT PRIMARY KEY, ttl_ms INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at);
CREATE TABLE IF NOT EXISTS epochs (service TEXT PRIMARY KEY, epoch INTEGER NOT NULL) WITHOUT ROWID;
`;

/** Row of `kv`. */
export interface KvRow {
  key: string;
  value: string;
  mod_revision: number;
  create_revision: number;
  version: number;
  lease_id: string | null;
}

/** Row of `changes`. */
export interface ChangeRow {
  revision: number;
  type: 'put' | 'delete';
  key: string;
  value: string | null;
  create_revision: number | null;
  version: number | null;
  lease_id: string | null;
}

/** Row of `leases`. */
export interface LeaseRow {
  id: string;
  ttl_ms: number;
  expires_at: number;
}

/** Creates the tables if missing (idempotent; safe when several processes open the store at once). */
export function migrate(db: Database.Database): void {
  db.transaction(() => {
    db.exec(DDL);
  }).immediate();
  const version = (db.prepare(`SELECT value FROM meta WHERE name = 'schema'`).get() as { value: number })
    .value;
  if (version !== SCHEMA_VERSION) {
    throw new Error(`store.db has schema version ${version}; this Understudy understands ${SCHEMA_VERSION}`);
  }
}

/** SQL of every statement the store runs; `pluck` ones return the first column's value instead of a row. */
const SQL = {
  getRevision: { sql: `SELECT value FROM meta WHERE name = 'revision'`, pluck: true },
  nextRevision: {
    sql: `UPDATE meta SET value = value + 1 WHERE name = 'revision' RETURNING value`,
    pluck: true,
  },
  getCompactRevision: { sql: `SELECT value FROM meta WHERE name = 'compact_revision'`, pluck: true },
  setCompactRevision: { sql: `UPDATE meta SET value = ? WHERE name = 'compact_revision'` },
  getKv: { sql: `SELECT * FROM kv WHERE key = ?` },
  listAll: { sql: `SELECT * FROM kv ORDER BY key` },
  listFrom: { sql: `SELECT * FROM kv WHERE key >= ? ORDER BY key` },
  listRange: { sql: `SELECT * FROM kv WHERE key >= ? AND key < ? ORDER BY key` },
  upsertKv: {
    sql: `INSERT INTO kv (key, value, mod_revision, create_revision, version, lease_id) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
         create_revision = excluded.create_revision, version = excluded.version, lease_id = excluded.lease_id`,
  },
  deleteKv: { sql: `DELETE FROM kv WHERE key = ?` },
  keysOfLease: { sql: `SELECT key FROM kv WHERE lease_id = ? ORDER BY key`, pluck: true },
  insertChange: {
    sql: `INSERT INTO changes (revision, type, key, value, create_revision, version, lease_id) VALUES (?, ?, ?, ?, ?, ?, ?)`,
  },
  changesAfter: { sql: `SELECT * FROM changes WHERE revision > ? ORDER BY revision` },
  deleteChangesThrough: { sql: `DELETE FROM changes WHERE revision <= ?` },
  getLease: { sql: `SELECT * FROM leases WHERE id = ?` },
  insertLease: { sql: `INSERT INTO leases (id, ttl_ms, expires_at) VALUES (?, ?, ?)` },
  setLeaseExpiry: { sql: `UPDATE leases SET expires_at = ? WHERE id = ?` },
  deleteLease: { sql: `DELETE FROM leases WHERE id = ?` },
  anyLeaseDue: { sql: `SELECT 1 FROM leases WHERE expires_at <= ? LIMIT 1`, pluck: true },
  leasesDue: { sql: `SELECT id FROM leases WHERE expires_at <= ? ORDER BY expires_at, id`, pluck: true },
  getEpoch: { sql: `SELECT epoch FROM epochs WHERE service = ?`, pluck: true },
  setEpoch: {
    sql: `INSERT INTO epochs (service, epoch) VALUES (?, ?) ON CONFLICT (service) DO UPDATE SET epoch = excluded.epoch`,
  },
} satisfies Record<string, { sql: string; pluck?: true }>;

/** The prepared statements of one connection. */
export type Statements = { [K in keyof typeof SQL]: Database.Statement };

/** Prepares every statement the store runs. */
export function prepareStatements(db: Database.Database): Statements {
  const prepared: Partial<Statements> = {};
  for (const [name, spec] of Object.entries(SQL) as [keyof typeof SQL, { sql: string; pluck?: true }][]) {
    const statement = db.prepare(spec.sql);
    prepared[name] = spec.pluck ? statement.pluck() : statement;
  }
  return prepared as Statements;
}
