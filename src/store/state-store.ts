/**
 * The coordination store: records with revisions, compare-and-set, watch, leases and per-service epochs.
 * Embedded implementation: SQLite (`SqliteStateStore`). Distributed (later): etcd, with the same contract
 * (see `contract.ts`, the test suite every implementation must pass).
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
  /** Store revision of this change. */
  revision: number;
}

export interface PutOptions {
  /** Attach the record to a lease: it is deleted when the lease expires. */
  leaseId?: string;
}

/** Condition for {@link StateStore.compareAndSet}: the key's current revision must equal this, or 0 for "must not exist". */
export interface CasOptions extends PutOptions {
  expectedRevision: number;
}

export interface Lease {
  id: string;
  ttlMs: number;
  /** Absolute expiry time in ms since the epoch, by the store's clock. */
  expiresAt: number;
}

export interface WatchOptions {
  /** Deliver changes after this revision first (replay), then live ones. Default: live only. */
  fromRevision?: number;
  signal?: AbortSignal;
}

export interface StateStore {
  /** Current record at `key`, or undefined. */
  get(key: string): Promise<StoreRecord | undefined>;
  /** All records whose key starts with `prefix`, sorted by key. */
  list(prefix: string): Promise<StoreRecord[]>;
  /** Unconditional write; returns the new record. */
  put(key: string, value: string, options?: PutOptions): Promise<StoreRecord>;
  /**
   * Writes only if the key's revision equals `expectedRevision` (0: the key must not exist).
   * Returns the new record, or `undefined` when the condition failed (no write).
   */
  compareAndSet(key: string, value: string, options: CasOptions): Promise<StoreRecord | undefined>;
  /** Deletes `key`; with `expectedRevision`, only if it matches. Returns whether a record was deleted. */
  delete(key: string, options?: { expectedRevision?: number }): Promise<boolean>;
  /** Calls `listener` for every change to keys under `prefix`, in revision order, until the signal aborts or the store closes. */
  watch(prefix: string, listener: (event: WatchEvent) => void, options?: WatchOptions): () => void;
  /** Grants a lease of `ttlMs`. */
  grantLease(ttlMs: number): Promise<Lease>;
  /** Extends a live lease by its TTL from now. Throws UNDERSTUDY_ERR_STORE_LEASE when it has expired or is unknown. */
  keepAlive(leaseId: string): Promise<Lease>;
  /** Revokes a lease and deletes its records. */
  revokeLease(leaseId: string): Promise<void>;
  /** The service's current epoch (0 when never promoted). */
  epoch(service: string): Promise<number>;
  /**
   * Atomically increments the service's epoch if it still equals `expected`; returns the new epoch,
   * or undefined when another writer moved it first. This is the fencing token of a promotion.
   */
  bumpEpoch(service: string, expected: number): Promise<number | undefined>;
  /** The store-wide current revision. */
  revision(): Promise<number>;
  /** Idempotent. */
  close(): Promise<void>;
}
