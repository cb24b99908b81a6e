import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStateStore, type StateStore } from '../store/index.js';
import { INSTANCE_PREFIX, InstanceRecords } from './instance-records.js';
import { applyTransition, type TransitionRefusal } from './instance-transition.js';
import type { InstanceRecord } from './records.js';

function record(over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id: 'kv-1',
    service: 'kv',
    role: 'primary',
    slot: 0,
    host: 'local',
    phase: 'running',
    ports: { http: 8080 },
    stateDir: '/tmp/kv-1',
    restarts: [],
    limits: {},
    epoch: 1,
    ...over,
  };
}

async function stored(store: StateStore, id: string): Promise<InstanceRecord | undefined> {
  const r = await store.get(INSTANCE_PREFIX + id);
  return r && (JSON.parse(r.value) as InstanceRecord);
}

/** Resolves once `check` holds, polling on the event loop (no timing assertion: the test times out if never). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

describe('InstanceRecords: the store is the truth', () => {
  let dir: string;
  let store: StateStore;
  const open: InstanceRecords[] = [];
  const refusals: TransitionRefusal[] = [];
  const noteRefusal = (r: TransitionRefusal): void => void refusals.push(r);

  async function plane(
    onForeignChange?: (id: string, rec: InstanceRecord | undefined) => void,
    on: StateStore = store,
  ) {
    const records = await InstanceRecords.create({
      store: on,
      report: noteRefusal,
      ...(onForeignChange ? { onForeignChange } : {}),
    });
    open.push(records);
    return records;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-records-'));
    store = await SqliteStateStore.create({ dataDir: dir, tickIntervalMs: 10 });
    refusals.length = 0;
  });
  /**
   * A second connection to the same store database, as a second control process has. Its watch picks up
   * the other connection's writes only on its (long) tick, so its compare-and-set meets them first.
   */
  async function secondConnection(): Promise<StateStore> {
    const other = await SqliteStateStore.create({ dataDir: dir, tickIntervalMs: 3_600_000 });
    connections.push(other);
    return other;
  }
  const connections: StateStore[] = [];

  afterEach(async () => {
    for (const r of open.splice(0)) r.close();
    for (const c of connections.splice(0)) await c.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the records in the store at start (list) and writes a new one by compare-and-set from nothing', async () => {
    await store.put(INSTANCE_PREFIX + 'kv-1', JSON.stringify(record()));
    const a = await plane();
    expect(a.get('kv-1')).toEqual(record());
    a.add(record({ id: 'kv-2', role: 'echo', slot: 1 }));
    expect(await a.save(a.get('kv-2')!)).toEqual({ written: true, conflicts: 0 });
    expect(await stored(store, 'kv-2')).toEqual(record({ id: 'kv-2', role: 'echo', slot: 1 }));
  });

  it('two control planes on one store never lose each other’s updates: the later write is refused, re-read and merged', async () => {
    await store.put(INSTANCE_PREFIX + 'kv-1', JSON.stringify(record()));
    const a = await plane();
    const b = await plane(undefined, await secondConnection());
    const ra = a.get('kv-1')!;
    const rb = b.get('kv-1')!;
    // A records a health verdict; B, which has not seen it yet, sees the process exit.
    ra.health = { healthy: false, checkedAt: 5, detail: 'HTTP 500', consecutiveFailures: 3 };
    applyTransition(rb, 'exit', noteRefusal);
    rb.nextRestartAt = 1000;
    expect(await a.save(ra)).toEqual({ written: true, conflicts: 0 });
    expect(await b.save(rb)).toEqual({ written: true, conflicts: 1 });
    const final = await stored(store, 'kv-1');
    expect(final?.health).toEqual(ra.health);
    expect(final?.phase).toBe('exited');
    expect(final?.nextRestartAt).toBe(1000);
    expect(b.conflicts).toBe(1);
    expect(rb).toEqual(final);
    expect(refusals).toEqual([]);
  });

  it('a refused write decides the role and phase again through the transition table instead of overwriting', async () => {
    await store.put(INSTANCE_PREFIX + 'kv-1', JSON.stringify(record({ role: 'echo', slot: 1 })));
    const a = await plane();
    const b = await plane(undefined, await secondConnection());
    const ra = a.get('kv-1')!;
    const rb = b.get('kv-1')!;
    // A stops the echo on purpose; B, behind, tries to promote it.
    applyTransition(ra, 'stop', noteRefusal);
    await a.save(ra);
    applyTransition(rb, 'promote', noteRefusal);
    expect(await b.save(rb)).toEqual({ written: true, conflicts: 1 });
    expect(await stored(store, 'kv-1')).toMatchObject({ role: 'echo', phase: 'stopped' });
    expect(rb).toMatchObject({ role: 'echo', phase: 'stopped' });
    expect(refusals).toEqual([
      expect.objectContaining({ instance: 'kv-1', event: 'promote', phase: 'stopped' }),
    ]);
  });

  it('follows the store through its watch: another writer’s change reaches the cache and is announced', async () => {
    await store.put(INSTANCE_PREFIX + 'kv-1', JSON.stringify(record()));
    const seen: string[] = [];
    const a = await plane((id, rec) => seen.push(`${id}:${rec?.phase ?? 'deleted'}`));
    const b = await plane();
    const live = a.get('kv-1')!;
    const rb = b.get('kv-1')!;
    applyTransition(rb, 'unhealthy', noteRefusal);
    await b.save(rb);
    await until(() => seen.length > 0);
    expect(seen).toEqual(['kv-1:unhealthy']);
    expect(a.get('kv-1')).toBe(live);
    expect(live.phase).toBe('unhealthy');
    // A's next write starts from B's revision: no conflict.
    live.restarts = [7];
    expect(await a.save(live)).toEqual({ written: true, conflicts: 0 });
  });

  it('two writers on one connection racing each other: one compare-and-set is refused and both changes survive', async () => {
    await store.put(INSTANCE_PREFIX + 'kv-1', JSON.stringify(record()));
    const a = await plane();
    const b = await plane();
    const ra = a.get('kv-1')!;
    const rb = b.get('kv-1')!;
    ra.restarts = [1, 2];
    rb.health = { healthy: true, checkedAt: 9, detail: 'HTTP 200', consecutiveFailures: 0 };
    const [sa, sb] = await Promise.all([a.save(ra), b.save(rb)]);
    expect(sa.conflicts + sb.conflicts).toBe(1);
    expect(await stored(store, 'kv-1')).toMatchObject({ restarts: [1, 2], health: rb.health });
  });

  it('a change seen through the watch before this process wrote its own is decided again through the table', async () => {
    await store.put(INSTANCE_PREFIX + 'kv-1', JSON.stringify(record({ role: 'echo', slot: 1 })));
    const seen: string[] = [];
    const a = await plane((id) => seen.push(id));
    const b = await plane();
    const ra = a.get('kv-1')!;
    applyTransition(ra, 'promote', noteRefusal);
    const rb = b.get('kv-1')!;
    applyTransition(rb, 'stop', noteRefusal);
    await b.save(rb);
    await until(() => seen.length > 0);
    expect(ra).toMatchObject({ role: 'echo', phase: 'stopped' });
    expect(refusals).toEqual([expect.objectContaining({ event: 'promote', phase: 'stopped' })]);
    expect(await a.save(ra)).toEqual({ written: true, conflicts: 0 });
    expect(await stored(store, 'kv-1')).toMatchObject({ role: 'echo', phase: 'stopped' });
  });

  it('does not announce its own writes as foreign changes', async () => {
    const seen: string[] = [];
    const a = await plane((id) => seen.push(id));
    a.add(record());
    const rec = a.get('kv-1')!;
    for (const phase of ['unhealthy', 'ready', 'exit'] as const) {
      applyTransition(rec, phase, noteRefusal);
      void a.save(rec);
    }
    await a.flush();
    const b = await plane();
    expect(b.get('kv-1')?.phase).toBe('exited');
    await store.put('marker', '1');
    expect(seen).toEqual([]);
  });
});
