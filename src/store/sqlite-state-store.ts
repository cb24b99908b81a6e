import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCode, UnderstudyError, isUnderstudyError } from '../errors/index.js';
import { notLeaderError } from './guard.js';
import { prefixRangeEnd } from './prefix-range.js';
import { ensurePrivateFile, PRIVATE_DIR_MODE } from './data-dir.js';
import { migrate, prepareStatements } from './sqlite-schema.js';
import type { ChangeRow, KvRow, LeaseRow, Statements } from './sqlite-schema.js';
import type {
  CasOptions,
  DeleteOptions,
  GuardOptions,
  Lease,
  PutOptions,
  StateStore,
  StoreGuard,
  StoreRecord,
  StoreSnapshot,
  Unwatch,
  WatchEvent,
  WatchOptions,
} from './state-store.js';
import { WatchHub } from './watch-hub.js';

/** File name of the database inside the data directory. */
export const STORE_DB_FILE = 'store.db';

/** Options of {@link SqliteStateStore.create}. */
export interface SqliteStateStoreOptions {
  /** Directory holding `store.db` (created if missing). The caller resolves the default `./.understudy/`. */
  dataDir: string;
  /** Clock for lease expiry, in ms since the epoch (tests inject one). @default Date.now */
  now?: () => number;
  /**
   * How often expired leases are collected and other processes' writes are picked up for watchers.
   * Expired leases are also collected on every read, so a smaller value only makes expiry events timelier.
   * @default 100
   */
  tickIntervalMs?: number;
  /** Revisions of change history kept for watch replay; older history is compacted. @default 10000 */
  historyLimit?: number;
  /** How long an operation waits for another process that holds the write lock before failing. @default 5000 */
  busyTimeoutMs?: number;
}

interface ResolvedOptions {
  dataDir: string;
  now: () => number;
  tickIntervalMs: number;
  historyLimit: number;
  busyTimeoutMs: number;
}

function resolveOptions(options: SqliteStateStoreOptions): ResolvedOptions {
  return {
    dataDir: options.dataDir,
    now: options.now ?? Date.now,
    tickIntervalMs: options.tickIntervalMs ?? 100,
    historyLimit: Math.max(1, options.historyLimit ?? 10_000),
    busyTimeoutMs: options.busyTimeoutMs ?? 5000,
  };
}

/**
 * The embedded {@link StateStore}: one SQLite database (`store.db`, WAL mode) in the data directory.
 *
 * Durability: `synchronous=NORMAL` in WAL mode. A commit has been written to the WAL file (the OS page
 * cache) before the call returns, so killing the process — even with SIGKILL — loses no committed
 * write and never corrupts the file. A power loss or kernel crash cannot corrupt it either, but may
 * roll back the last commits since the previous checkpoint/fsync. The one exception is
 * {@link SqliteStateStore.bumpEpoch}: it commits with `synchronous=FULL` (fsync of the WAL), so an
 * acknowledged epoch — the fencing token — survives power loss too, together with every earlier write.
 *
 * Several processes may open the same file: writes are serialised by SQLite's write lock (waiting up
 * to `busyTimeoutMs`), revisions stay store-wide monotonic, and watchers see other processes' writes
 * within one tick (`PRAGMA data_version` is polled) as well as this object's writes at once.
 */
export class SqliteStateStore implements StateStore {
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #options: ResolvedOptions;
  readonly #hub = new WatchHub();
  readonly #timer: NodeJS.Timeout;
  #closed = false;
  /** Highest revision whose change has been handed to the watch hub. */
  #notified: number;
  #dataVersion: number;

  private constructor(db: Database.Database, options: ResolvedOptions) {
    this.#db = db;
    this.#options = options;
    this.#sql = prepareStatements(db);
    this.#notified = this.#sql.getRevision.get() as number;
    this.#dataVersion = this.#readDataVersion();
    this.#timer = setInterval(() => this.#tick(), options.tickIntervalMs);
    this.#timer.unref();
  }

