import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { collect, expectCode, settle } from './contract-support.js';
import type { ContractContext, StateStoreFixture } from './contract-support.js';
import { describeGuardContract } from './contract-guard.js';
import { describeLeaseContract } from './contract-leases.js';
import { describeModelContract } from './contract-model.js';
import { describeWatchContract } from './contract-watch.js';
import type { StateStore } from './state-store.js';

export type { StateStoreFixture } from './contract-support.js';

/**
 * The contract every {@link StateStore} implementation passes: records and revisions, compare-and-set,
 * watch (ordering, replay, compaction), leases, epochs, guarded writes, contention, persistence and close. Call it from
 * the implementation's test file with a factory giving each test fresh state:
 *
 *     runStateStoreContract('SqliteStateStore', async () => ({ connect, advanceTime, leaseTtlMs, destroy }));
 *
 * It uses no implementation detail: SQLite (faked clock) and etcd (real time, whole-second leases) run it
 * from the same code, each with its own fixture.
 */
export function runStateStoreContract(name: string, createFixture: () => Promise<StateStoreFixture>): void {
  describe(`StateStore contract: ${name}`, () => {
    let context: ContractContext | undefined;
    let clients: StateStore[] = [];

    beforeEach(async () => {
      const fixture = await createFixture();
      clients = [];
      const connect = async (): Promise<StateStore> => {
        const client = await fixture.connect();
        clients.push(client);
        return client;
      };
      context = { fixture, store: await connect(), connect };
    });

    afterEach(async () => {
      for (const client of clients) await client.close();
      await context?.fixture.destroy();
      context = undefined;
    });

    const ctx = (): ContractContext => {
      if (!context) throw new Error('contract context used outside a test');
      return context;
    };

    describe('records', () => describeRecordContract(ctx));
    describe('watch', () => describeWatchContract(ctx));
    describe('leases and epochs', () => describeLeaseContract(ctx));
    describe('guarded writes', () => describeGuardContract(ctx));
    describe('model', () => describeModelContract(ctx));
    describe('lifecycle', () => describeLifecycleContract(ctx));
  });
}

