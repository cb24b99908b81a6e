import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadSpecFile } from '../config/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { SqliteStateStore, type StateStore } from '../store/index.js';
import { ControlPlane } from './control-plane.js';
import type { InstanceRecord } from './records.js';

const KEY = 'instances/kv-1';

function record(over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id: 'kv-1',
    service: 'kv',
    role: 'primary',
    slot: 0,
    host: 'local',
    phase: 'running',
    ports: {},
    stateDir: '/nonexistent/kv-1',
    restarts: [],
    limits: {},
    epoch: 0,
    ...over,
  };
}

/** Polls `check` on the event loop, at most `tries` times (bounded; not a timing assertion). */
async function eventually(check: () => boolean, tries = 400): Promise<boolean> {
  for (let i = 0; i < tries && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  return check();
}

describe('ControlPlane: the store is the truth (no instance is started)', () => {
  let dir: string;
  const closers: Array<() => Promise<void>> = [];

  async function plane(store: StateStore): Promise<ControlPlane> {
    const specFile = join(dir, 'spec.yaml');
    writeFileSync(specFile, `services:\n  - name: kv\n    command: [sleep, '30']\n    ports: {}\n`);
    const runtime = await ProcessRuntime.create({});
    const control = await ControlPlane.create({ spec: loadSpecFile(specFile), dataDir: dir, store, runtime });
    closers.push(() => control.close());
    return control;
  }

  async function connect(tickIntervalMs: number): Promise<StateStore> {
    const store = await SqliteStateStore.create({ dataDir: dir, tickIntervalMs });
    closers.push(() => store.close());
    return store;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'understudy-control-store-'));
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await rm(dir, { recursive: true, force: true });
  });

  it('follows the store after start: a change another writer makes reaches instances()', async () => {
    const store = await connect(10);
    await store.put(KEY, JSON.stringify(record()));
    const control = await plane(store);
    expect(control.instances().map((i) => i.phase)).toEqual(['running']);
    const current = await store.get(KEY);
    await store.compareAndSet(KEY, JSON.stringify(record({ phase: 'unhealthy' })), {
      expectedRevision: current?.revision ?? -1,
    });
    expect(await eventually(() => control.instances()[0]?.phase === 'unhealthy')).toBe(true);
  });

  it('does not overwrite what another control process wrote since it read the record', async () => {
    // This control process's connection sees the other's writes only on its (hour-long) tick, as a
    // slow watcher would: its own write meets the other's change at the compare-and-set.
    const mine = await connect(3_600_000);
    await mine.put(KEY, JSON.stringify(record()));
    const control = await plane(mine);
    const other = await connect(10);
    const seen = await other.get(KEY);
    const theirs = record({
      restarts: [1234],
      health: { healthy: false, checkedAt: 1, detail: 'x', consecutiveFailures: 4 },
    });
    expect(
      await other.compareAndSet(KEY, JSON.stringify(theirs), { expectedRevision: seen?.revision ?? -1 }),
    ).toBeDefined();
    // Shutting down stops (and writes) every instance record.
    await control.close();
    const stored = JSON.parse((await other.get(KEY))?.value ?? '{}') as InstanceRecord;
    expect(stored.phase).toBe('stopped');
    expect(stored.restarts).toEqual([1234]);
    expect(stored.health).toEqual(theirs.health);
  });
});
