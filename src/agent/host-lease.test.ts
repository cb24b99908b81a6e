import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteStateStore } from '../store/index.js';
import { fenceBound, HostLease, renewEvery, type HostLeaseStore } from './host-lease.js';
import { hostKey, parseHostRecord, restartWindow, type HostRecord } from './host-record.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A real SQLite store behind a switch: while `cut`, every call fails as an unreachable store would. */
async function cuttableStore(): Promise<{
  store: HostLeaseStore;
  raw: SqliteStateStore;
  cut: (on: boolean) => void;
}> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-lease-'));
  const raw = await SqliteStateStore.create({ dataDir: dir, tickIntervalMs: 10 });
  cleanups.push(async () => {
    await raw.close();
    rmSync(dir, { recursive: true, force: true });
  });
  let cut = false;
  const guard = async <T>(f: () => Promise<T>): Promise<T> => {
    if (cut) throw new Error('store unreachable');
    return f();
  };
  return {
    raw,
    cut: (on) => (cut = on),
    store: {
      grantLease: (ttl) => guard(() => raw.grantLease(ttl)),
      keepAlive: (id) => guard(() => raw.keepAlive(id)),
      revokeLease: (id) => guard(() => raw.revokeLease(id)),
      put: (k, v, o) => guard(() => raw.put(k, v, o)),
      list: (p) => guard(() => raw.list(p)),
    },
  };
}

const record = (host: string, url: string): HostRecord => ({
  host,
  url,
  address: '127.0.0.1',
  runtime: 'process',
  cores: 2,
  memoryBytes: 1 << 30,
  pid: process.pid,
  startedAt: Date.now(),
});

async function seed(raw: SqliteStateStore, peerUrl: string): Promise<void> {
  const inst = (id: string, role: string, host: string) =>
    raw.put(`instances/${id}`, JSON.stringify({ id, role, phase: 'running', host }));
  await inst('kv-1', 'primary', 'h1');
  await inst('kv-2', 'echo', 'h1');
  await inst('db-1', 'primary', 'h2');
  await raw.put(hostKey('h2'), JSON.stringify(record('h2', peerUrl)));
}

/**
 * A HostLease of h1. Other hosts answer while `reachable` (the real TCP check is exercised on network
 * namespaces, test/e2e/host-loss.test.ts): here only the store and the peers' reachability are switched.
 */
function lease(store: HostLeaseStore, reachable: () => boolean, probeMs = 0) {
  const fenced: string[] = [];
  const stopped: string[] = [];
  const lines: string[] = [];
  const l = new HostLease({
    store,
    record: record('h1', 'http://127.0.0.1:1'),
    ttlMs: 900,
    fence: async (id) => void fenced.push(id),
    stop: async (id) => void stopped.push(id),
    runs: async () => true,
    peersAnswer: async (peers) => {
      if (probeMs > 0) await new Promise((r) => setTimeout(r, probeMs));
      return peers.some((p) => p.host === 'h2') && reachable();
    },
    log: (line) => lines.push(line),
    checkMs: 20,
  });
  cleanups.push(async () => void (await l.close()));
  return { l, fenced, stopped, lines };
}