function describeRecordContract(ctx: () => ContractContext): void {
  it('returns undefined for a key that was never written', async () => {
    expect(await ctx().store.get('never/written')).toBeUndefined();
  });

  it('stores a value and reads it back with its revision, createRevision and version', async () => {
    const { store } = ctx();
    const written = await store.put('services/kv', '{"a":1}');
    expect(written).toEqual({
      key: 'services/kv',
      value: '{"a":1}',
      revision: written.revision,
      createRevision: written.revision,
      version: 1,
    });
    expect(written.revision).toBeGreaterThan(0);
    expect(await store.get('services/kv')).toEqual(written);
  });

  it('lists exactly the records under a prefix, sorted by key in byte order', async () => {
    const { store } = ctx();
    const keys = ['a/c', 'a/b', 'a/b/deep', 'a0', 'a.', 'a', 'b/x', 'a/é', 'a/Z', 'a/~'];
    for (const key of keys) await store.put(key, `v:${key}`);
    const under = await store.list('a/');
    expect(under.map((r) => r.key)).toEqual(['a/Z', 'a/b', 'a/b/deep', 'a/c', 'a/~', 'a/é']);
    expect(under.every((r) => r.value === `v:${r.key}`)).toBe(true);
    expect((await store.list('')).map((r) => r.key)).toEqual(
      [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
    );
    expect(await store.list('zzz')).toEqual([]);
  });

  it('moves the store revision forward by every successful write and never by reads or failed writes', async () => {
    const { store } = ctx();
    const start = await store.revision();
    const a = await store.put('r/a', '1');
    const b = await store.put('r/b', '1');
    const a2 = await store.put('r/a', '2');
    expect(a.revision).toBeGreaterThan(start);
    expect(b.revision).toBeGreaterThan(a.revision);
    expect(a2.revision).toBeGreaterThan(b.revision);
    expect(await store.revision()).toBe(a2.revision);
    await store.get('r/a');
    await store.list('r/');
    expect(await store.compareAndSet('r/a', 'x', { expectedRevision: a.revision })).toBeUndefined();
    expect(await store.delete('r/missing')).toBe(false);
    expect(await store.revision()).toBe(a2.revision);
    expect(await store.delete('r/b')).toBe(true);
    expect(await store.revision()).toBeGreaterThan(a2.revision);
  });

  it('keeps createRevision and counts version across overwrites, and starts over after a delete', async () => {
    const { store } = ctx();
    const first = await store.put('v/k', '1');
    const second = await store.put('v/k', '2');
    const third = await store.put('v/k', '3');
    expect([second.createRevision, third.createRevision]).toEqual([first.revision, first.revision]);
    expect([first.version, second.version, third.version]).toEqual([1, 2, 3]);
    await store.delete('v/k');
    const reborn = await store.put('v/k', '4');
    expect(reborn.version).toBe(1);
    expect(reborn.createRevision).toBe(reborn.revision);
    expect(reborn.createRevision).toBeGreaterThan(third.revision);
  });

  it('compare-and-set writes when the expected revision is the current one', async () => {
    const { store } = ctx();
    const before = await store.put('cas/k', 'old');
    const after = await store.compareAndSet('cas/k', 'new', { expectedRevision: before.revision });
    expect(after?.value).toBe('new');
    expect(after?.version).toBe(2);
    expect(after?.createRevision).toBe(before.revision);
    expect(await store.get('cas/k')).toEqual(after);
  });

  it('compare-and-set refuses a stale revision and leaves the record unchanged', async () => {
    const { store } = ctx();
    const v1 = await store.put('cas/k', '1');
    const v2 = await store.put('cas/k', '2');
    expect(await store.compareAndSet('cas/k', 'lost', { expectedRevision: v1.revision })).toBeUndefined();
    expect(await store.compareAndSet('cas/k', 'lost', { expectedRevision: 0 })).toBeUndefined();
    expect(await store.get('cas/k')).toEqual(v2);
  });

  it('compare-and-set with expected revision 0 creates only a missing key', async () => {
    const { store } = ctx();
    const created = await store.compareAndSet('cas/new', 'first', { expectedRevision: 0 });
    expect(created?.version).toBe(1);
    expect(await store.compareAndSet('cas/new', 'second', { expectedRevision: 0 })).toBeUndefined();
    expect((await store.get('cas/new'))?.value).toBe('first');
    expect(
      await store.compareAndSet('cas/absent', 'x', { expectedRevision: created?.revision ?? 1 }),
    ).toBeUndefined();
    expect(await store.get('cas/absent')).toBeUndefined();
  });

  it('deletes conditionally only at the expected revision, and reports whether it deleted', async () => {
    const { store } = ctx();
    const v1 = await store.put('del/k', '1');
    const v2 = await store.put('del/k', '2');
    expect(await store.delete('del/k', { expectedRevision: v1.revision })).toBe(false);
    expect(await store.get('del/k')).toEqual(v2);
    expect(await store.delete('del/k', { expectedRevision: v2.revision })).toBe(true);
    expect(await store.get('del/k')).toBeUndefined();
    expect(await store.delete('del/k')).toBe(false);
  });

  it('takes a snapshot whose revision is the store revision of the read', async () => {
    const { store } = ctx();
    await store.put('snap/a', '1');
    const b = await store.put('snap/b', '2');
    await store.put('other/c', '3');
    const snapshot = await store.snapshot('snap/');
    expect(snapshot.records.map((r) => r.key)).toEqual(['snap/a', 'snap/b']);
    expect(snapshot.revision).toBe(await store.revision());
    expect(snapshot.revision).toBeGreaterThan(b.revision);
  });
}

function describeLifecycleContract(ctx: () => ContractContext): void {
  it('keeps records, revisions, leases and epochs across close and reopen', async () => {
    const { store, connect, fixture } = ctx();
    await store.put('p/a', '1');
    const b = await store.put('p/b', '2');
    const lease = await store.grantLease(fixture.leaseTtlMs * 10);
    await store.put('p/leased', 'x', { leaseId: lease.id });
    expect(await store.bumpEpoch('kv', 0)).toBe(1);
    const revision = await store.revision();
    await store.close();

    const reopened = await connect();
    expect(await reopened.revision()).toBe(revision);
    expect((await reopened.list('p/')).map((r) => [r.key, r.value])).toEqual([
      ['p/a', '1'],
      ['p/b', '2'],
      ['p/leased', 'x'],
    ]);
    expect(await reopened.get('p/b')).toEqual(b);
    expect(await reopened.epoch('kv')).toBe(1);
    expect((await reopened.keepAlive(lease.id)).id).toBe(lease.id);
    const next = await reopened.put('p/c', '3');
    expect(next.revision).toBeGreaterThan(revision);
  });

  it('closes idempotently, and every operation after close rejects with UNDERSTUDY_ERR_STORE_UNAVAILABLE', async () => {
    const { store } = ctx();
    const lease = await store.grantLease(60_000);
    await store.close();
    await store.close();
    const code = ErrorCode.StoreUnavailable;
    await expectCode(store.get('k'), code);
    await expectCode(store.list(''), code);
    await expectCode(store.snapshot(''), code);
    await expectCode(store.put('k', 'v'), code);
    await expectCode(store.compareAndSet('k', 'v', { expectedRevision: 0 }), code);
    await expectCode(store.delete('k'), code);
    await expectCode(
      store.watch('', () => undefined),
      code,
    );
    await expectCode(store.grantLease(1000), code);
    await expectCode(store.keepAlive(lease.id), code);
    await expectCode(store.revokeLease(lease.id), code);
    await expectCode(store.epoch('kv'), code);
    await expectCode(store.bumpEpoch('kv', 0), code);
    await expectCode(store.revision(), code);
    await expectCode(store.compact(1), code);
  });

  it('ends its watches quietly when the store closes', async () => {
    const { store, connect } = ctx();
    const watcher = await collect(store, 'c/');
    await store.put('c/1', 'a');
    await watcher.waitForCount(1);
    await store.close();
    const other = await connect();
    await other.put('c/2', 'b');
    await settle(100);
    expect(watcher.events.map((e) => e.key)).toEqual(['c/1']);
    expect(watcher.errors).toEqual([]);
  });
}
