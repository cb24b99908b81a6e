export type {
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
export { SqliteStateStore, STORE_DB_FILE } from './sqlite-state-store.js';
export type { SqliteStateStoreOptions } from './sqlite-state-store.js';
export { acquireDataDirLock, isLocalProcessAlive, DATA_DIR_LOCK_FILE } from './data-dir-lock.js';
export type { DataDirLockOwner, ReleaseDataDirLock } from './data-dir-lock.js';
export { ensurePrivateFile, prepareDataDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './data-dir.js';
export type { PreparedDataDir } from './data-dir.js';
export { EtcdStateStore, ETCD_DEFAULT_PREFIX } from './etcd-state-store.js';
export type { EtcdStateStoreOptions } from './etcd-state-store.js';
export { ETCD_DEFAULT_PORT, isEtcdUrl, parseEtcdUrl } from './etcd-url.js';
export type { EtcdTarget } from './etcd-url.js';
export { guardedStore } from './guard.js';
