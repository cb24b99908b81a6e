import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { SqliteStateStore } from '../store/index.js';
import { expectCode, waitFor } from '../store/contract-support.js';
import { LeaderElection } from './leadership.js';

// The election uses only the StateStore interface: the embedded store elects the same way (two
// connections to one store.db stand for two processes).
describe('LeaderElection on the SQLite store', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  it('elects one of two candidates, hands over on resignation, and the old guard is refused', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'understudy-election-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const open = async (): Promise<SqliteStateStore> => {
      const store = await SqliteStateStore.create({ dataDir, tickIntervalMs: 20 });
      cleanups.push(() => store.close());
      return store;
    };
    const [storeA, storeB] = [await open(), await open()];
    const a = await LeaderElection.start({ store: storeA, id: 'a', ttlMs: 1200 });
    cleanups.push(() => a.close());
    const b = await LeaderElection.start({ store: storeB, id: 'b', ttlMs: 1200 });
    cleanups.push(() => b.close());
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    await waitFor(() => b.leader()?.id === 'a', 'b to see a lead');
    const oldGuard = a.guard()!;
    await a.close();
    await waitFor(() => b.isLeader, 'b to lead after a resigned', 3000);
    await expectCode(storeB.put('x', 'stale', { guard: oldGuard }), ErrorCode.NotLeader);
    expect((await storeB.put('x', 'fresh', { guard: b.guard()! })).value).toBe('fresh');
  });
});
