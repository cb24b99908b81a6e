import { expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { collect, expectCode, settle, summarize, waitFor } from './contract-support.js';
import type { ContractContext } from './contract-support.js';
import type { StateStore, StoreRecord } from './state-store.js';

/** Lease, epoch and contention part of the contract. */
export function describeLeaseContract(ctx: () => ContractContext): void {
  it('grants a lease that expires one TTL after it was granted', async () => {
    const { store, fixture } = ctx();
    const lease = await store.grantLease(fixture.leaseTtlMs);
    expect(lease.ttlMs).toBeGreaterThanOrEqual(fixture.leaseTtlMs);
    expect(typeof lease.id).toBe('string');
    const other = await store.grantLease(fixture.leaseTtlMs);
    expect(other.id).not.toBe(lease.id);
  });

  it('deletes the records of an expired lease, with a delete event each, and keeps the others', async () => {
    const { store, fixture } = ctx();
    const lease = await store.grantLease(fixture.leaseTtlMs);
    const leased = await store.put('l/a', '1', { leaseId: lease.id });
    await store.put('l/b', '2', { leaseId: lease.id });
    await store.put('l/kept', '3');
    expect(leased.leaseId).toBe(lease.id);
    expect((await store.get('l/a'))?.leaseId).toBe(lease.id);
    const watcher = await collect(store, 'l/');
    await fixture.advanceTime(fixture.leaseTtlMs * 1.5);
    const events = await watcher.waitForCount(2);
    expect(events.map((e) => `${e.type} ${e.key}`).sort()).toEqual(['delete l/a', 'delete l/b']);
    expect(events[1]?.revision ?? 0).toBeGreaterThanOrEqual(events[0]?.revision ?? 0);
    expect(await store.get('l/a')).toBeUndefined();
    expect((await store.list('l/')).map((r) => r.key)).toEqual(['l/kept']);
    await expectCode(store.put('l/late', 'x', { leaseId: lease.id }), ErrorCode.StoreLease);
  });

  it('keeps a lease alive for another TTL from each keepAlive', async () => {
    const { store, fixture } = ctx();
    const ttl = fixture.leaseTtlMs;
    const lease = await store.grantLease(ttl);
    await store.put('ka/a', '1', { leaseId: lease.id });
    await fixture.advanceTime(ttl * 0.6);
    const renewed = await store.keepAlive(lease.id);
    expect(renewed.id).toBe(lease.id);
    expect(renewed.expiresAt).toBeGreaterThan(lease.expiresAt);
    await fixture.advanceTime(ttl * 0.6);
    expect((await store.get('ka/a'))?.value).toBe('1');
    await store.keepAlive(lease.id);
    await fixture.advanceTime(ttl * 0.6);
    expect((await store.get('ka/a'))?.value).toBe('1');
    await fixture.advanceTime(ttl);
    await waitFor(async () => (await store.get('ka/a')) === undefined, 'the lease to expire');
  });

  it('refuses keepAlive of an expired or unknown lease with UNDERSTUDY_ERR_STORE_LEASE', async () => {
    const { store, fixture } = ctx();
    const lease = await store.grantLease(fixture.leaseTtlMs);
    await store.put('kx/a', '1', { leaseId: lease.id });
    await fixture.advanceTime(fixture.leaseTtlMs * 1.5);
    await waitFor(async () => (await store.get('kx/a')) === undefined, 'the lease to expire');
    await expectCode(store.keepAlive(lease.id), ErrorCode.StoreLease);
    await expectCode(store.keepAlive('no-such-lease'), ErrorCode.StoreLease);
  });

  it('deletes the records of a revoked lease at once; revoking again does nothing', async () => {
    const { store, fixture } = ctx();
    const lease = await store.grantLease(fixture.leaseTtlMs * 10);
    await store.put('rv/a', '1', { leaseId: lease.id });
    await store.put('rv/b', '2', { leaseId: lease.id });
    const watcher = await collect(store, 'rv/');
    await store.revokeLease(lease.id);
    expect(await store.list('rv/')).toEqual([]);
    await watcher.waitForCount(2);
    expect(summarize(watcher.events).sort()).toEqual(['delete rv/a', 'delete rv/b']);
    await store.revokeLease(lease.id);
    await store.revokeLease('no-such-lease');
    await expectCode(store.keepAlive(lease.id), ErrorCode.StoreLease);
  });

  it('refuses a put on an unknown lease and writes nothing', async () => {
    const { store } = ctx();
    const before = await store.revision();
    await expectCode(store.put('nl/a', '1', { leaseId: 'no-such-lease' }), ErrorCode.StoreLease);
    await expectCode(
      store.compareAndSet('nl/a', '1', { expectedRevision: 0, leaseId: 'no-such-lease' }),
      ErrorCode.StoreLease,
    );
    expect(await store.get('nl/a')).toBeUndefined();
    expect(await store.revision()).toBe(before);
  });

  it('detaches a record from its lease when it is overwritten without one', async () => {
    const { store, fixture } = ctx();
    const lease = await store.grantLease(fixture.leaseTtlMs);
    await store.put('dt/a', '1', { leaseId: lease.id });
    await store.put('dt/b', '1', { leaseId: lease.id });
    const detached = await store.put('dt/a', '2');
    expect(detached.leaseId).toBeUndefined();
    await fixture.advanceTime(fixture.leaseTtlMs * 1.5);
    await waitFor(async () => (await store.get('dt/b')) === undefined, 'the lease to expire');
    expect((await store.get('dt/a'))?.value).toBe('2');
  });

  it('starts epochs at 0 and moves them only by a bump from the current value', async () => {
    const { store } = ctx();
    expect(await store.epoch('kv')).toBe(0);
    expect(await store.bumpEpoch('kv', 0)).toBe(1);
    expect(await store.bumpEpoch('kv', 0)).toBeUndefined();
    expect(await store.epoch('kv')).toBe(1);
    expect(await store.bumpEpoch('kv', 1)).toBe(2);
    expect(await store.bumpEpoch('kv', 5)).toBeUndefined();
    expect(await store.epoch('kv')).toBe(2);
    expect(await store.epoch('other')).toBe(0);
  });

  it('lets exactly one of many racing epoch bumps from the same value win', async () => {
    const { store, connect } = ctx();
    const clients = [store, await connect(), await connect()];
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(
        clients.flatMap((c) => [c.bumpEpoch('race', round), c.bumpEpoch('race', round)]),
      );
      expect(results.filter((r) => r !== undefined)).toEqual([round + 1]);
    }
    expect(await store.epoch('race')).toBe(10);
  });

  it('lets exactly one of many racing compare-and-sets on one key win per revision', async () => {
    const { store, connect } = ctx();
    const clients: StateStore[] = [store, await connect(), await connect()];
    let current: StoreRecord = await store.put('race/k', 'start');
    const rounds = 15;
    for (let round = 0; round < rounds; round++) {
      const expectedRevision = current.revision;
      const attempts = clients.flatMap((client, c) =>
        [0, 1, 2, 3].map((j) => client.compareAndSet('race/k', `${round}:${c}:${j}`, { expectedRevision })),
      );
      const winners = (await Promise.all(attempts)).filter((r): r is StoreRecord => r !== undefined);
      expect(winners).toHaveLength(1);
      const winner = winners[0] as StoreRecord;
      expect(winner.revision).toBeGreaterThan(expectedRevision);
      expect(await store.get('race/k')).toEqual(winner);
      current = winner;
    }
    expect(current.version).toBe(rounds + 1);
  });

  it('counts every increment of a counter updated by racing read-modify-write loops', async () => {
    const { store, connect } = ctx();
    const clients: StateStore[] = [store, await connect(), await connect()];
    await store.put('counter', '0');
    const perWorker = 10;
    const worker = async (client: StateStore): Promise<number> => {
      let retries = 0;
      for (let done = 0; done < perWorker;) {
        const record = (await client.get('counter')) as StoreRecord;
        const next = String(Number(record.value) + 1);
        if (await client.compareAndSet('counter', next, { expectedRevision: record.revision })) done++;
        else retries++;
        if (retries > 10_000) throw new Error('livelock');
      }
      return retries;
    };
    await Promise.all(clients.flatMap((c) => [worker(c), worker(c)]));
    await settle(0);
    expect((await store.get('counter'))?.value).toBe(String(clients.length * 2 * perWorker));
  });
}
