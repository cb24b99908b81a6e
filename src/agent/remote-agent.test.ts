import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import type { HealthVerdict } from '../health/index.js';
import { allocatePort, ProcessRuntime, type InstanceExit } from '../runtime/index.js';
import { AgentServer } from './agent-server.js';
import { LocalAgent } from './local-agent.js';
import { RemoteAgent } from './remote-agent.js';

const SECRET = 'remote-test-secret-0123456789abcd';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('RemoteAgent', () => {
  it('fails with UNDERSTUDY_ERR_AGENT_UNREACHABLE naming the host and the address when no agent answers', async () => {
    const port = await allocatePort('127.0.0.1');
    const remote = new RemoteAgent({
      host: 'gone-host',
      address: '127.0.0.1',
      url: `http://127.0.0.1:${port}`,
      secret: SECRET,
      requestTimeoutMs: 2000,
    });
    cleanups.push(() => remote.close({ leaveRunning: true }));
    const err = await remote.stop('kv-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.AgentUnreachable });
    expect((err as Error).message).toContain("'gone-host'");
    expect((err as Error).message).toContain(`127.0.0.1:${port}`);
    // A probe never throws: an unreachable agent is a failed probe.
    expect((await remote.probe({ kind: 'tcp', host: '127.0.0.1', port }, 500)).ok).toBe(false);
    // Closing (stop every instance) cannot reach it either: said so, and the client is closed all the same.
    await expect(remote.close({ graceMs: 100 })).rejects.toMatchObject({ code: ErrorCode.AgentUnreachable });
    expect(remote.connected).toBe(false);
    await expect(remote.close()).resolves.toBeUndefined();
  });

  it('gives up on an agent that accepts connections but never answers, with UNDERSTUDY_ERR_AGENT_UNREACHABLE', async () => {
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const sockets = new Set<Socket>();
    silent.on('connection', (s) => sockets.add(s));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    const port = (silent.address() as AddressInfo).port;
    const remote = new RemoteAgent({
      host: 'stuck',
      address: '127.0.0.1',
      url: `http://127.0.0.1:${port}`,
      secret: SECRET,
      requestTimeoutMs: 300,
    });
    cleanups.push(() => remote.close({ leaveRunning: true }));
    const err = await remote.kill('kv-1', 'SIGTERM').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.AgentUnreachable });
    expect((err as Error).message).toContain("'stuck'");
  });

  it('refuses to work with a wrong cluster secret (UNDERSTUDY_ERR_API_AUTH)', async () => {
    const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
    const server = await AgentServer.start({ agent: local, secret: SECRET });
    cleanups.push(
      () => local.close({ graceMs: 200 }),
      () => server.close(),
    );
    const remote = new RemoteAgent({
      host: 'h1',
      address: '127.0.0.1',
      url: server.url,
      secret: 'x'.repeat(32),
    });
    cleanups.push(() => remote.close({ leaveRunning: true }));
    await expect(remote.info()).rejects.toMatchObject({ code: ErrorCode.ApiAuth });
  });

  it('reports an exit that happened while its agent API was down once it is back, and watches again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-remote-'));
    const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
    cleanups.push(async () => {
      await local.close({ graceMs: 200 });
      rmSync(dir, { recursive: true, force: true });
    });
    let server = await AgentServer.start({ agent: local, secret: SECRET, pingMs: 200 });
    const listen = server.url.replace('http://', '');
    cleanups.push(() => server.close());
    const remote = new RemoteAgent({
      host: 'h1',
      address: '127.0.0.1',
      url: server.url,
      secret: SECRET,
      reconnectMs: 50,
      streamIdleMs: 1000,
    });
    cleanups.push(() => remote.close({ leaveRunning: true }));
    const exits: InstanceExit[] = [];
    remote.onExit((h, e) => h.instanceId === 'kv-1' && exits.push(e));
    const port = await remote.allocatePort();
    const handle = await remote.start({
      instanceId: 'kv-1',
      service: 'kv',
      host: 'h1',
      command: [
        process.execPath,
        '-e',
        `require('node:net').createServer((s) => s.on('error', () => {})).listen(${port}, '127.0.0.1')`,
      ],
      cwd: dir,
      env: {},
      stateDir: join(dir, 'kv-1'),
      logDir: join(dir, 'logs'),
      logMaxBytes: 65536,
    });
    const verdicts: HealthVerdict[] = [];
    const ac = new AbortController();
    cleanups.push(async () => ac.abort());
    remote.watch(
      {
        instanceId: 'kv-1',
        health: {
          target: { kind: 'tcp', host: '127.0.0.1', port },
          intervalMs: 50,
          timeoutMs: 500,
          failureThreshold: 1,
          startPeriodMs: 0,
        },
      },
      { onHealth: (v) => verdicts.push(v), onHang: () => undefined },
      ac.signal,
    );
    await until('connected and healthy', () => remote.connected && verdicts.some((v) => v.healthy));

    // The API goes away (the agent's instances keep running), the instance dies meanwhile.
    await server.close();
    await until('the stream to notice', () => !remote.connected);
    process.kill(handle.pid, 'SIGKILL');
    await until('the local exit', async () => (await local.instance('kv-1'))?.exit);
    await new Promise((r) => setTimeout(r, 200));
    expect(exits).toEqual([]);

    // Back (a new boot of the API): the exit is delivered from a re-read of the instance, once.
    server = await AgentServer.start({ agent: local, secret: SECRET, listen, pingMs: 200 });
    await until('the exit after reconnect', () => exits.length > 0);
    expect(exits[0]?.signal).toBe('SIGKILL');
    verdicts.length = 0;
    await until('an unhealthy verdict from the re-established watch', () => verdicts.some((v) => !v.healthy));
    await new Promise((r) => setTimeout(r, 200));
    expect(exits).toHaveLength(1);
  });
});

