// On promotion, DNS (a real resolver query) and a real HAProxy (Runtime API, no reload) follow the primary.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { allocatePort } from '../../src/runtime/index.js';

const haveHaproxy = spawnSync('haproxy', ['-v'], { stdio: 'ignore' }).status === 0;
const work = mkdtempSync(join(tmpdir(), 'understudy-external-'));
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(!haveHaproxy)('DNS and HAProxy follow the primary', { timeout: 90_000 }, () => {
  it('answers <service>.understudy. and re-points HAProxy at the new primary after a failover', async () => {
    const sock = join(work, 'haproxy.sock');
    const front = await allocatePort();
    const dnsPort = await allocatePort();
    writeFileSync(
      join(work, 'haproxy.cfg'),
      [
        'global',
        `  stats socket ${sock} mode 600 level admin`,
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 5s',
        '  timeout server 5s',
        'frontend public',
        `  bind 127.0.0.1:${front}`,
        '  default_backend kv',
        'backend kv',
        '  server primary 127.0.0.1:1',
        '',
      ].join('\n'),
    );
    const haproxy: ChildProcess = spawn('haproxy', ['-db', '-f', join(work, 'haproxy.cfg')], {
      stdio: 'ignore',
    });
    cleanups.push(async () => {
      const exited = new Promise((r) => haproxy.once('exit', r));
      haproxy.kill('SIGTERM');
      await exited;
    });
    await waitFor(() => existsSync(sock), 10_000);

    const tag = randomUUID();
    const file = join(work, 'kv.yaml');
    writeFileSync(
      file,
      `dns: { listen: '127.0.0.1:${dnsPort}' }
services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms }
    echo: { count: 1, mode: hot }
    routing: { haproxy: { socket: ${sock}, backend: kv, server: primary } }
`,
    );
    const dataDir = join(work, 'data');
    const up: UpProcess = await startUp(file, dataDir);
    cleanups.push(async () => {
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    });
    const api = ApiClient.fromDataDir(dataDir);
    const primary = async (): Promise<{ id: string; pid: number; port: number } | undefined> => {
      const p = (await api.instances()).find((i) => i.role === 'primary' && i.phase === 'running');
      return p?.pid ? { id: p.id, pid: p.pid, port: p.ports.http ?? 0 } : undefined;
    };
    // HAProxy serves through whatever primary the adapter pointed it at.
    const viaHaproxy = async (): Promise<number> =>
      (
        await fetch(`http://127.0.0.1:${front}/kv/x`, { method: 'PUT', body: 'y' }).catch(() => ({
          status: 0,
        }))
      ).status;
    await waitFor(async () => (await viaHaproxy()) === 200, 15_000, up.output);

    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dnsPort}`]);
    expect(await resolver.resolve4('kv.understudy')).toEqual(['127.0.0.1']);
    await expect(resolver.resolve4('nope.understudy')).rejects.toMatchObject({ code: 'ENOTFOUND' });

    const first = await primary();
    process.kill(first?.pid ?? 0, 'SIGKILL');
    await waitFor(async () => {
      const p = await primary();
      return p !== undefined && p.id !== first?.id;
    }, 10_000);
    const second = await primary();
    await waitFor(async () => (await viaHaproxy()) === 200, 10_000);
    const routes = (await api.events({ service: 'kv', limit: 1000 })).filter((e) => e.kind === 'route');
    expect(routes.at(-1)?.outcome).toEqual({
      status: 'ok',
      detail: `dns kv A 127.0.0.1; haproxy kv/primary → 127.0.0.1:${second?.port}`,
    });
    expect(await resolver.resolve4('kv.understudy')).toEqual(['127.0.0.1']);
  });
});
