// A router that follows the store, driven by records written the way the control plane writes them
// into a real store — SQLite, and etcd (a real server on loopback) — in front of real HTTP backends.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEtcd, type EtcdServer } from '../../test/lib/etcd-server.js';
import { parseSpecText } from '../config/index.js';
import { isUnderstudyError } from '../errors/index.js';
import { EtcdStateStore, SqliteStateStore, type StateStore } from '../store/index.js';
import { RouterNode } from './router-node.js';
import type { RoutedInstance } from './route-state.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A backend answering `<name> <method>` to every request. */
async function backend(name: string): Promise<number> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(`${name} ${req.method}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  server.unref();
  return (server.address() as AddressInfo).port;
}

let etcd: EtcdServer | undefined;
let prefixes = 0;
afterAll(async () => {
  await etcd?.stop();
});

/** A fresh store of the kind under test (SQLite in a temporary directory, or a fresh etcd prefix). */
async function openStore(kind: 'sqlite' | 'etcd', dir: string): Promise<StateStore> {
  if (kind === 'sqlite') return SqliteStateStore.create({ dataDir: dir, tickIntervalMs: 20 });
  etcd ??= await startEtcd();
  return EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix: `router-node/${++prefixes}/` });
}

let kind: 'sqlite' | 'etcd' = 'sqlite';

async function rig(spec = 'echo: { count: 1, mode: warm }') {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-router-node-'));
  const store = await openStore(kind, dir);
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const [svc] = parseSpecText(
    `services:\n  - name: kv\n    command: [x]\n    ports: { http: 0 }\n    ${spec}\n`,
    join(dir, 'understudy.yaml'),
  ).services;
  await store.put('services/kv', JSON.stringify(svc));
  await store.put('routing/kv', JSON.stringify({ service: 'kv', hosts: { local: '127.0.0.1' } }));
  const put = (rec: Partial<RoutedInstance> & { id: string; port: number }) =>
    store.put(
      `instances/${rec.id}`,
      JSON.stringify({
        service: 'kv',
        role: 'primary',
        slot: 0,
        host: 'local',
        phase: 'running',
        epoch: 0,
        ports: { http: rec.port },
        ...rec,
      }),
    );
  return { store, put };
}

async function start(store: StateStore, maxPauseMs = 10_000): Promise<{ node: RouterNode; lines: string[] }> {
  const lines: string[] = [];
  const node = await RouterNode.create({
    store,
    service: 'kv',
    maxPauseMs,
    epochPollMs: 50,
    onChange: (l) => lines.push(l),
  });
  cleanups.push(() => node.close({ graceMs: 0 }));
  return { node, lines };
}

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const text = async (url: string, init?: RequestInit): Promise<string> => (await fetch(url, init)).text();

describe.each(['sqlite', 'etcd'] as const)('RouterNode on %s', (storeKind) => {
  beforeAll(() => {
    kind = storeKind;
  });

  it('serves the primary the store names, and follows a promotion to a newer epoch', async () => {
    const { store, put } = await rig();
    const [a, b] = [await backend('a'), await backend('b')];
    await put({ id: 'kv-1', port: a });
    await put({ id: 'kv-2', port: b, role: 'echo', slot: 1 });
    const { node } = await start(store);
    expect(await text(`${node.router.url}/x`)).toBe('a GET');
    // The promotion as control writes it: the epoch moves, then the echo is saved as primary.
    expect(await store.bumpEpoch('kv', 0)).toBe(1);
    await put({ id: 'kv-2', port: b, epoch: 1 });
    await put({ id: 'kv-1', port: a, role: 'echo', slot: 1, phase: 'fenced' });
    await until(async () => (await text(`${node.router.url}/x`)) === 'b GET', 'the switch to kv-2');
    expect(node.stats().epoch).toBe(1);
    expect(node.stats().serving).toEqual(['kv-2']);
  });

  it('refuses a primary record of an older epoch (a deposed primary written late) and counts it', async () => {
    const { store, put } = await rig();
    const [a, b] = [await backend('a'), await backend('b')];
    await store.bumpEpoch('kv', 0);
    await put({ id: 'kv-2', port: b, epoch: 1 });
    const { node, lines } = await start(store);
    expect(await text(`${node.router.url}/x`)).toBe('b GET');
    await put({ id: 'kv-1', port: a, epoch: 0, slot: 1 });
    await until(() => node.stats().staleRecords === 1, 'the stale record to be refused');
    expect(node.stats().serving).toEqual(['kv-2']);
    expect(await text(`${node.router.url}/x`)).toBe('b GET');
    expect(lines.join('\n')).toMatch(/refused kv-1: its epoch 0 is older than 1/);
  });

  it('holds mutations while a promotion intent is in flight (reads flow) and releases them when it completes', async () => {
    const { store, put } = await rig();
    const a = await backend('a');
    await put({ id: 'kv-1', port: a });
    const { node } = await start(store);
    await store.put('promotions/kv', JSON.stringify({ service: 'kv', epoch: 0, next: 1, to: 'kv-2' }));
    await until(() => node.stats().paused, 'the pause');
    let answered = false;
    const write = text(`${node.router.url}/k`, { method: 'POST', body: 'v' }).then((t) => {
      answered = true;
      return t;
    });
    expect(await text(`${node.router.url}/k`)).toBe('a GET');
    expect(answered).toBe(false);
    await store.delete('promotions/kv');
    expect(await write).toBe('a POST');
    expect(node.stats().paused).toBe(false);
  });

  it('never holds mutations forever: a promotion left behind by a dead control plane is lifted after the bound', async () => {
    const { store, put } = await rig();
    const a = await backend('a');
    await put({ id: 'kv-1', port: a });
    await store.put('promotions/kv', JSON.stringify({ service: 'kv', epoch: 0, next: 1, to: 'kv-2' }));
    const { node, lines } = await start(store, 300);
    expect(node.stats().paused).toBe(true);
    // The intent stays (nobody completes it); the write goes through once the bound passes.
    expect(await text(`${node.router.url}/k`, { method: 'POST', body: 'v' })).toBe('a POST');
    expect(node.stats().pauseExpiries).toBe(1);
    expect(lines.join('\n')).toMatch(/mutations released: the promotion lasted past 300 ms/);
  });

  it('ignores an intent from an older epoch than its own', async () => {
    const { store, put } = await rig();
    const a = await backend('a');
    await store.bumpEpoch('kv', 0);
    await store.bumpEpoch('kv', 1);
    await put({ id: 'kv-1', port: a, epoch: 2 });
    const { node } = await start(store);
    await store.put('promotions/kv', JSON.stringify({ service: 'kv', epoch: 0, next: 1, to: 'kv-2' }));
    await until(() => node.stats().staleIntents === 1, 'the stale intent to be counted');
    expect(node.stats().paused).toBe(false);
    expect(await text(`${node.router.url}/k`, { method: 'POST', body: 'v' })).toBe('a POST');
  });

  it("routes to a host the routing record does not know once the host's agent record (hosts/<host>) names its address", async () => {
    const { store, put } = await rig();
    const a = await backend('a');
    await put({ id: 'kv-1', port: a, host: 'h2' });
    const { node } = await start(store);
    expect(node.stats().serving).toEqual([]);
    expect(node.state?.unaddressed).toEqual(['kv-1']);
    await store.put('hosts/h2', JSON.stringify({ host: 'h2', address: '127.0.0.1', zone: 'z1' }));
    await until(async () => node.stats().serving.includes('kv-1'), 'kv-1 to be routable');
    expect(await text(`${node.router.url}/x`)).toBe('a GET');
  });

  it('refuses a service with hot echoes, and a service the store does not have, with a clear error', async () => {
    const { store } = await rig('echo: { count: 1, mode: hot }');
    const err = await RouterNode.create({ store, service: 'kv' }).catch((e: unknown) => e);
    expect(isUnderstudyError(err, 'UNDERSTUDY_ERR_ROUTER_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(/hot echoes/);
    const missing = await RouterNode.create({ store, service: 'nope' }).catch((e: unknown) => e);
    expect(isUnderstudyError(missing, 'UNDERSTUDY_ERR_NOT_FOUND')).toBe(true);
    expect((missing as Error).message).toMatch(/no service 'nope'/);
  });
});

describe('RouterNode when the store goes away', () => {
  it('keeps serving the last primary it was told while etcd is down', async () => {
    const own = await startEtcd();
    try {
      const store = await EtcdStateStore.create({
        endpoints: [own.endpoint],
        prefix: 'gone/',
        requestTimeoutMs: 500,
      });
      cleanups.push(() => store.close());
      const [svc] = parseSpecText(
        'services:\n  - name: kv\n    command: [x]\n    ports: { http: 0 }\n    echo: { count: 1, mode: warm }\n',
        '/nowhere/understudy.yaml',
      ).services;
      const a = await backend('a');
      await store.put('services/kv', JSON.stringify(svc));
      await store.put('routing/kv', JSON.stringify({ service: 'kv', hosts: { local: '127.0.0.1' } }));
      await store.put(
        'instances/kv-1',
        JSON.stringify({
          id: 'kv-1',
          service: 'kv',
          role: 'primary',
          slot: 0,
          host: 'local',
          phase: 'running',
          ports: { http: a },
          epoch: 0,
        }),
      );
      const { node } = await start(store);
      expect(await text(`${node.router.url}/x`)).toBe('a GET');
      await own.stop();
      await until(() => node.stats().storeErrors > 0, 'the node to notice the store is gone');
      for (let i = 0; i < 5; i++)
        expect(await text(`${node.router.url}/k`, { method: 'POST', body: 'v' })).toBe('a POST');
      expect(node.stats().serving).toEqual(['kv-1']);
    } finally {
      await own.stop();
    }
  });
});
