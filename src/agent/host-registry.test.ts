import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { SqliteStateStore } from '../store/index.js';
import { AgentRegistry } from './agent.js';
import { AgentServer } from './agent-server.js';
import { ensureClusterKey, readClusterKey } from './cluster-key.js';
import { FakeAgent } from './fake-agent.js';
import { hostKey, type HostRecord } from './host-record.js';
import { HostAgentRegistry } from './host-registry.js';
import { LocalAgent } from './local-agent.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'understudy-hosts-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}
async function until(what: string, fn: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('AgentRegistry.onExit', () => {
  it('follows the exits of agents added later, and no longer those of an agent removed', () => {
    const a = new FakeAgent({ host: 'a' });
    const registry = new AgentRegistry([a]);
    const seen: string[] = [];
    registry.onExit((h) => seen.push(h.instanceId));
    const b = new FakeAgent({ host: 'b' });
    registry.set(b);
    a.seedRunning({
      instanceId: 'a-1',
      service: 's',
      host: 'a',
      pid: 11,
      pgid: 11,
      startedAt: 0,
      stdoutPath: '/x',
      stderrPath: '/x',
      limits: {},
    });
    b.seedRunning({
      instanceId: 'b-1',
      service: 's',
      host: 'b',
      pid: 12,
      pgid: 12,
      startedAt: 0,
      stdoutPath: '/x',
      stderrPath: '/x',
      limits: {},
    });
    a.crash('a-1');
    b.crash('b-1');
    expect(seen).toEqual(['a-1', 'b-1']);
    registry.delete('b');
    b.seedRunning({
      instanceId: 'b-2',
      service: 's',
      host: 'b',
      pid: 13,
      pgid: 13,
      startedAt: 0,
      stdoutPath: '/x',
      stderrPath: '/x',
      limits: {},
    });
    b.crash('b-2');
    expect(seen).toEqual(['a-1', 'b-1']);
    expect(() => registry.get('b')).toThrow(expect.objectContaining({ code: ErrorCode.NotFound }));
  });
});

describe('cluster key', () => {
  it('is created once, owner-only, and read back the same; a world-readable file is tightened', () => {
    const path = join(tmp(), 'data', 'cluster.key');
    const key = ensureClusterKey(path);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ensureClusterKey(path)).toBe(key);
    chmodSync(path, 0o644);
    expect(readClusterKey(path)).toBe(key);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readFileSync(path, 'utf8').trim()).toBe(key);
  });

  it('refuses a missing or malformed key file with UNDERSTUDY_ERR_CONFIG naming the file', () => {
    const d = tmp();
    expect(() => readClusterKey(join(d, 'none.key'))).toThrow(
      expect.objectContaining({ code: ErrorCode.Config, message: expect.stringContaining('none.key') }),
    );
    writeFileSync(join(d, 'bad.key'), 'not a key', { mode: 0o600 });
    expect(() => ensureClusterKey(join(d, 'bad.key'))).toThrow(
      expect.objectContaining({ code: ErrorCode.Config }),
    );
  });
});

