import { expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { expectCode } from './contract-support.js';
import type { ContractContext } from './contract-support.js';
import { guardedStore } from './guard.js';
import type { StoreGuard } from './state-store.js';

/** Guard part of the contract: writes conditional on still holding a leadership (a key's create revision). */
export function describeGuardContract(ctx: () => ContractContext): void {
  it('writes under a guard that holds, and refuses every write under a stale guard with UNDERSTUDY_ERR_NOT_LEADER, writing nothing', async () => {
    const { store } = ctx();
    const term1 = await store.put('g/leader', 'a');
    const old: StoreGuard = { key: 'g/leader', createRevision: term1.createRevision };
    const kept = await store.put('g/data', '1', { guard: old });
    expect(await store.bumpEpoch('gsvc', 0, { guard: old })).toBe(1);
    // The leader key is deleted and created again: a new term, the old guard is stale.
    await store.delete('g/leader');
    const term2 = await store.put('g/leader', 'b');
    const before = await store.revision();
    await expectCode(store.put('g/data', 'stale', { guard: old }), ErrorCode.NotLeader);
    await expectCode(store.put('g/new', 'stale', { guard: old }), ErrorCode.NotLeader);
    await expectCode(
      store.compareAndSet('g/data', 'stale', { expectedRevision: kept.revision, guard: old }),
      ErrorCode.NotLeader,
    );
    await expectCode(store.delete('g/data', { guard: old }), ErrorCode.NotLeader);
    await expectCode(
      store.delete('g/data', { expectedRevision: kept.revision, guard: old }),
      ErrorCode.NotLeader,
    );
    await expectCode(store.bumpEpoch('gsvc', 1, { guard: old }), ErrorCode.NotLeader);
    expect(await store.revision()).toBe(before);
    expect(await store.get('g/data')).toEqual(kept);
    expect(await store.get('g/new')).toBeUndefined();
    expect(await store.epoch('gsvc')).toBe(1);
    const current: StoreGuard = { key: 'g/leader', createRevision: term2.createRevision };
    expect((await store.put('g/data', '2', { guard: current })).value).toBe('2');
    expect(await store.bumpEpoch('gsvc', 1, { guard: current })).toBe(2);
    expect(await store.delete('g/data', { guard: current })).toBe(true);
  });

  it('keeps a guard across overwrites of the leader key (same term), and refuses it once the key is gone', async () => {
    const { store, fixture } = ctx();
    const lease = await store.grantLease(fixture.leaseTtlMs * 10);
    const created = await store.put('gl/leader', 'me', { leaseId: lease.id });
    const guard: StoreGuard = { key: 'gl/leader', createRevision: created.createRevision };
    await store.put('gl/leader', 'me, renewed', { leaseId: lease.id });
    expect((await store.put('gl/x', '1', { guard })).value).toBe('1');
    await store.revokeLease(lease.id);
    await expectCode(store.put('gl/x', '2', { guard }), ErrorCode.NotLeader);
    expect((await store.get('gl/x'))?.value).toBe('1');
  });

  it('tells a failed condition from a failed guard: a holding guard with a stale revision is a plain refusal', async () => {
    const { store } = ctx();
    const leader = await store.put('gc/leader', 'a');
    const guard: StoreGuard = { key: 'gc/leader', createRevision: leader.createRevision };
    const v1 = await store.put('gc/k', '1');
    await store.put('gc/k', '2');
    expect(await store.compareAndSet('gc/k', 'x', { expectedRevision: v1.revision, guard })).toBeUndefined();
    expect(await store.delete('gc/k', { expectedRevision: v1.revision, guard })).toBe(false);
    expect(await store.bumpEpoch('gcsvc', 3, { guard })).toBeUndefined();
    expect((await store.get('gc/k'))?.value).toBe('2');
  });

  it('guards every write of a guardedStore view with the guard of the moment, and refuses writes while there is none', async () => {
    const { store } = ctx();
    const leader = await store.put('gv/leader', 'a');
    let guard: StoreGuard | undefined = { key: 'gv/leader', createRevision: leader.createRevision };
    const view = guardedStore(store, () => guard);
    expect((await view.put('gv/a', '1')).value).toBe('1');
    guard = undefined;
    await expectCode(view.put('gv/a', '2'), ErrorCode.NotLeader);
    guard = { key: 'gv/leader', createRevision: leader.createRevision + 1000 };
    await expectCode(view.delete('gv/a'), ErrorCode.NotLeader);
    await expectCode(view.bumpEpoch('gv', 0), ErrorCode.NotLeader);
    expect((await view.get('gv/a'))?.value).toBe('1');
    expect(await view.epoch('gv')).toBe(0);
  });
}