describe('AgentServer and a vanished client', () => {
  it('ends the watches of a client whose event stream has been gone for the grace period', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-orphan-'));
    const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
    const server = await AgentServer.start({ agent: local, secret: SECRET, orphanGraceMs: 200 });
    cleanups.push(async () => {
      await server.close();
      await local.close({ graceMs: 200 });
      rmSync(dir, { recursive: true, force: true });
    });
    const remote = new RemoteAgent({ host: 'h1', address: '127.0.0.1', url: server.url, secret: SECRET });
    const ac = new AbortController();
    remote.watch(
      {
        instanceId: 'nothing',
        health: {
          target: { kind: 'tcp', host: '127.0.0.1', port: 1 },
          intervalMs: 100,
          timeoutMs: 100,
          failureThreshold: 1,
          startPeriodMs: 0,
        },
      },
      { onHealth: () => undefined, onHang: () => undefined },
      ac.signal,
    );
    const sync = remote.fileSync({
      service: 's',
      settings: {
        mode: 'continuous',
        intervalMs: 50,
        bytesThreshold: 1,
        bandwidthLimit: 0,
        priorities: [],
        exclude: [],
      },
    });
    await sync.setPrimary(dir);
    await until(
      'the watch and sync on the agent',
      () => server.state().watches === 1 && server.state().syncs === 1,
    );
    // The client goes (its file syncs closed, its watches left behind, as by a control process that
    // did not abort them): the stream ends, and the watch ends once the grace period passed.
    await remote.close({ leaveRunning: true });
    await until('the stream to end', () => server.state().streams === 0 && server.state().syncs === 0);
    expect(server.state().watches).toBe(1);
    await until('the orphaned watch to end', () => server.state().watches === 0);
    expect(server.state().clients).toBe(0);
  });
});

describe('AgentServer and a control leader that was replaced', () => {
  it("ends an earlier client's file sync of a service when another client sets one up for it", async () => {
    // A SIGKILLed leader's client lives on for the orphan grace period (30 s), its file syncs too: the
    // new leader's sync of the same service must not write to the echo directories beside it (the two
    // raced on the sync state file, and a failed rename took the agent down).
    const dir = mkdtempSync(join(tmpdir(), 'understudy-supersede-'));
    const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
    const server = await AgentServer.start({ agent: local, secret: SECRET });
    const settings = {
      mode: 'continuous' as const,
      intervalMs: 50,
      bytesThreshold: 1,
      bandwidthLimit: 0,
      priorities: [],
      exclude: [],
    };
    const old = new RemoteAgent({ host: 'h1', address: '127.0.0.1', url: server.url, secret: SECRET });
    const fresh = new RemoteAgent({ host: 'h1', address: '127.0.0.1', url: server.url, secret: SECRET });
    cleanups.push(async () => {
      await fresh.close({ leaveRunning: true });
      await old.close({ leaveRunning: true }).catch(() => undefined);
      await server.close();
      await local.close({ graceMs: 200 });
      rmSync(dir, { recursive: true, force: true });
    });
    const oldSync = old.fileSync({ service: 's', settings });
    await oldSync.setPrimary(dir);
    const other = old.fileSync({ service: 'other', settings });
    await other.setPrimary(dir);
    expect(server.state().syncs).toBe(2);
    const freshSync = fresh.fileSync({ service: 's', settings });
    await freshSync.setPrimary(dir);
    // The new client's sync of 's' is the only one left of that service; 'other' is untouched.
    expect(server.state().syncs).toBe(2);
    await expect(oldSync.addEcho('e1', join(dir, 'e1'))).rejects.toMatchObject({
      code: ErrorCode.NotFound,
    });
    await freshSync.addEcho('e1', join(dir, 'e1'));
    await other.addEcho('e2', join(dir, 'e2'));
  });
});