  /**
   * Opens (creating if needed) `store.db` in `options.dataDir`.
   * Thrown when the directory or database cannot be opened: `UNDERSTUDY_ERR_STORE_UNAVAILABLE`.
   */
  static async create(options: SqliteStateStoreOptions): Promise<SqliteStateStore> {
    const resolved = resolveOptions(options);
    const file = join(resolved.dataDir, STORE_DB_FILE);
    let db: Database.Database | undefined;
    try {
      mkdirSync(resolved.dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
      // The store holds specs with their `env` values: owner-only. SQLite creates `-wal` and `-shm` with
      // the database file's mode, so the file is created 0600 before SQLite opens it; files left by an
      // older version (0644) are tightened.
      ensurePrivateFile(file);
      for (const suffix of ['-wal', '-shm']) ensurePrivateFile(file + suffix, true);
      db = new Database(file);
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(resolved.busyTimeoutMs))}`);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (String(mode).toLowerCase() !== 'wal')
        throw new Error(`could not switch ${file} to WAL mode (got ${String(mode)})`);
      db.pragma('synchronous = NORMAL');
      migrate(db);
      return new SqliteStateStore(db, resolved);
    } catch (err) {
      db?.close();
      throw new UnderstudyError(
        ErrorCode.StoreUnavailable,
        `cannot open the store ${file}: ${(err as Error).message}`,
        {
          cause: err,
          details: { file },
        },
      );
    }
  }

  /** Path of the database file. */
  get file(): string {
    return this.#db.name;
  }

  async get(key: string): Promise<StoreRecord | undefined> {
    return this.#run(() => {
      this.#expireDue();
      const row = this.#sql.getKv.get(key) as KvRow | undefined;
      return row && toRecord(row);
    });
  }

  async list(prefix: string): Promise<StoreRecord[]> {
    return (await this.snapshot(prefix)).records;
  }

  async snapshot(prefix: string): Promise<StoreSnapshot> {
    return this.#run(() => {
      this.#expireDue();
      // One read transaction: the records and the revision are of the same instant.
      return this.#db.transaction(() => ({
        records: (this.#listRows(prefix) as KvRow[]).map(toRecord),
        revision: this.#sql.getRevision.get() as number,
      }))();
    });
  }

  async put(key: string, value: string, options?: PutOptions): Promise<StoreRecord> {
    return this.#run(() => {
      this.#expireDue();
      return this.#write(() => {
        this.#checkGuard(options?.guard);
        return this.#putRow(key, value, options?.leaseId);
      });
    });
  }

  async compareAndSet(key: string, value: string, options: CasOptions): Promise<StoreRecord | undefined> {
    return this.#run(() => {
      this.#expireDue();
      return this.#write(() => {
        this.#checkGuard(options.guard);
        const current = this.#sql.getKv.get(key) as KvRow | undefined;
        if ((current?.mod_revision ?? 0) !== options.expectedRevision) return undefined;
        return this.#putRow(key, value, options.leaseId, current);
      });
    });
  }

  async delete(key: string, options?: DeleteOptions): Promise<boolean> {
    return this.#run(() => {
      this.#expireDue();
      return this.#write(() => {
        this.#checkGuard(options?.guard);
        const current = this.#sql.getKv.get(key) as KvRow | undefined;
        if (!current) return false;
        if (options?.expectedRevision !== undefined && current.mod_revision !== options.expectedRevision)
          return false;
        this.#deleteRow(key);
        return true;
      });
    });
  }

  async watch(
    prefix: string,
    listener: (event: WatchEvent) => void,
    options?: WatchOptions,
  ): Promise<Unwatch> {
    return this.#run(() => {
      // Catch up first, so that the backlog and the live stream meet exactly at #notified.
      this.#pump();
      const from =
        options?.fromRevision === undefined ? undefined : Math.max(0, Math.floor(options.fromRevision));
      let backlog: WatchEvent[] = [];
      if (from !== undefined) {
        const compacted = this.#sql.getCompactRevision.get() as number;
        if (from < compacted) {
          throw new UnderstudyError(
            ErrorCode.StoreCompacted,
            `cannot replay changes after revision ${from}: history up to revision ${compacted} has been compacted; read a fresh snapshot() and watch from its revision`,
            { details: { fromRevision: from, compactRevision: compacted } },
          );
        }
        backlog = (this.#sql.changesAfter.all(from) as ChangeRow[])
          .filter((row) => row.revision <= this.#notified && row.key.startsWith(prefix))
          .map(toEvent);
      }
      return this.#hub.add({
        prefix,
        listener,
        backlog,
        ...(from !== undefined && from > this.#notified ? { skipThrough: from } : {}),
        ...(options?.signal ? { signal: options.signal } : {}),
        ...(options?.onError ? { onError: options.onError } : {}),
      });
    });
  }

  async grantLease(ttlMs: number): Promise<Lease> {
    return this.#run(() => {
      if (!Number.isFinite(ttlMs) || ttlMs <= 0) {
        throw new UnderstudyError(
          ErrorCode.StoreLease,
          `a lease TTL must be a positive number of ms, got ${ttlMs}`,
          {
            details: { ttlMs },
          },
        );
      }
      const ttl = Math.ceil(ttlMs);
      const lease: Lease = {
        id: randomBytes(8).toString('hex'),
        ttlMs: ttl,
        expiresAt: this.#options.now() + ttl,
      };
      this.#sql.insertLease.run(lease.id, lease.ttlMs, lease.expiresAt);
      return lease;
    });
  }

  async keepAlive(leaseId: string): Promise<Lease> {
    return this.#run(() => {
      this.#expireDue();
      return this.#write(() => {
        const row = this.#sql.getLease.get(leaseId) as LeaseRow | undefined;
        const now = this.#options.now();
        if (!row || row.expires_at <= now) throw leaseError(leaseId);
        const expiresAt = now + row.ttl_ms;
        this.#sql.setLeaseExpiry.run(expiresAt, leaseId);
        return { id: leaseId, ttlMs: row.ttl_ms, expiresAt };
      });
    });
  }

  async revokeLease(leaseId: string): Promise<void> {
    this.#run(() => {
      this.#write(() => {
        if (this.#sql.getLease.get(leaseId) !== undefined) this.#dropLease(leaseId);
      });
    });
  }

  async epoch(service: string): Promise<number> {
    return this.#run(() => (this.#sql.getEpoch.get(service) as number | undefined) ?? 0);
  }

  async bumpEpoch(service: string, expected: number, options?: GuardOptions): Promise<number | undefined> {
    return this.#run(() => {
      // An acknowledged epoch must survive power loss too: fsync this commit (see the class comment).
      this.#db.pragma('synchronous = FULL');
      try {
        return this.#write(() => {
          this.#checkGuard(options?.guard);
          const current = (this.#sql.getEpoch.get(service) as number | undefined) ?? 0;
          if (current !== expected) return undefined;
          this.#sql.setEpoch.run(service, current + 1);
          return current + 1;
        });
      } finally {
        this.#db.pragma('synchronous = NORMAL');
      }
    });
  }

  async revision(): Promise<number> {
    return this.#run(() => this.#sql.getRevision.get() as number);
  }

  async compact(revision: number): Promise<void> {
    this.#run(() => {
      this.#write(() => {
        const current = this.#sql.getRevision.get() as number;
        this.#compactThrough(Math.min(Math.floor(revision), current));
      });
    });
  }

  /** Collects expired leases now (also done on every read and every tick); returns how many expired. */
  async expireLeases(): Promise<number> {
    return this.#run(() => this.#expireDue());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#hub.closeAll();
    this.#db.close();
  }

  // ---- internals ----

  /** Runs `fn` on an open store, turning SQLite failures into `UNDERSTUDY_ERR_STORE_UNAVAILABLE`. */
  #run<T>(fn: () => T): T {
    if (this.#closed) {
      throw new UnderstudyError(ErrorCode.StoreUnavailable, `the store ${this.#db.name} is closed`, {
        details: { file: this.#db.name },
      });
    }
    try {
      return fn();
    } catch (err) {
      if (isUnderstudyError(err)) throw err;
      throw new UnderstudyError(
        ErrorCode.StoreUnavailable,
        `store operation failed on ${this.#db.name}: ${(err as Error).message}`,
        {
          cause: err,
          details: { file: this.#db.name, sqliteCode: (err as { code?: unknown }).code },
        },
      );
    }
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE: no lock upgrade deadlocks between processes), then notifies watchers. */
  #write<T>(fn: () => T): T {
    const result = this.#db.transaction(fn).immediate();
    this.#pump();
    return result;
  }

  /** Inside a write transaction: refuses the write when its guard no longer holds. */
  #checkGuard(guard: StoreGuard | undefined): void {
    if (guard === undefined) return;
    const row = this.#sql.getKv.get(guard.key) as KvRow | undefined;
    if (row?.create_revision !== guard.createRevision) throw notLeaderError(guard, row?.create_revision);
  }

  #listRows(prefix: string): unknown[] {
    if (prefix === '') return this.#sql.listAll.all();
    const end = prefixRangeEnd(prefix);
    return end === undefined ? this.#sql.listFrom.all(prefix) : this.#sql.listRange.all(prefix, end);
  }

  /** Inside a write transaction: writes one record at a new revision. */
  #putRow(key: string, value: string, leaseId: string | undefined, current?: KvRow): StoreRecord {
    if (leaseId !== undefined) {
      const lease = this.#sql.getLease.get(leaseId) as LeaseRow | undefined;
      if (!lease || lease.expires_at <= this.#options.now()) throw leaseError(leaseId);
    }
    const existing = current ?? (this.#sql.getKv.get(key) as KvRow | undefined);
    const revision = this.#nextRevision();
    const createRevision = existing ? existing.create_revision : revision;
    const version = existing ? existing.version + 1 : 1;
    this.#sql.upsertKv.run(key, value, revision, createRevision, version, leaseId ?? null);
    this.#sql.insertChange.run(revision, 'put', key, value, createRevision, version, leaseId ?? null);
    return { key, value, revision, createRevision, version, ...(leaseId === undefined ? {} : { leaseId }) };
  }

  /** Inside a write transaction: deletes one existing record at a new revision. */
  #deleteRow(key: string): void {
    const revision = this.#nextRevision();
    this.#sql.deleteKv.run(key);
    this.#sql.insertChange.run(revision, 'delete', key, null, null, null, null);
  }

  #nextRevision(): number {
    const revision = this.#sql.nextRevision.get() as number;
    const compacted = this.#sql.getCompactRevision.get() as number;
    // Compact in steps of ~1/8 of the limit so that the DELETE runs rarely.
    const slack = Math.max(16, Math.floor(this.#options.historyLimit / 8));
    if (revision - compacted > this.#options.historyLimit + slack)
      this.#compactThrough(revision - this.#options.historyLimit);
    return revision;
  }

  #compactThrough(revision: number): void {
    const compacted = this.#sql.getCompactRevision.get() as number;
    if (revision <= compacted) return;
    this.#sql.deleteChangesThrough.run(revision);
    this.#sql.setCompactRevision.run(revision);
  }

  /** Inside a write transaction: deletes a lease and, one revision each, its records. */
  #dropLease(leaseId: string): void {
    for (const key of this.#sql.keysOfLease.all(leaseId) as string[]) this.#deleteRow(key);
    this.#sql.deleteLease.run(leaseId);
  }

  /** Deletes every lease past its expiry (and their records). Cheap when none is due. */
  #expireDue(): number {
    const now = this.#options.now();
    if (this.#sql.anyLeaseDue.get(now) === undefined) return 0;
    return this.#write(() => {
      const due = this.#sql.leasesDue.all(now) as string[];
      for (const id of due) this.#dropLease(id);
      return due.length;
    });
  }

  /** Hands changes committed since the last call (by this or another process) to the watch hub, in revision order. */
  #pump(): void {
    if (this.#hub.size === 0) {
      this.#notified = this.#sql.getRevision.get() as number;
      return;
    }
    const rows = this.#sql.changesAfter.all(this.#notified) as ChangeRow[];
    const first = rows[0];
    const current = this.#sql.getRevision.get() as number;
    if (
      (first === undefined && current > this.#notified) ||
      (first !== undefined && first.revision !== this.#notified + 1)
    ) {
      // Another process compacted history this object had not delivered yet: watchers would miss changes.
      const error = new UnderstudyError(
        ErrorCode.StoreCompacted,
        `watch fell behind: changes after revision ${this.#notified} were compacted before they could be delivered`,
        { details: { fromRevision: this.#notified } },
      );
      this.#notified = Math.max(current, rows.at(-1)?.revision ?? 0);
      this.#hub.failAll(error);
      return;
    }
    if (rows.length === 0) return;
    this.#notified = (rows.at(-1) as ChangeRow).revision;
    this.#hub.publish(rows.map(toEvent));
  }

  #readDataVersion(): number {
    return this.#db.pragma('data_version', { simple: true }) as number;
  }

  /** Timer: collect expired leases and pick up other processes' writes. Errors wait for the next tick. */
  #tick(): void {
    if (this.#closed) return;
    try {
      this.#expireDue();
      const version = this.#readDataVersion();
      if (version !== this.#dataVersion) {
        this.#dataVersion = version;
        this.#pump();
      }
    } catch {
      // Typically SQLITE_BUSY while another process holds the write lock for long: retried next tick.
    }
  }
}

function toRecord(row: KvRow): StoreRecord {
  const record: StoreRecord = {
    key: row.key,
    value: row.value,
    revision: row.mod_revision,
    createRevision: row.create_revision,
    version: row.version,
  };
  if (row.lease_id !== null) record.leaseId = row.lease_id;
  return record;
}

function toEvent(row: ChangeRow): WatchEvent {
  if (row.type === 'delete') return { type: 'delete', key: row.key, revision: row.revision };
  const record: StoreRecord = {
    key: row.key,
    value: row.value ?? '',
    revision: row.revision,
    createRevision: row.create_revision ?? row.revision,
    version: row.version ?? 1,
  };
  if (row.lease_id !== null) record.leaseId = row.lease_id;
  return { type: 'put', key: row.key, record, revision: row.revision };
}

function leaseError(leaseId: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.StoreLease, `lease ${leaseId} does not exist or has expired`, {
    details: { leaseId },
  });
}
