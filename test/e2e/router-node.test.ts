// A standalone `understudy router` following the store of an `understudy up` (real processes, real
// SQLite store shared across processes): it keeps serving while the control process is SIGKILLed under
// load, and follows the next promotion made by a restarted control process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createServer as createHttpServer, type Server } from 'node:http';
import { ApiClient } from '../../src/api/index.js';
import { parseSpecText } from '../../src/config/index.js';
import { EtcdStateStore } from '../../src/store/index.js';
import { startEtcd, type EtcdServer } from '../lib/etcd-server.js';
import { cliBin, killTagged, repoRoot, runCli, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { kvLoop } from './lib/kv-load.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-router-node-'));
const tag = randomUUID();
const children: ChildProcess[] = [];
const ups: UpProcess[] = [];
const servers: Server[] = [];
let etcd: EtcdServer | undefined;

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await etcd?.stop();
  for (const up of ups) {
    if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGINT');
    await up.exited;
  }
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGINT');
      await exited;
    }
  }
  // Instances a SIGKILLed control process left behind.
  killTagged('US_TEST_TAG', tag);
  rmSync(work, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * `understudy router` in the background (`store`: `-d DIR` or `--store URL`) on a free port of
 * 127.0.0.1; resolves once it listens. A port taken between the pick and the listen (another test's
 * ephemeral port) is picked again.
 */
async function startRouter(
  store: string[],
): Promise<{ child: ChildProcess; output: () => string; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    const child = spawn(
      process.execPath,
      [cliBin, 'router', ...store, '--service', 'kv', '--listen', listen],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let out = '';
    child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(
      () => out.includes('listening on') || child.exitCode !== null,
      15_000,
      () => `the router did not start: ${out}`,
    );
    if (attempt < 3 && out.includes('EADDRINUSE')) continue;
    expect(out).toContain(`router for kv listening on ${listen}`);
    return { child, output: () => out, port };
  }
}

describe('understudy router: the data plane follows the store (real processes)', { timeout: 120_000 }, () => {
  it('keeps serving with 0 failed requests while the control process is SIGKILLed under load, then follows a switchover of the restarted control', async () => {
    const upPort = await freePort();
    const file = join(work, 'kv.yaml');
    writeFileSync(
      file,
      `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:${upPort} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: { count: 1, mode: warm, promote: { http: /admin/reload } }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir);
    ups.push(up);
    // The API client is made again for each control process (its address and token change).
    let api = ApiClient.fromDataDir(dataDir);
    const kv = async () => (await api.services()).find((s) => s.name === 'kv');
    await waitFor(
      async () => (await kv())?.instances.filter((i) => i.phase === 'running').length === 2,
      20_000,
      up.output,
    );
    const before = await kv();
    const primary = before?.instances.find((i) => i.role === 'primary');
    const echo = before?.instances.find((i) => i.role === 'echo');
    expect(before?.dataPlane?.address).toBe(`127.0.0.1:${upPort}`);

    const router = await startRouter(['-d', dataDir]);
    const base = `http://127.0.0.1:${router.port}`;
    expect(router.output()).toMatch(new RegExp(`serving ${primary?.id} at epoch 0`));
    expect((await fetch(`${base}/kv/a`, { method: 'PUT', body: '1' })).status).toBe(200);

    // SIGKILL the control process (and with it the router inside it) while clients write through the
    // standalone router.
    const traffic = kvLoop(base, 4);
    await new Promise((r) => setTimeout(r, 500));
    up.child.kill('SIGKILL');
    await up.exited;
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${upPort}/kv/a`).catch(() => undefined)) === undefined,
      5000,
    );
    await new Promise((r) => setTimeout(r, 1500));
    const { ok, failed } = await traffic.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect(await (await fetch(`${base}/kv/a`)).text()).toBe('1');

    // A control process started again adopts the instances; its switchover moves the primary, and the
    // standalone router (same address all along) follows the epoch.
    const again = await startUp(file, dataDir);
    ups.push(again);
    api = ApiClient.fromDataDir(dataDir);
    await waitFor(
      async () =>
        (await kv().catch(() => undefined))?.instances.filter((i) => i.phase === 'running').length === 2,
      20_000,
      again.output,
    );
    const after = kvLoop(base, 2);
    const decision = await api.switchover('kv', echo?.id);
    expect(decision.outcome.status).toBe('ok');
    await waitFor(
      () => router.output().includes(`serving ${echo?.id} at epoch 1`),
      10_000,
      () => `the router did not follow the switchover: ${router.output()}`,
    );
    const afterSwitch = await after.stop();
    expect(afterSwitch.failed).toEqual([]);
    // Held from the switchover's pause record (acknowledged before the echo's catch-up was checked)
    // until the promotion completed; nothing of this switchover was taken for stale. (Whether the
    // deposed primary's record is seen at epoch 0 after the bump depends on the watch's timing.)
    expect(router.output()).toMatch(/mutations held: switchover in flight/);
    expect(router.output()).toMatch(/mutations released\n/);
    expect(router.output()).not.toMatch(/ignored a promotion/);
    // The echo was launched as an echo: its /stats says so, and that is who answers now.
    const stats = (await (await fetch(`${base}/stats`)).json()) as { role: string };
    expect(stats.role).toBe('echo');
  });

  it('follows an etcd store from its own process: serves the recorded primary, then the primary of a newer epoch', async () => {
    etcd = await startEtcd();
    const prefix = `e2e-${tag}/`;
    const store = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix });
    try {
      const backend = async (name: string): Promise<number> => {
        const server = createHttpServer((req, res) => {
          req.resume();
          req.on('end', () => res.end(name));
        });
        servers.push(server);
        await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
        return (server.address() as { port: number }).port;
      };
      const [a, b] = [await backend('a'), await backend('b')];
      const [spec] = parseSpecText(
        'services:\n  - name: kv\n    command: [x]\n    ports: { http: 0 }\n    echo: { count: 1, mode: cold }\n',
        join(work, 'etcd.yaml'),
      ).services;
      // What a control plane writes (the test plays it: `up --store etcd://` is another part).
      const instance = (id: string, port: number, role: string, epoch: number) =>
        JSON.stringify({
          id,
          service: 'kv',
          role,
          slot: role === 'primary' ? 0 : 1,
          host: 'h1',
          phase: 'running',
          ports: { http: port },
          epoch,
        });
      await store.put('services/kv', JSON.stringify(spec));
      await store.put('routing/kv', JSON.stringify({ service: 'kv', hosts: { h1: '127.0.0.1' } }));
      await store.put('instances/kv-1', instance('kv-1', a, 'primary', 0));
      const router = await startRouter(['--store', `etcd://${etcd.endpoint}/${prefix}`]);
      const port = router.port;
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('a');
      await store.put('promotions/kv', JSON.stringify({ service: 'kv', epoch: 0, next: 1, to: 'kv-2' }));
      expect(await store.bumpEpoch('kv', 0)).toBe(1);
      await store.put('instances/kv-2', instance('kv-2', b, 'primary', 1));
      await store.delete('promotions/kv');
      await waitFor(
        async () => (await (await fetch(`http://127.0.0.1:${port}/`)).text()) === 'b',
        10_000,
        router.output,
      );
      expect(router.output()).toMatch(/refused kv-1: its epoch 0 is older than 1/);
    } finally {
      await store.close();
    }
  });

  it('refuses a data directory without a store with a usage error, not a stack trace', () => {
    const r = runCli(['router', '--store', join(work, 'nothing-here'), '--service', 'kv']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--store .*nothing-here: no store there \(store\.db is missing\)/);
    expect(r.stderr).not.toMatch(/at .*\.js:\d+/);
  });

  it('on etcd: keeps serving with 0 failed requests while the control process (up --store etcd://) is SIGKILLed under load', async () => {
    etcd ??= await startEtcd();
    const store = `etcd://${etcd.endpoint}/chaos-${tag}/`;
    const upPort = await freePort();
    const file = join(work, 'kv-etcd.yaml');
    writeFileSync(
      file,
      `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    ports: { http: 0 }
    routing: { listen: 127.0.0.1:${upPort} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: { count: 1, mode: warm, promote: { http: /admin/reload } }
`,
    );
    const child = spawn(
      process.execPath,
      [cliBin, 'up', file, '--store', store, '-d', join(work, 'data-etcd')],
      {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    let upOut = '';
    child.stdout?.on('data', (c: Buffer) => (upOut += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (upOut += c.toString()));
    const upExited = new Promise((r) => child.once('exit', r));
    // The control process's own router answers once its primary runs.
    await waitFor(
      async () => (await fetch(`http://127.0.0.1:${upPort}/healthz`).catch(() => undefined))?.status === 200,
      30_000,
      () => `up --store etcd:// did not serve: ${upOut}`,
    );
    const router = await startRouter(['--store', store]);
    const base = `http://127.0.0.1:${router.port}`;
    await waitFor(
      async () =>
        (await fetch(`${base}/kv/a`, { method: 'PUT', body: '1' }).catch(() => undefined))?.status === 200,
      10_000,
      router.output,
    );
    const traffic = kvLoop(base, 4);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGKILL');
    await upExited;
    await new Promise((r) => setTimeout(r, 1500));
    const { ok, failed } = await traffic.stop();
    expect(failed).toEqual([]);
    expect(ok).toBeGreaterThan(20);
    expect(await (await fetch(`${base}/kv/a`)).text()).toBe('1');
  });
});
