import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../test/lib/etcd-server.js';
import { ErrorCode } from '../errors/index.js';
import { EtcdStateStore, type StateStore } from '../store/index.js';
import { expectCode, waitFor } from '../store/contract-support.js';
import { ControlReplica, listReplicas } from './control-replica.js';
import type { LeaderInfo } from './leadership.js';

let etcd: EtcdServer;
let n = 0;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Terms {
  log: string[];
  stores: StateStore[];
  previous: (LeaderInfo | undefined)[];
}

async function replica(
  prefix: string,
  name: string,
  terms: Terms,
): Promise<{ replica: ControlReplica; store: EtcdStateStore }> {
  const store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => store.close());
  const r = await ControlReplica.start({
    store,
    name,
    address: `http://${name}`,
    ttlMs: 2000,
    startTerm: async (guarded, _leader, previous) => {
      terms.log.push(`start ${name}`);
      terms.stores.push(guarded);
      terms.previous.push(previous);
      await guarded.put(`term/${name}`, 'written while leading');
      return { close: async () => void terms.log.push(`stop ${name}`) };
    },
  });
  cleanups.push(() => r.close());
  return { replica: r, store };
}

describe('ControlReplica on etcd', () => {
  it('runs a term only on the leader; when the leader loses etcd its term stops, its store refuses writes, and the standby starts one naming it', async () => {
    const prefix = `cr/${++n}/`;
    const terms: Terms = { log: [], stores: [], previous: [] };
    const first = await replica(prefix, 'first', terms);
    const second = await replica(prefix, 'second', terms);
    expect(terms.log).toEqual(['start first']);
    expect(first.replica.isLeader).toBe(true);
    expect(second.replica.leader()?.id).toBe('first');
    const firstTermStore = terms.stores[0] as StateStore;

    await first.store.close();
    await waitFor(() => terms.log.includes('start second'), 'the standby to start its term', 8000);
    expect(terms.log).toEqual(['start first', 'stop first', 'start second']);
    expect(terms.previous[1]?.id).toBe('first');
    await expectCode(firstTermStore.put('term/first', 'after deposition'), ErrorCode.NotLeader);
    // The new term's first write lands after it starts (its start is logged before the write).
    await waitFor(
      async () => (await second.store.get('term/second'))?.value === 'written while leading',
      "the new term's write",
      8000,
    );
  });

  it("a term's store is bound to its term: after the replica is deposed and elected again, the first term's writes are refused and the second's go through", async () => {
    const prefix = `cr/${++n}/`;
    const terms: Terms = { log: [], stores: [], previous: [] };
    const only = await replica(prefix, 'only', terms);
    const first = only.replica.leader()!.term;
    // The leader key vanishes (as when its lease is revoked): the replica steps down and campaigns again.
    await only.store.delete('control/leader');
    await waitFor(
      () => terms.log.filter((l) => l === 'start only').length === 2,
      'the second term of the same replica',
      8000,
    );
    expect(terms.log).toEqual(['start only', 'stop only', 'start only']);
    expect(only.replica.isLeader).toBe(true);
    expect(only.replica.leader()!.term).toBeGreaterThan(first);
    // A write left over from the first term (a promotion still winding down) must not carry the second's guard.
    await expectCode((terms.stores[0] as StateStore).put('late/first', 'x'), ErrorCode.NotLeader);
    expect(await only.store.get('late/first')).toBeUndefined();
    await (terms.stores[1] as StateStore).put('late/second', 'y');
    expect((await only.store.get('late/second'))?.value).toBe('y');
  });

  it('lists the replicas with their lease and which one leads, and shows the address the leader announces', async () => {
    const prefix = `cr/${++n}/`;
    const terms: Terms = { log: [], stores: [], previous: [] };
    const first = await replica(prefix, 'first', terms);
    const second = await replica(prefix, 'second', terms);
    const views = await listReplicas(first.store, first.replica.leader());
    expect(views.map((v) => [v.name, v.leader, v.address])).toEqual([
      ['first', true, 'http://first'],
      ['second', false, 'http://second'],
    ]);
    expect(views.every((v) => /^\d+$/.test(v.leaseId ?? ''))).toBe(true);
    // The leader announces where it can be reached (its API, once up): same term, everyone sees it.
    const term = first.replica.leader()?.term;
    await first.replica.setAddress('http://127.0.0.1:1234');
    await waitFor(
      () => second.replica.leader()?.address === 'http://127.0.0.1:1234',
      'the standby to see the address',
    );
    expect(second.replica.leader()?.term).toBe(term);
    expect(first.replica.isLeader).toBe(true);
    await first.replica.close();
    await waitFor(
      async () => (await listReplicas(first.store, undefined)).length === 1,
      'the closed replica to deregister',
    );
  });
});
