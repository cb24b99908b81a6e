import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { hostKey, type HostRecord } from '../../agent/index.js';
import { SqliteStateStore } from '../../store/index.js';
import { hostsTable, listHosts, runHosts } from './hosts.js';

const dirs: string[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const record = (host: string, zone: string): HostRecord => ({
  host,
  url: `http://10.0.0.${host.length}:7000`,
  address: `10.0.0.${host.length}`,
  zone,
  runtime: 'process',
  cores: 8,
  memoryBytes: 16 * 1024 ** 3,
  pid: 1234,
  startedAt: 1_000,
});
const instance = (id: string, host: string, role: string) =>
  JSON.stringify({ id, service: 'kv', role, host, phase: 'running', slot: 0, ports: {}, restarts: [] });

async function storeWithHosts(): Promise<{ store: SqliteStateStore; dir: string; leaseId: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'us-hosts-'));
  dirs.push(dir);
  const store = await SqliteStateStore.create({ dataDir: dir });
  const lease = await store.grantLease(60_000);
  await store.put(hostKey('alpha'), JSON.stringify(record('alpha', 'z1')), { leaseId: lease.id });
  await store.put(hostKey('beta'), JSON.stringify(record('beta', 'z2')));
  await store.put('instances/kv-0', instance('kv-0', 'alpha', 'primary'));
  await store.put('instances/kv-1', instance('kv-1', 'beta', 'echo'));
  await store.put('instances/kv-2', instance('kv-2', 'gamma', 'echo'));
  return { store, dir, leaseId: lease.id };
}

describe('understudy hosts', () => {
  it('lists each host with its zone, capacity, lease and the instances placed on it', async () => {
    const { store } = await storeWithHosts();
    try {
      const views = await listHosts(store, 61_000);
      expect(views.map((v) => [v.host, v.zone, v.lease, v.instances.map((i) => i.id)])).toEqual([
        ['alpha', 'z1', 'held', ['kv-0']],
        ['beta', 'z2', 'none', ['kv-1']],
        ['gamma', null, 'gone', ['kv-2']],
      ]);
      expect(views[0]?.upMs).toBe(60_000);
      const text = hostsTable(views);
      expect(text).toMatch(/alpha\s+z1\s+10\.0\.0\.5\s+8\s+16(\.0)? GiB\s+held\s+1m00s\s+1/);
      expect(text).toContain('kv echo running');
    } finally {
      await store.close();
    }
  });

  it('shows a host as gone once its lease is revoked, its instances still listed under it', async () => {
    const { store, leaseId } = await storeWithHosts();
    try {
      await store.revokeLease(leaseId);
      const alpha = (await listHosts(store, 0)).find((v) => v.host === 'alpha');
      expect(alpha).toMatchObject({ lease: 'gone', zone: null, instances: [{ id: 'kv-0' }] });
    } finally {
      await store.close();
    }
  });

  it('shows a host whose agent is in a planned restart as restarting until its window ends, then as held again', async () => {
    const { store } = await storeWithHosts();
    try {
      const window = await store.grantLease(60_000);
      const marked = { ...record('alpha', 'z1'), restartingUntil: 70_000 };
      await store.put(hostKey('alpha'), JSON.stringify(marked), { leaseId: window.id });
      const alpha = (await listHosts(store, 61_000)).find((v) => v.host === 'alpha');
      expect(alpha).toMatchObject({
        lease: 'restarting',
        restartingUntil: 70_000,
        instances: [{ id: 'kv-0' }],
      });
      expect(hostsTable(alpha ? [alpha] : [])).toMatch(/alpha\s+z1\s+\S+\s+8\s+\S+ GiB\s+restarting\s/);
      // Past its window the mark says nothing: the record's lease is what remains.
      expect((await listHosts(store, 70_001)).find((v) => v.host === 'alpha')).toMatchObject({
        lease: 'held',
        restartingUntil: null,
      });
    } finally {
      await store.close();
    }
  });

  it('prints JSON from a data directory and refuses a directory that holds no store', async () => {
    const { store, dir } = await storeWithHosts();
    await store.close();
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
    expect(await runHosts({ store: dir, output: 'json' })).toBe(0);
    const parsed = JSON.parse(out.join('')) as { hosts: { host: string }[] };
    expect(parsed.hosts.map((h) => h.host)).toEqual(['alpha', 'beta', 'gamma']);
    const empty = await mkdtemp(join(tmpdir(), 'us-hosts-empty-'));
    dirs.push(empty);
    expect(await runHosts({ store: empty })).not.toBe(0);
    expect(err.join('')).toContain('no store in');
  });
});