describe('HostLease (self-fencing)', () => {
  it('keeps hosts/<name> under a lease and fences nothing while it renews', async () => {
    const { store, raw } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l, fenced } = lease(store, () => false);
    await l.start();
    expect(l.fenceAfterMs).toBe(600);
    expect((await raw.get(hostKey('h1')))?.leaseId).toBeDefined();
    await new Promise((r) => setTimeout(r, 1200));
    expect(fenced).toEqual([]);
    expect(await raw.get(hostKey('h1'))).toBeDefined();
  });

  it('cut off from the store and from every other host: fences its primaries, not its echoes nor other hosts’ instances', async () => {
    const { store, raw, cut } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l, fenced, lines } = lease(store, () => false);
    await l.start();
    cut(true);
    await until('the primary to be fenced', () => fenced.length > 0);
    expect(fenced).toEqual(['kv-1']);
    expect(l.fenced).toBe(true);
    expect(lines.join('\n')).toMatch(
      /self-fenced primary kv-1: no lease renewal for \d+ ms \(bound 600 ms, TTL 900 ms\)/,
    );
  });

  it('publishes its self-fencing bound in its host record (control waits for it before an echo elsewhere serves)', async () => {
    const { store, raw } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l } = lease(store, () => false);
    await l.start();
    const written = parseHostRecord((await raw.get(hostKey('h1')))!.value);
    expect(written?.fenceAfterMs).toBe(600);
  });

  it('defaults: a bound of 600 ms (⅔ of a shorter TTL), renewed every third of the bound, so two missed renewals are no fence', () => {
    expect(fenceBound(10_000)).toBe(600);
    expect(fenceBound(2000)).toBe(600);
    expect(fenceBound(600)).toBe(400);
    expect(fenceBound(10_000, 4000)).toBe(4000);
    expect(fenceBound(10_000, 0)).toBe(0);
    expect(renewEvery(10_000, 600)).toBe(200);
    expect(renewEvery(2000, 1333)).toBe(444);
    expect(renewEvery(10_000, 0)).toBe(3333);
  });

  it('asks the other hosts before the bound: the fence falls at the bound, not a slow probe after it, and never before it', async () => {
    const { store, raw, cut } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    // A probe of the peers that takes 400 ms (a connect timing out): asked only once the bound had
    // passed, the fence would come at ≥ 1000 ms of silence.
    const { l, fenced, lines } = lease(store, () => false, 400);
    await l.start();
    cut(true);
    await until('the primary to be fenced', () => fenced.length > 0);
    const silentMs = Number(/no lease renewal for (\d+) ms/.exec(lines.join('\n'))?.[1]);
    expect(silentMs).toBeGreaterThanOrEqual(600);
    expect(silentMs).toBeLessThan(1000);
  });

  it('cut off from the store while another host still answers (the store is down, not this host cut off): fences nothing', async () => {
    const { store, raw, cut } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l, fenced } = lease(store, () => true);
    await l.start();
    cut(true);
    // Well past the bound (600 ms) and the TTL: the check ran many times.
    await new Promise((r) => setTimeout(r, 1500));
    expect(fenced).toEqual([]);
    expect(l.fenced).toBe(false);
  });

  it('back after its lease lapsed: registers again and stops an instance whose record moved to another host meanwhile', async () => {
    const { store, raw, cut } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l, fenced, stopped } = lease(store, () => false);
    await l.start();
    cut(true);
    await until('the primary to be fenced', () => fenced.length > 0);
    // While it was away, control re-created kv-2 on h3.
    await raw.put(
      'instances/kv-2',
      JSON.stringify({ id: 'kv-2', role: 'echo', phase: 'running', host: 'h3' }),
    );
    await new Promise((r) => setTimeout(r, 1000));
    cut(false);
    await until('kv-2 to be stopped here', () => stopped.length > 0);
    expect(stopped).toEqual(['kv-2']);
    expect(l.fenced).toBe(false);
    expect((await raw.get(hostKey('h1')))?.value).toContain('"host":"h1"');
  });

  it('reachable again, it watches for the next cut: a second partition fences again', async () => {
    const { store, raw, cut } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l, fenced } = lease(store, () => false);
    await l.start();
    cut(true);
    await until('the first fence', () => fenced.length === 1);
    cut(false);
    await until('it to be reachable again', () => !l.fenced);
    cut(true);
    await until('the second fence', () => fenced.length === 2);
    expect(fenced).toEqual(['kv-1', 'kv-1']);
  });
});

describe('HostLease (planned restart)', () => {
  it('closed for a planned restart: the record stays, marked restarting until now + the grace, under a lease of the grace that lapses if no agent comes back', async () => {
    const { store, raw } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l } = lease(store, () => true);
    await l.start();
    const first = (await raw.get(hostKey('h1')))?.leaseId;
    const before = Date.now();
    const until = await l.close({ restartGraceMs: 600 });
    expect(until).toBeGreaterThanOrEqual(before + 600);
    const kept = await raw.get(hostKey('h1'));
    const rec = parseHostRecord(kept?.value ?? '');
    expect(rec?.restartingUntil).toBe(until);
    expect(restartWindow(rec, Date.now())).toBe(until);
    expect(restartWindow(rec, until! + 1)).toBeUndefined();
    // Not the agent's renewed lease any more (revoked), but one of the grace: nobody renews it.
    expect(kept?.leaseId).toBeDefined();
    expect(kept?.leaseId).not.toBe(first);
    // Past the window (600 ms, nobody back): the record lapses, the host is gone as a lost one.
    await new Promise((r) => setTimeout(r, 900));
    expect(await raw.get(hostKey('h1'))).toBeUndefined();
  });

  it('the next agent of the host registers again: its record has no mark and lives under its own lease, past the window', async () => {
    const { store, raw } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l } = lease(store, () => true);
    await l.start();
    await l.close({ restartGraceMs: 500 });
    const next = lease(store, () => true);
    await next.l.start();
    const rec = parseHostRecord((await raw.get(hostKey('h1')))?.value ?? '');
    expect(rec?.host).toBe('h1');
    expect(rec?.restartingUntil).toBeUndefined();
    await new Promise((r) => setTimeout(r, 900));
    expect(await raw.get(hostKey('h1'))).toBeDefined();
  });

  it('closed without a grace (a host leaving): the lease is revoked and the record goes at once', async () => {
    const { store, raw } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    const { l } = lease(store, () => true);
    await l.start();
    expect(await l.close()).toBeUndefined();
    expect(await raw.get(hostKey('h1'))).toBeUndefined();
  });

  it('the store refusing the mark: it leaves as a host does (lease revoked) and says why', async () => {
    const { store, raw } = await cuttableStore();
    await seed(raw, 'http://192.0.2.1:9');
    let refuse = false;
    const { l, lines } = lease(
      {
        ...store,
        grantLease: async (ttl) => {
          if (refuse) throw new Error('too many leases');
          return store.grantLease(ttl);
        },
      },
      () => true,
    );
    await l.start();
    refuse = true;
    expect(await l.close({ restartGraceMs: 5000 })).toBeUndefined();
    expect(await raw.get(hostKey('h1'))).toBeUndefined();
    expect(lines.join('\n')).toContain('cannot mark the planned restart (too many leases); leaving instead');
  });
});
