// Drives a real HAProxy (Debian package `haproxy`) through its Runtime API.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HaproxyAdapter } from '../../src/router/index.js';
import { client, deadPort, httpBackend, sleep, type TestBackend } from './fixtures/router/backends.js';

const haveHaproxy = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!haveHaproxy)('HaproxyAdapter against a real HAProxy', () => {
  let dir: string;
  let proc: ChildProcess;
  let a: TestBackend;
  let b: TestBackend;
  let port: number;
  let adapter: HaproxyAdapter;
  const c = client();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-haproxy-'));
    a = await httpBackend('a');
    b = await httpBackend('b');
    port = await deadPort();
    const sock = join(dir, 'api.sock');
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      [
        'global',
        `  stats socket ${sock} mode 600 level admin`,
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 5s',
        '  timeout server 5s',
        'frontend public',
        `  bind 127.0.0.1:${port}`,
        '  default_backend app',
        'backend app',
        `  server primary 127.0.0.1:${a.port}`,
        // The echo's slot: a placeholder address, in maintenance until a promotion points it somewhere.
        '  server echo 127.0.0.1:1 disabled',
        '',
      ].join('\n'),
    );
    proc = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !existsSync(sock); i++) await sleep(50);
    adapter = await HaproxyAdapter.create({ socket: { path: sock } });
  });

  afterAll(async () => {
    await adapter?.close();
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    await c.agent.close();
    await a?.close();
    await b?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const who = async (): Promise<string> =>
    (await c.send(`http://127.0.0.1:${port}/`)).headers['x-backend'] as string;

  it('moves traffic to a promoted server by address and state, with no reload', async () => {
    expect(await who()).toBe('a');
    await adapter.switchTo('app', { server: 'echo', host: '127.0.0.1', port: b.port });
    for (let i = 0; i < 5; i++) expect(await who()).toBe('b');
    const servers = await adapter.servers('app');
    expect(servers.map((s) => [s.name, s.admin, s.port])).toEqual([
      ['primary', 'maint', a.port],
      ['echo', 'ready', b.port],
    ]);
    // And back, re-pointing the first slot instead.
    await adapter.switchTo('app', { server: 'primary' }, { others: 'drain' });
    for (let i = 0; i < 3; i++) expect(await who()).toBe('a');
    expect((await adapter.servers('app')).find((s) => s.name === 'echo')?.admin).toBe('drain');
    expect(proc.exitCode).toBeNull();
  });

  it('sets weights and reports refused commands as ROUTER_HAPROXY errors', async () => {
    await adapter.setServerWeight('app', 'primary', 10);
    expect((await adapter.servers('app')).find((s) => s.name === 'primary')?.weight).toBe(10);
    await expect(adapter.setServerState('app', 'nope', 'ready')).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_ROUTER_HAPROXY',
    });
    await expect(adapter.setServerAddress('app', 'primary', 'not-an-ip', 80)).rejects.toThrow(/Invalid addr/);
    await expect(adapter.command('show info\nshutdown')).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_ROUTER_HAPROXY',
    });
  });

  it('ramps a joining server up by weight (slow start), and HAProxy shares traffic by those weights', async () => {
    await adapter.switchTo('app', { server: 'primary' }, { others: 'drain' });
    await adapter.setServerWeight('app', 'primary', 100);
    await adapter.setServerState('app', 'echo', 'ready');
    const set = await adapter.rampWeight('app', 'echo', 100, 40, { steps: 4 });
    expect(set).toEqual([10, 25, 50, 75, 100]);
    expect((await adapter.servers('app')).find((s) => s.name === 'echo')?.weight).toBe(100);
    // Part-way through a ramp (a quarter of the weight): the joining server gets a fifth of the requests.
    await adapter.setServerWeight('app', 'echo', 25);
    const seen = { a: 0, b: 0 };
    for (let i = 0; i < 25; i++) seen[(await who()) as 'a' | 'b']++;
    expect(seen.b).toBeGreaterThanOrEqual(4);
    expect(seen.b).toBeLessThanOrEqual(6);
  });

  it('fails clearly when the Runtime API socket is unreachable', async () => {
    await expect(
      HaproxyAdapter.create({ socket: { path: join(dir, 'missing.sock') }, timeoutMs: 500 }),
    ).rejects.toMatchObject({ code: 'UNDERSTUDY_ERR_ROUTER_HAPROXY' });
  });
});
