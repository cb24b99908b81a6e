import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type {
  CasOptions,
  DeleteOptions,
  GuardOptions,
  PutOptions,
  StateStore,
  StoreGuard,
  StoreRecord,
} from './state-store.js';

/** The refusal of a write whose guard no longer holds (shared by the store implementations). */
export function notLeaderError(
  guard: StoreGuard,
  currentCreateRevision: number | undefined,
): UnderstudyError {
  const now =
    currentCreateRevision === undefined
      ? `'${guard.key}' does not exist`
      : `'${guard.key}' was created at revision ${currentCreateRevision}`;
  return new UnderstudyError(
    ErrorCode.NotLeader,
    `write refused: it is guarded by the leadership '${guard.key}' created at revision ${guard.createRevision}, but ${now} (this writer was deposed)`,
    {
      details: {
        key: guard.key,
        createRevision: guard.createRevision,
        current: currentCreateRevision ?? null,
      },
    },
  );
}

/** Whether the record at a guard's key satisfies the guard. */
export function guardHolds(guard: StoreGuard, record: { createRevision: number } | undefined): boolean {
  return record !== undefined && record.createRevision === guard.createRevision;
}

/**
 * A view of `store` whose every write (put, compareAndSet, delete, bumpEpoch) carries the guard
 * `currentGuard()` returns at the time of the call: a writer that lost its leadership can no longer
 * write through it. When `currentGuard()` returns undefined (not leading), writes are refused with
 * `UNDERSTUDY_ERR_NOT_LEADER` without reaching the store. Reads, watches and leases pass through
 * unguarded; `close()` does not close the underlying store (its owner does).
 */
export function guardedStore(store: StateStore, currentGuard: () => StoreGuard | undefined): StateStore {
  const guardOrRefuse = (): StoreGuard => {
    const guard = currentGuard();
    if (guard) return guard;
    throw new UnderstudyError(ErrorCode.NotLeader, 'write refused: this control replica is not the leader', {
      details: {},
    });
  };
  return {
    get: (key) => store.get(key),
    list: (prefix) => store.list(prefix),
    snapshot: (prefix) => store.snapshot(prefix),
    put: async (key: string, value: string, options?: PutOptions): Promise<StoreRecord> =>
      store.put(key, value, { ...options, guard: guardOrRefuse() }),
    compareAndSet: async (key: string, value: string, options: CasOptions) =>
      store.compareAndSet(key, value, { ...options, guard: guardOrRefuse() }),
    delete: async (key: string, options?: DeleteOptions) =>
      store.delete(key, { ...options, guard: guardOrRefuse() }),
    watch: (prefix, listener, options) => store.watch(prefix, listener, options),
    grantLease: (ttlMs) => store.grantLease(ttlMs),
    keepAlive: (leaseId) => store.keepAlive(leaseId),
    revokeLease: (leaseId) => store.revokeLease(leaseId),
    epoch: (service) => store.epoch(service),
    bumpEpoch: async (service: string, expected: number, options?: GuardOptions) =>
      store.bumpEpoch(service, expected, { ...options, guard: guardOrRefuse() }),
    revision: () => store.revision(),
    compact: (revision) => store.compact(revision),
    close: async () => undefined,
  };
}
