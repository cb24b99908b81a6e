import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { runStateStoreContract } from './contract.js';
import { collect, expectCode, settle, summarize } from './contract-support.js';
import { STORE_DB_FILE, SqliteStateStore } from './sqlite-state-store.js';

runStateStoreContract('SqliteStateStore', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'understudy-store-'));
  let now = 1_800_000_000_000;
  return {
    connect: () => SqliteStateStore.create({ dataDir, now: () => now, tickIntervalMs: 10 }),
    advanceTime: async (ms) => {
      now += ms;
    },
    leaseTtlMs: 1000,
    destroy: () => rm(dataDir, { recursive: true, force: true }),
  };
});

describe('SqliteStateStore', () => {
  let dataDir: string;
  let now: number;
  const opened: SqliteStateStore[] = [];
  const open = async (
    extra: { historyLimit?: number; tickIntervalMs?: number } = {},
  ): Promise<SqliteStateStore> => {
    const store = await SqliteStateStore.create({
      dataDir,
      now: () => now,
      tickIntervalMs: 1_000_000,
      ...extra,
    });
    opened.push(store);
    return store;
  };

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'understudy-sqlite-'));
    now = 1_800_000_000_000;
  });
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps its database in store.db in the data directory, in WAL mode', async () => {
    const store = await open();
    await store.put('k', 'v');
    expect(store.file).toBe(join(dataDir, STORE_DB_FILE));
    const db = new Database(store.file, { readonly: true });
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.prepare('SELECT value FROM kv WHERE key = ?').pluck().get('k')).toBe('v');
    } finally {
      db.close();
    }
  });

  it('keeps store.db and its -wal and -shm files readable by their owner only, in a 0700 directory', async () => {
    const nested = join(dataDir, 'fresh');
    const store = await SqliteStateStore.create({ dataDir: nested });
    opened.push(store);
    await store.put('k', 'v');
    expect((await stat(nested)).mode & 0o777).toBe(0o700);
    for (const suffix of ['', '-wal', '-shm'])
      expect(((await stat(store.file + suffix)).mode & 0o777).toString(8)).toBe('600');
  });

  it('tightens store files an older version left readable by others', async () => {
    const first = await open();
    await first.put('k', 'v');
    await first.close();
    await chmod(join(dataDir, STORE_DB_FILE), 0o644);
    const store = await open();
    expect((await store.get('k'))?.value).toBe('v');
    await store.put('k', 'w');
    for (const suffix of ['', '-wal', '-shm'])
      expect(((await stat(store.file + suffix)).mode & 0o777).toString(8)).toBe('600');
  });

  it('creates a missing data directory', async () => {
    const nested = join(dataDir, 'a', 'b');
    const store = await SqliteStateStore.create({ dataDir: nested });
    opened.push(store);
    expect(store.file).toBe(join(nested, STORE_DB_FILE));
  });

  it('collects expired leases lazily on a read when no timer tick has run', async () => {
    const store = await open();
    const lease = await store.grantLease(1000);
    await store.put('lazy/a', '1', { leaseId: lease.id });
    const watcher = await collect(store, 'lazy/');
    now += 999;
    expect((await store.get('lazy/a'))?.value).toBe('1');
    now += 1;
    expect(await store.get('lazy/a')).toBeUndefined();
    await watcher.waitForCount(1);
    expect(summarize(watcher.events)).toEqual(['delete lazy/a']);
  });

  it('collects expired leases on its timer without any read', async () => {
    const store = await open({ tickIntervalMs: 5 });
    const lease = await store.grantLease(1000);
    await store.put('tick/a', '1', { leaseId: lease.id });
    const watcher = await collect(store, 'tick/');
    now += 1000;
    await watcher.waitForCount(1);
    expect(summarize(watcher.events)).toEqual(['delete tick/a']);
  });

  it('compacts its change history to about historyLimit revisions and refuses older replays', async () => {
    const store = await open({ historyLimit: 20 });
    for (let i = 0; i < 100; i++) await store.put(`h/${i % 3}`, String(i));
    await expectCode(
      store.watch('h/', () => undefined, { fromRevision: 0 }),
      ErrorCode.StoreCompacted,
    );
    const from = (await store.revision()) - 20;
    const watcher = await collect(store, 'h/', { fromRevision: from });
    await watcher.waitForCount(20);
    expect(watcher.events[0]?.revision).toBe(from + 1);
    const db = new Database(store.file, { readonly: true });
    try {
      const rows = db.prepare('SELECT COUNT(*) FROM changes').pluck().get() as number;
      expect(rows).toBeGreaterThanOrEqual(20);
      expect(rows).toBeLessThanOrEqual(20 + 16);
    } finally {
      db.close();
    }
  });

  it('picks up writes of another connection to the same file for its watchers', async () => {
    const watching = await open({ tickIntervalMs: 5 });
    const writer = await open();
    const watcher = await collect(watching, 'mp/');
    await writer.put('mp/a', '1');
    await writer.put('mp/b', '2');
    await watcher.waitForCount(2);
    expect(summarize(watcher.events)).toEqual(['put mp/a=1', 'put mp/b=2']);
  });

  it('fails its watchers with UNDERSTUDY_ERR_STORE_COMPACTED when another connection compacted undelivered history', async () => {
    const watching = await open();
    const writer = await open({ historyLimit: 1 });
    const watcher = await collect(watching, 'gap/');
    for (let i = 0; i < 40; i++) await writer.put('gap/a', String(i));
    await watching.put('gap/b', 'local');
    await settle();
    expect(watcher.errors.map((e) => (e as { code?: string }).code)).toEqual([ErrorCode.StoreCompacted]);
    expect(watcher.events).toEqual([]);
  });

  it('refuses to open a file that is not a database with UNDERSTUDY_ERR_STORE_UNAVAILABLE', async () => {
    await writeFile(
      join(dataDir, STORE_DB_FILE),
      'this is not a SQLite database, just some text'.repeat(100),
    );
    await expectCode(SqliteStateStore.create({ dataDir }), ErrorCode.StoreUnavailable);
  });

  it('refuses a data directory that cannot be created with UNDERSTUDY_ERR_STORE_UNAVAILABLE', async () => {
    const file = join(dataDir, 'a-file');
    await writeFile(file, 'x');
    await expectCode(SqliteStateStore.create({ dataDir: join(file, 'sub') }), ErrorCode.StoreUnavailable);
  });

  it('refuses a non-positive lease TTL with UNDERSTUDY_ERR_STORE_LEASE', async () => {
    const store = await open();
    await expectCode(store.grantLease(0), ErrorCode.StoreLease);
    await expectCode(store.grantLease(Number.NaN), ErrorCode.StoreLease);
  });

  it('reports how many leases expireLeases collected', async () => {
    const store = await open();
    await store.grantLease(10);
    await store.grantLease(10);
    await store.grantLease(5000);
    now += 10;
    expect(await store.expireLeases()).toBe(2);
    expect(await store.expireLeases()).toBe(0);
  });
});
