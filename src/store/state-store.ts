/**
 * The coordination store: records with revisions, compare-and-set, watch, leases and per-service epochs.
 * Embedded implementation: SQLite (`SqliteStateStore`). Distributed: etcd (`EtcdStateStore`), with the
 * same contract (see `contract.ts`, the test suite every implementation must pass).
 *
 * The shape follows etcd's v3 API so that an etcd implementation is a thin mapping:
 * - `revision` is etcd's `mod_revision`, `createRevision` its `create_revision`, `version` its `version`;
 * - every successful write (put, successful compare-and-set, delete that removed a record) moves the
 *   store-wide revision forward; failed compare-and-sets, reads, lease grants and epoch bumps need not;
 * - `WatchOptions.fromRevision` is *exclusive* (replay starts after it): etcd's `start_revision` is
 *   `fromRevision + 1`;
 * - `compact(revision)` is etcd's compaction: history at or before it is gone, and replaying from before
 *   it fails with `UNDERSTUDY_ERR_STORE_COMPACTED`.
 */

/** One stored record. `revision` is the store-wide revision of its last write (etcd's mod_revision). */
export interface StoreRecord {
  key: string;
  value: string;
  /** Store-wide revision at which this record was last written; strictly increasing across all writes. */
  revision: number;
  /** Store-wide revision at which this key was created (etcd's create_revision). */
  createRevision: number;
  /** How many times this key was written since creation (1 for a new key). */
  version: number;
  /** Lease the record is attached to; it is deleted when the lease expires or is revoked. */
  leaseId?: string;
}

/** A change seen by a watcher. */
export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  /** The new record for `put`; absent for `delete`. */
  record?: StoreRecord;
  /**
   * Store revision of this change. Strictly increasing across a watcher's events, except that one
   * implementation may report several deletes of a single lease expiry at the same revision (etcd does).
   */
  revision: number;
}

/**
 * Leadership a write is conditional on: the write happens only while `key` exists with this
 * `createRevision` (the leader's term: the revision at which it created the leader key). Otherwise it
 * is refused with `UNDERSTUDY_ERR_NOT_LEADER` and nothing is written. Checked in the same transaction
 * as the write, so a deposed leader can never write (etcd: a txn comparing the key's create_revision).
 */
export interface StoreGuard {
  key: string;
  createRevision: number;
}

/** Options shared by every write that can be guarded. */
export interface GuardOptions {
  /** Write only while this leadership holds; otherwise reject with `UNDERSTUDY_ERR_NOT_LEADER`. @default unguarded */
  guard?: StoreGuard;
}

/** Options of {@link StateStore.put}. */
export interface PutOptions extends GuardOptions {
  /**
   * Attach the record to a lease: it is deleted when the lease expires or is revoked. A put without
   * `leaseId` detaches the record from any lease it had (as in etcd).
   */
  leaseId?: string;
}

/** Condition for {@link StateStore.compareAndSet}: the key's current revision must equal this, or 0 for "must not exist". */
export interface CasOptions extends PutOptions {
  expectedRevision: number;
}

/** Options of {@link StateStore.delete}. */
export interface DeleteOptions extends GuardOptions {
  /** Delete only if the key's current revision equals this. */
  expectedRevision?: number;
}

/** A granted lease. */
export interface Lease {
  id: string;
  ttlMs: number;
  /** Absolute expiry time in ms since the epoch, by the store's clock. */
  expiresAt: number;
}

/** Options of {@link StateStore.watch}. */
export interface WatchOptions {
  /**
   * Deliver the changes made *after* this revision first (replay), then live ones. Pass the revision
   * returned by {@link StateStore.snapshot} or {@link StateStore.revision} to miss nothing.
   * @default live changes only (those committed after the watch is established)
   */
  fromRevision?: number;
  /** Aborting it ends the watch, like calling the returned function. */
  signal?: AbortSignal;
  /**
   * Called at most once when the watch ends abnormally after it was established (for example, the
   * watcher fell so far behind that the history it needed was compacted). No event follows it.
   * Also receives errors thrown by `listener` (delivery then continues).
   */
  onError?: (error: Error) => void;
}

/** Records under a prefix together with the store revision they were read at. */
export interface StoreSnapshot {
  records: StoreRecord[];
  /** Store revision of the read: watching with `fromRevision: revision` continues exactly after it. */
  revision: number;
}

/** Stops a watch. Idempotent. */
export type Unwatch = () => void;

/**
 * The store interface every implementation provides. Every method rejects with
 * `UNDERSTUDY_ERR_STORE_UNAVAILABLE` after {@link StateStore.close}.
 */
export interface StateStore {
  /** Current record at `key`, or undefined. */
  get(key: string): Promise<StoreRecord | undefined>;
  /** All records whose key starts with `prefix`, sorted by key (byte order of UTF-8). */
  list(prefix: string): Promise<StoreRecord[]>;
  /** Like {@link StateStore.list}, with the store revision the read was taken at (list-then-watch without a gap). */
  snapshot(prefix: string): Promise<StoreSnapshot>;
  /** Unconditional write; returns the new record. Rejects with `UNDERSTUDY_ERR_STORE_LEASE` for an unknown or expired lease. */
  put(key: string, value: string, options?: PutOptions): Promise<StoreRecord>;
  /**
   * Writes only if the key's revision equals `expectedRevision` (0: the key must not exist).
   * Returns the new record, or `undefined` when the condition failed (no write). A failed guard
   * rejects with `UNDERSTUDY_ERR_NOT_LEADER` instead (the guard is checked first).
   */
  compareAndSet(key: string, value: string, options: CasOptions): Promise<StoreRecord | undefined>;
  /** Deletes `key`; with `expectedRevision`, only if it matches. Returns whether a record was deleted. */
  delete(key: string, options?: DeleteOptions): Promise<boolean>;
  /**
   * Calls `listener` for every change to keys under `prefix`, in revision order, until the returned
   * function is called, the signal aborts, or the store closes. Resolves once the watch is
   * established: every write committed after that is delivered. Rejects with
   * `UNDERSTUDY_ERR_STORE_COMPACTED` when `fromRevision` is older than the retained history.
   * Events are delivered asynchronously (never inside the write call that caused them).
   */
  watch(prefix: string, listener: (event: WatchEvent) => void, options?: WatchOptions): Promise<Unwatch>;
  /** Grants a lease of `ttlMs`. */
  grantLease(ttlMs: number): Promise<Lease>;
  /** Extends a live lease by its TTL from now. Rejects with `UNDERSTUDY_ERR_STORE_LEASE` when it has expired or is unknown. */
  keepAlive(leaseId: string): Promise<Lease>;
  /** Revokes a lease and deletes its records. Revoking an unknown or already expired lease does nothing. */
  revokeLease(leaseId: string): Promise<void>;
  /** The service's current epoch (0 when never bumped). */
  epoch(service: string): Promise<number>;
  /**
   * Atomically increments the service's epoch if it still equals `expected`; returns the new epoch,
   * or undefined when another writer moved it first. This is the fencing token of a promotion.
   */
  bumpEpoch(service: string, expected: number, options?: GuardOptions): Promise<number | undefined>;
  /** The store-wide current revision (0 for an empty, never written store). */
  revision(): Promise<number>;
  /**
   * Discards change history at or before `revision` (a value above the current revision compacts up to
   * the current one; one below an earlier compaction does nothing). Watches replaying from before it
   * then fail with `UNDERSTUDY_ERR_STORE_COMPACTED`.
   */
  compact(revision: number): Promise<void>;
  /** Releases the store; pending watches end. Idempotent. */
  close(): Promise<void>;
}
