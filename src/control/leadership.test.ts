import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../test/lib/etcd-server.js';
import { ErrorCode } from '../errors/index.js';
import { EtcdStateStore, type StateStore } from '../store/index.js';
import { expectCode, waitFor } from '../store/contract-support.js';
import { LeaderElection, type LeadershipEvent } from './leadership.js';

const TTL = 2000;
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

async function client(prefix: string): Promise<EtcdStateStore> {
  const store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix });
  cleanups.push(() => store.close());
  return store;
}

async function candidate(
  store: StateStore,
  id: string,
  events: LeadershipEvent[] = [],
): Promise<LeaderElection> {
  const election = await LeaderElection.start({
    store,
    id,
    address: `http://${id}`,
    ttlMs: TTL,
    onChange: (e) => events.push(e),
  });
  cleanups.push(() => election.close());
  return election;
}

describe('LeaderElection on etcd', () => {
  it('elects exactly one of two candidates, and both agree who leads', async () => {
    const prefix = `el/${++n}/`;
    const [a, b] = await Promise.all([
      candidate(await client(prefix), 'a'),
      candidate(await client(prefix), 'b'),
    ]);
    await waitFor(() => a.leader() !== undefined && b.leader() !== undefined, 'both to see a leader');
    expect([a.isLeader, b.isLeader].filter(Boolean)).toHaveLength(1);
    const leader = a.isLeader ? a : b;
    expect(a.leader()?.id).toBe(leader.id);
    expect(b.leader()).toEqual(a.leader());
    expect(leader.leader()?.address).toBe(`http://${leader.id}`);
    expect(leader.guard()).toEqual({ key: 'control/leader', createRevision: leader.leader()?.term });
    expect((a.isLeader ? b : a).guard()).toBeUndefined();
  });

  it('keeps leading across several TTLs by renewing its lease, while the standby waits', async () => {
    const prefix = `el/${++n}/`;
    const events: LeadershipEvent[] = [];
    const first = await candidate(await client(prefix), 'first', events);
    const second = await candidate(await client(prefix), 'second');
    await new Promise((r) => setTimeout(r, TTL * 2.5));
    expect(first.isLeader).toBe(true);
    expect(second.isLeader).toBe(false);
    expect(events.map((e) => e.type)).toEqual(['leader', 'elected']);
  });

  it('hands over to the standby within the TTL when the leader loses its store, and the old leader steps down by itself, its writes refused', async () => {
    const prefix = `el/${++n}/`;
    const firstStore = await client(prefix);
    const firstEvents: LeadershipEvent[] = [];
    const first = await candidate(firstStore, 'first', firstEvents);
    expect(first.isLeader).toBe(true);
    const oldGuard = first.guard();
    const second = await candidate(await client(prefix), 'second');
    expect(second.isLeader).toBe(false);
    // The leader's connection dies without a word: no resignation, no renewal.
    await firstStore.close();
    await waitFor(
      () => firstEvents.some((e) => e.type === 'deposed'),
      'the old leader to step down',
      TTL * 2,
    );
    expect(first.isLeader).toBe(false);
    await waitFor(() => second.isLeader, 'the standby to lead', TTL * 3);
    const observer = await client(prefix);
    expect(oldGuard).toBeDefined();
    await expectCode(
      observer.put('services/x', 'from the old leader', { guard: oldGuard! }),
      ErrorCode.NotLeader,
    );
    expect(await observer.get('services/x')).toBeUndefined();
    expect((await observer.put('services/x', 'new', { guard: second.guard()! })).value).toBe('new');
  });

  it('steps down before its lease can lapse on the server: never two leaders at one instant', async () => {
    const prefix = `el/${++n}/`;
    const firstStore = await client(prefix);
    const first = await candidate(firstStore, 'first');
    const second = await candidate(await client(prefix), 'second');
    await firstStore.close();
    let both = false;
    await waitFor(
      () => {
        if (first.isLeader && second.isLeader) both = true;
        return second.isLeader;
      },
      'the standby to lead',
      TTL * 3,
    );
    expect(both).toBe(false);
  });

  it('resigns on close: the standby leads without waiting for the lease to lapse', async () => {
    const prefix = `el/${++n}/`;
    const first = await candidate(await client(prefix), 'first');
    const secondEvents: LeadershipEvent[] = [];
    const second = await candidate(await client(prefix), 'second', secondEvents);
    expect(first.isLeader).toBe(true);
    await first.close();
    // Well under the 2 s TTL: the key was revoked, not left to expire (a bound, not a speed test).
    await waitFor(() => second.isLeader, 'the standby to lead after a resignation', TTL - 500);
    expect(secondEvents.find((e) => e.type === 'elected')).toBeDefined();
  });

  it('refuses options that break the rule loop + 2 × request timeout < TTL', async () => {
    const store = await client(`el/${++n}/`);
    await expect(LeaderElection.start({ store, id: 'x', ttlMs: 1000, loopMs: 900 })).rejects.toMatchObject({
      code: ErrorCode.Usage,
    });
  });

  it('leads when its compare-and-set took the key but answered after the round’s deadline (the key is under its own lease)', async () => {
    const store = await client(`el/${++n}/`);
    let slowed = false;
    // The first compare-and-set is applied at once but answered 1.5 s later (a request that first
    // waited on a member cut off): longer than a round (TTL / 4), shorter than the lease.
    const slow = new Proxy(store, {
      get(target, prop) {
        if (prop === 'compareAndSet')
          return async (...args: Parameters<StateStore['compareAndSet']>) => {
            const result = await target.compareAndSet(...args);
            if (!slowed) {
              slowed = true;
              await new Promise((r) => setTimeout(r, 1500));
            }
            return result;
          };
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const a = await candidate(slow, 'a');
    await waitFor(() => a.isLeader, 'a to lead', 8000);
    expect(slowed).toBe(true);
    expect(a.leader()?.id).toBe('a');
  });
});
