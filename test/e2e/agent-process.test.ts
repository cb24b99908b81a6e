import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  clusterTlsIdentity,
  ensureClusterKey,
  HostAgentRegistry,
  hostKey,
  parseHostRecord,
  type InstanceExit,
  type TlsIdentity,
} from '../../src/agent/index.js';
import { ErrorCode } from '../../src/errors/index.js';
import { EtcdStateStore, SqliteStateStore, type StateStore } from '../../src/store/index.js';
import { startEtcd, type EtcdServer } from '../lib/etcd-server.js';
import { cliBin, repoRoot, runCliAsync, waitFor } from './lib/cli.js';

// `understudy agent` as its own process, and a control side in this test that finds it through the
// store (HostAgentRegistry over hosts/*) and reaches it over the agent API with the cluster key.

interface AgentProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  url: string;
}

let dir: string;
let storeDir: string;
let store: SqliteStateStore;
let etcd: EtcdServer | undefined;
const registries: HostAgentRegistry[] = [];
const stores: StateStore[] = [];
const children: ChildProcess[] = [];
const pids: number[] = [];

async function startAgent(storeArg: string, extra: string[] = []): Promise<AgentProcess> {
  const child = spawn(
    process.execPath,
    [cliBin, 'agent', '--store', storeArg, '--host', 'h1', '--lease-ttl', '1s', ...extra],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let done = false;
  void exited.then(() => (done = true));
  await waitFor(
    () => done || /serving (https?:\/\/\S+)/.test(out),
    20_000,
    () => `the agent did not start: ${out}`,
  );
  const url = /serving (https?:\/\/\S+)/.exec(out)?.[1];
  if (!url) throw new Error(`the agent exited: ${out}`);
  return { child, output: () => out, exited, url };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-agent-e2e-'));
  storeDir = join(dir, 'store');
  store = await SqliteStateStore.create({ dataDir: storeDir });
  stores.push(store);
});