describe('HostAgentRegistry', () => {
  it('adds a RemoteAgent for each host record, and drops the host when its lease lapses', async () => {
    const store = await SqliteStateStore.create({ dataDir: tmp(), tickIntervalMs: 20 });
    cleanups.push(() => store.close());
    const secret = ensureClusterKey(join(tmp(), 'cluster.key'));
    const local = new LocalAgent({ runtime: await ProcessRuntime.create(), host: 'h1' });
    const server = await AgentServer.start({ agent: local, secret });
    cleanups.push(
      () => local.close({ leaveRunning: true }),
      () => server.close(),
    );
    await store.put(hostKey('broken'), '{"host": 5}');
    const changes: string[] = [];
    const registry = await HostAgentRegistry.open({
      store,
      secret,
      onChange: (c, h) => changes.push(`${c} ${h}`),
    });
    cleanups.push(() => registry.close());
    expect(registry.all()).toEqual([]);

    const lease = await store.grantLease(2000);
    const record: HostRecord = {
      host: 'h1',
      url: server.url,
      address: '127.0.0.1',
      zone: 'z1',
      runtime: 'process',
      cores: 2,
      memoryBytes: 1 << 30,
      pid: process.pid,
      startedAt: Date.now(),
    };
    await store.put(hostKey('h1'), JSON.stringify(record), { leaseId: lease.id });
    await until('h1 to join', () => registry.has('h1'));
    expect(registry.records()).toEqual([record]);
    expect(registry.addressOf({ host: 'h1' })).toBe('127.0.0.1');
    expect((await registry.get('h1').hostFacts()).loadPerCore).toBeGreaterThanOrEqual(0);
    // The same agent's record changed (a planned restart's mark): told as `up` again, same client.
    const client = registry.get('h1');
    const marked = { ...record, restartingUntil: Date.now() + 30_000 };
    await store.put(hostKey('h1'), JSON.stringify(marked), { leaseId: lease.id });
    await until('the mark to be seen', () => changes.length === 2);
    expect(registry.records()).toEqual([marked]);
    expect(registry.get('h1')).toBe(client);
    // No heartbeat from here: the lease lapses and the host is gone.
    await until('h1 to go', () => !registry.has('h1'));
    expect(changes).toEqual(['up h1', 'up h1', 'down h1']);
    expect(() => registry.get('h1')).toThrow(expect.objectContaining({ code: ErrorCode.NotFound }));
  });

  it('tells onAgent listeners of each new agent of a host once: a new API address, or the record back after it lapsed; not a planned restart mark', async () => {
    const store = await SqliteStateStore.create({ dataDir: tmp(), tickIntervalMs: 20 });
    cleanups.push(() => store.close());
    const secret = ensureClusterKey(join(tmp(), 'cluster.key'));
    const local = new LocalAgent({ runtime: await ProcessRuntime.create(), host: 'h1' });
    const first = await AgentServer.start({ agent: local, secret });
    const second = await AgentServer.start({ agent: local, secret });
    cleanups.push(
      () => local.close({ leaveRunning: true }),
      () => first.close(),
      () => second.close(),
    );
    const registry = await HostAgentRegistry.open({ store, secret });
    cleanups.push(() => registry.close());
    const told: unknown[] = [];
    registry.onAgent((agent) => told.push(agent));
    const lease = await store.grantLease(10_000);
    cleanups.push(() => store.revokeLease(lease.id));
    const record = (url: string, extra: Partial<HostRecord> = {}): string =>
      JSON.stringify({
        host: 'h1',
        url,
        address: '127.0.0.1',
        runtime: 'process',
        cores: 2,
        memoryBytes: 1 << 30,
        pid: process.pid,
        startedAt: 1,
        ...extra,
      } satisfies HostRecord);

    await store.put(hostKey('h1'), record(first.url), { leaseId: lease.id });
    await until('h1 to join', () => told.length === 1);
    expect(told[0]).toBe(registry.get('h1'));
    // The same agent marks its record for a planned restart: the same client, nothing told.
    await store.put(hostKey('h1'), record(first.url, { restartingUntil: Date.now() + 30_000 }), {
      leaseId: lease.id,
    });
    await until('the mark', () => registry.records()[0]?.restartingUntil !== undefined);
    expect(told).toHaveLength(1);
    // The next agent of the host registers on another address: a new client, told once.
    await store.put(hostKey('h1'), record(second.url), { leaseId: lease.id });
    await until('the new agent', () => told.length === 2);
    expect(told[1]).toBe(registry.get('h1'));
    expect(told[1]).not.toBe(told[0]);
    // Its record goes (lease lapsed) and comes back at the same address: another client, told once.
    await store.delete(hostKey('h1'));
    await until('h1 to go', () => !registry.has('h1'));
    await store.put(hostKey('h1'), record(second.url), { leaseId: lease.id });
    await until('h1 back', () => registry.has('h1'));
    expect(told).toHaveLength(3);
    expect(told[2]).toBe(registry.get('h1'));
  });
});
