import { expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { collect, expectCode, settle, summarize, waitFor } from './contract-support.js';
import type { ContractContext } from './contract-support.js';
import type { WatchEvent } from './state-store.js';

/** Watch part of the contract: ordering, prefix filter, replay, compaction, unsubscribe. */
export function describeWatchContract(ctx: () => ContractContext): void {
  it('delivers puts and deletes under the prefix in revision order, and nothing outside it', async () => {
    const { store } = ctx();
    const watcher = await collect(store, 'w/');
    const a = await store.put('w/a', '1');
    await store.put('x/a', 'outside');
    await store.put('w/b', '2');
    await store.put('w/a', '3');
    await store.delete('w/b');
    await store.compareAndSet('w/c', '4', { expectedRevision: 0 });
    await store.compareAndSet('w/c', 'lost', { expectedRevision: a.revision });
    const events = await watcher.waitForCount(5);
    await settle();
    expect(summarize(watcher.events)).toEqual([
      'put w/a=1',
      'put w/b=2',
      'put w/a=3',
      'delete w/b',
      'put w/c=4',
    ]);
    expectStrictlyIncreasing(events);
    const put = events[2];
    expect(put?.record).toEqual(await store.get('w/a'));
    expect(put?.revision).toBe(put?.record?.revision);
    expect(events[3]?.record).toBeUndefined();
  });

  it('never delivers an event inside the write call that caused it', async () => {
    const { store } = ctx();
    const watcher = await collect(store, 'sync/');
    const pending = store.put('sync/a', '1');
    expect(watcher.events).toEqual([]);
    await pending;
    await watcher.waitForCount(1);
  });

  it('lets a listener write to the store from its callback, and keeps the order', async () => {
    const { store } = ctx();
    const seen: WatchEvent[] = [];
    await store.watch('chain/', (event) => {
      seen.push(event);
      const n = Number(event.record?.value ?? 'NaN');
      if (event.type === 'put' && n < 5) void store.put(`chain/${n + 1}`, String(n + 1));
    });
    await store.put('chain/0', '0');
    await waitFor(() => seen.length >= 6, 'a chain of 6 writes');
    expect(seen.map((e) => e.key)).toEqual([
      'chain/0',
      'chain/1',
      'chain/2',
      'chain/3',
      'chain/4',
      'chain/5',
    ]);
    expectStrictlyIncreasing(seen);
  });

  it('replays the changes after fromRevision, then continues live, without gaps or duplicates', async () => {
    const { store } = ctx();
    await store.put('rp/a', '1');
    const from = await store.revision();
    await store.put('rp/b', '2');
    await store.put('elsewhere', 'x');
    await store.delete('rp/a');
    const watcher = await collect(store, 'rp/', { fromRevision: from });
    await store.put('rp/c', '3');
    await watcher.waitForCount(3);
    await settle();
    expect(summarize(watcher.events)).toEqual(['put rp/b=2', 'delete rp/a', 'put rp/c=3']);
    expectStrictlyIncreasing(watcher.events);
  });

  it('continues exactly after a snapshot when watching from its revision', async () => {
    const { store, connect } = ctx();
    const other = await connect();
    await store.put('sn/a', '1');
    const snapshot = await store.snapshot('sn/');
    await other.put('sn/b', '2');
    const watcher = await collect(store, 'sn/', { fromRevision: snapshot.revision });
    await other.put('sn/c', '3');
    await watcher.waitForCount(2);
    await settle();
    expect(summarize(watcher.events)).toEqual(['put sn/b=2', 'put sn/c=3']);
  });

  it('replays everything from revision 0 of a store that was never compacted', async () => {
    const { store } = ctx();
    await store.put('all/a', '1');
    await store.put('all/a', '2');
    const watcher = await collect(store, 'all/', { fromRevision: 0 });
    await watcher.waitForCount(2);
    expect(summarize(watcher.events)).toEqual(['put all/a=1', 'put all/a=2']);
  });

  it('delivers only the changes after a future fromRevision', async () => {
    const { store } = ctx();
    const now = await store.revision();
    const watcher = await collect(store, 'fut/', { fromRevision: now + 2 });
    await store.put('fut/1', 'a');
    await store.put('fut/2', 'b');
    await store.put('fut/3', 'c');
    await watcher.waitForCount(1);
    await settle();
    expect(summarize(watcher.events)).toEqual(['put fut/3=c']);
  });

  it('delivers writes made through another client', async () => {
    const { store, connect } = ctx();
    const other = await connect();
    const watcher = await collect(store, 'oc/');
    await other.put('oc/a', '1');
    await other.delete('oc/a');
    await watcher.waitForCount(2);
    expect(summarize(watcher.events)).toEqual(['put oc/a=1', 'delete oc/a']);
  });

  it('stops delivering after unwatch, and after its signal aborts', async () => {
    const { store } = ctx();
    const byCall = await collect(store, 'u/');
    const controller = new AbortController();
    const bySignal = await collect(store, 'u/', { signal: controller.signal });
    const control = await collect(store, 'u/');
    await store.put('u/1', 'a');
    await byCall.waitForCount(1);
    await bySignal.waitForCount(1);
    byCall.unwatch();
    byCall.unwatch();
    controller.abort();
    await store.put('u/2', 'b');
    await control.waitForCount(2);
    await settle();
    expect(byCall.events).toHaveLength(1);
    expect(bySignal.events).toHaveLength(1);
  });

  it('does not start a watch whose signal is already aborted', async () => {
    const { store } = ctx();
    const watcher = await collect(store, 'ab/', { signal: AbortSignal.abort() });
    const control = await collect(store, 'ab/');
    await store.put('ab/1', 'a');
    await control.waitForCount(1);
    await settle();
    expect(watcher.events).toEqual([]);
  });

  it('rejects a replay from a compacted revision with UNDERSTUDY_ERR_STORE_COMPACTED', async () => {
    const { store } = ctx();
    const r1 = await store.put('cp/a', '1');
    const r2 = await store.put('cp/a', '2');
    const r3 = await store.put('cp/a', '3');
    await store.compact(r2.revision);
    await expectCode(
      store.watch('cp/', () => undefined, { fromRevision: r1.revision }),
      ErrorCode.StoreCompacted,
    );
    const watcher = await collect(store, 'cp/', { fromRevision: r2.revision });
    await watcher.waitForCount(1);
    expect(watcher.events[0]?.revision).toBe(r3.revision);
    expect(await store.get('cp/a')).toEqual(r3);
  });

  it('reports a listener that throws to onError and keeps delivering', async () => {
    const { store } = ctx();
    const errors: Error[] = [];
    const seen: string[] = [];
    await store.watch(
      't/',
      (event) => {
        seen.push(event.key);
        if (event.key === 't/bad') throw new Error('listener failed');
      },
      { onError: (err) => errors.push(err) },
    );
    await store.put('t/bad', '1');
    await store.put('t/good', '2');
    await waitFor(() => seen.length >= 2, 'both events');
    expect(seen).toEqual(['t/bad', 't/good']);
    expect(errors.map((e) => e.message)).toEqual(['listener failed']);
  });
}

/** Asserts that a watcher's events have strictly increasing revisions. */
export function expectStrictlyIncreasing(events: readonly WatchEvent[]): void {
  for (let i = 1; i < events.length; i++) {
    expect(events[i]?.revision ?? 0).toBeGreaterThan(events[i - 1]?.revision ?? 0);
  }
}