afterAll(async () => {
  for (const r of registries) await r.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of pids) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const s of stores) await s.close();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The agent SIGKILLed and restarted: it adopts its instance (same pid) and exit events reach control
 * again. Control here is this test: it finds the agent in the store (HostAgentRegistry over hosts/*).
 */
async function restartScenario(
  storeArg: string,
  testStore: StateStore,
  /** Read once the first agent runs (it may be the one creating the key). */
  secret: () => string,
  extra: string[],
  /** With TLS: control's identity under the cluster CA the first agent made. */
  tls?: () => Promise<TlsIdentity>,
): Promise<void> {
  const first = await startAgent(storeArg, extra);
  const record = parseHostRecord((await testStore.get(hostKey('h1')))!.value);
  expect(record).toMatchObject({ host: 'h1', url: first.url, address: '127.0.0.1', pid: first.child.pid });
  expect(record?.url.startsWith(tls ? 'https://' : 'http://')).toBe(true);
  const changes: string[] = [];
  const identity = await tls?.();
  const registry = await HostAgentRegistry.open({
    store: testStore,
    secret: secret(),
    ...(identity ? { tls: identity } : {}),
    remote: { reconnectMs: 50 },
    onChange: (c, host) => changes.push(`${c} ${host}`),
  });
  registries.push(registry);
  const exits: { id: string; pid: number; exit: InstanceExit }[] = [];
  registry.onExit((h, exit) => exits.push({ id: h.instanceId, pid: h.pid, exit }));
  expect(registry.has('h1')).toBe(true);

  // Control starts an instance on h1 and records it, as the control plane does.
  const agent = registry.get('h1');
  const port = await agent.allocatePort();
  const handle = await agent.start({
    instanceId: 'kv-1',
    service: 'kv',
    host: 'h1',
    command: [
      process.execPath,
      '-e',
      `require('node:net').createServer((s) => s.on('error', () => {}).end('hi')).listen(${port}, '127.0.0.1')`,
    ],
    cwd: dir,
    env: {},
    stateDir: join(dir, 'kv-1'),
    logDir: join(dir, 'logs'),
    logMaxBytes: 65536,
  });
  pids.push(handle.pid);
  const { exit: _exit, ...live } = handle;
  await testStore.put(
    'instances/kv-1',
    JSON.stringify({
      id: 'kv-1',
      service: 'kv',
      role: 'primary',
      host: 'h1',
      phase: 'running',
      handle: live,
    }),
  );
  await waitFor(async () => (await agent.probe({ kind: 'tcp', host: '127.0.0.1', port }, 500)).ok, 10_000);

  // The agent process dies; its instance does not, and its host record goes with its lease.
  first.child.kill('SIGKILL');
  await first.exited;
  await waitFor(
    () => !registry.has('h1'),
    10_000,
    () => `h1 still registered: ${changes.join(', ')}`,
  );
  expect(changes).toContain('down h1');
  expect(() => process.kill(handle.pid, 0)).not.toThrow();

  // Restarted: it adopts the running instance instead of starting it again.
  const second = await startAgent(storeArg, extra);
  expect(second.output()).toContain(`adopted kv-1 (pid ${handle.pid})`);
  await waitFor(() => registry.has('h1'), 10_000);
  const again = registry.get('h1');
  expect(again).not.toBe(agent);
  expect((await again.instance('kv-1'))?.pid).toBe(handle.pid);
  expect(exits).toEqual([]);

  // Exit events flow again: the adopted instance's exit reaches control through the new client.
  process.kill(handle.pid, 'SIGKILL');
  await waitFor(
    () => exits.length > 0,
    10_000,
    () => 'the exit of kv-1',
  );
  expect(exits[0]).toMatchObject({ id: 'kv-1', pid: handle.pid });

  second.child.kill('SIGTERM');
  expect(await second.exited).toBe(0);
  await waitFor(async () => (await testStore.get(hostKey('h1'))) === undefined, 5000);
  await testStore.delete('instances/kv-1');
}

describe('understudy agent', () => {
  it('survives its own SIGKILL (SQLite store): restarted, it adopts its instance (same pid) and exit events flow again', async () => {
    const keyFile = join(storeDir, 'cluster.key');
    // The first agent of a SQLite data directory creates its cluster key, owner-only.
    await restartScenario(
      storeDir,
      store,
      () => {
        expect(statSync(keyFile).mode & 0o777).toBe(0o600);
        return readFileSync(keyFile, 'utf8').trim();
      },
      [],
    );
  });

  it('survives its own SIGKILL (etcd store, --cluster-key): restarted, it adopts its instance and exits flow again', async () => {
    etcd = await startEtcd();
    const keyFile = join(dir, 'etcd-cluster.key');
    const secret = ensureClusterKey(keyFile);
    const prefix = 'agent-e2e/';
    const etcdStore = await EtcdStateStore.create({ endpoints: [etcd.endpoint], prefix });
    stores.push(etcdStore);
    // With etcd the agent API is HTTPS by default, under the CA the first agent makes beside the key.
    await restartScenario(
      `${etcd.url}/${prefix}`,
      etcdStore,
      () => secret,
      ['--cluster-key', keyFile],
      () => clusterTlsIdentity({ clusterKeyFile: keyFile, name: 'control-test' }),
    );
  });

  it('refuses unauthenticated and bad-token requests (401) and malformed bodies (400 naming the field), changing nothing', async () => {
    const proc = await startAgent(storeDir, ['--leave-running']);
    const launch = {
      launch: {
        instanceId: 'intruder',
        service: 'x',
        host: 'h1',
        command: ['/bin/sleep', '30'],
        cwd: dir,
        env: {},
        stateDir: join(dir, 'intruder'),
        logDir: join(dir, 'logs'),
        logMaxBytes: 65536,
      },
    };
    const secret = readFileSync(join(storeDir, 'cluster.key'), 'utf8').trim();
    const call = async (method: string, body: unknown, auth?: string) => {
      const res = await request(`${proc.url}/v1/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify(body),
      });
      return {
        status: res.statusCode,
        body: (await res.body.json()) as { error?: { code: string; message: string } },
      };
    };
    expect((await call('start', launch)).status).toBe(401);
    const wrong = await call(
      'start',
      launch,
      'Bearer 0000000000000000000000000000000000000000000000000000000000000000',
    );
    expect(wrong.status).toBe(401);
    expect(wrong.body.error?.code).toBe(ErrorCode.ApiAuth);
    const bad = await call('stop', { instanceId: ['kv-1'] }, `Bearer ${secret}`);
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toContain('body.instanceId');
    const seen = await call('instance', { instanceId: 'intruder' }, `Bearer ${secret}`);
    expect(seen).toEqual({ status: 200, body: { handle: null } });
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    expect(proc.output()).toContain('instances keep running');
  });

  it('refuses bad flags with a clear message and exit code 2, starting nothing', async () => {
    // Independent refusals, run at once.
    const bad = async (args: string[], what: string): Promise<void> => {
      const r = await runCliAsync(['agent', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(what);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    };
    await Promise.all([
      bad(['--store', join(dir, 'flags'), '--host', 'no spaces'], "--host 'no spaces'"),
      bad(
        ['--store', join(dir, 'flags'), '--host', 'h9', '--listen', 'nowhere'],
        "invalid listen address 'nowhere'",
      ),
      bad(['--store', 'etcd://127.0.0.1:1', '--host', 'h9'], '--cluster-key FILE is needed'),
      bad(
        ['--store', join(dir, 'flags'), '--host', 'h9', '--cluster-key', join(dir, 'none.key')],
        'no cluster key at',
      ),
    ]);
  });
});
