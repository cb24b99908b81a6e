import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { AgentClient } from './agent-client.js';
import { AgentServer } from './agent-server.js';
import { LocalAgent } from './local-agent.js';
import { RemoteAgent } from './remote-agent.js';

const SECRET = 'sync-takeover-secret-0123456789abc';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const settings = {
  mode: 'continuous' as const,
  intervalMs: 50,
  bytesThreshold: 1,
  bandwidthLimit: 0,
  priorities: [],
  exclude: [],
};

const read = (p: string): string => (existsSync(p) ? readFileSync(p, 'utf8') : '');

/** Waits (generously: the machine may be loaded) until the echo's copy of the log equals the primary's. */
async function level(what: string, primaryLog: string, echoLog: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (read(echoLog) !== read(primaryLog)) {
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}: the echo has ${read(echoLog).length} of ${read(primaryLog).length} bytes`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** An agent with a primary and an echo directory of service `kv`, and the primary's log writer. */
async function setUp(): Promise<{
  server: AgentServer;
  primary: string;
  echo: string;
  log: string;
  echoLog: string;
  write: () => string;
}> {
  const root = mkdtempSync(join(tmpdir(), 'understudy-sync-takeover-'));
  const primary = join(root, 'p');
  const echo = join(root, 'e');
  mkdirSync(primary);
  const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 500 }), host: 'h1' });
  await local.prepareSyncTarget(echo);
  const server = await AgentServer.start({ agent: local, secret: SECRET });
  cleanups.push(async () => {
    await server.close();
    await local.close({ graceMs: 200 });
    rmSync(root, { recursive: true, force: true });
  });
  const log = join(primary, 'kv.log');
  let n = 0;
  const write = (): string => {
    const key = `key-${n++}`;
    appendFileSync(log, `{"k":"${key}","v":"${'x'.repeat(40)}"}\n`);
    return key;
  };
  return { server, primary, echo, log, echoLog: join(echo, 'kv.log'), write };
}

/** A raw API client (a control leader that is SIGKILLed later: it never closes what it set up). */
function client(server: AgentServer): AgentClient {
  const c = new AgentClient({ host: 'h1', url: server.url, secret: SECRET });
  cleanups.push(() => c.close());
  return c;
}

describe('AgentServer: the file sync of a service after a control-leader takeover', () => {
  it("hands an earlier client's sync over: the echo keeps up until the new sync writes into it, which then closes the old one", async () => {
    const { server, primary, echo, log, echoLog, write } = await setUp();
    const a = client(server);
    const b = client(server);
    const key = (): string => randomBytes(32).toString('base64');
    await a.call('syncCreate', { client: 'leader-a', syncId: 'sync-a', service: 'kv', settings, key: key() });
    await a.call('syncSetPrimary', { syncId: 'sync-a', stateDir: primary });
    await a.call('syncAddEcho', { syncId: 'sync-a', echoId: 'kv-2', stateDir: echo });
    for (let i = 0; i < 20; i++) write();
    await level("A's sync", log, echoLog);
    // A new leader sets up its sync of the service: A's is no longer A's to drive, but it goes on
    // copying (the new one has no source nor echo yet).
    await b.call('syncCreate', { client: 'leader-b', syncId: 'sync-b', service: 'kv', settings, key: key() });
    await expect(
      a.call('syncAddEcho', { syncId: 'sync-a', echoId: 'kv-3', stateDir: join(echo, 'x') }),
    ).rejects.toMatchObject({ code: ErrorCode.NotFound });
    expect(server.state()).toMatchObject({ syncs: 1, handedOver: 1 });
    write();
    await level('the handed-over sync, before the new one has a primary', log, echoLog);
    await b.call('syncSetPrimary', { syncId: 'sync-b', stateDir: primary });
    expect(server.state().handedOver).toBe(1);
    write();
    await level('the handed-over sync, before the new one has an echo', log, echoLog);
    // The new sync's first echo: the old one is closed before it writes.
    await b.call('syncAddEcho', { syncId: 'sync-b', echoId: 'kv-2', stateDir: echo });
    expect(server.state()).toMatchObject({ syncs: 1, handedOver: 0 });
    const last = write();
    await level("the new leader's sync", log, echoLog);
    expect(read(echoLog)).toContain(`"${last}"`);
  }, 60_000);

  it('a RemoteAgent of a new leader takes the sync over while writes go on: the echo ends level with the primary', async () => {
    const { server, primary, echo, log, echoLog, write } = await setUp();
    const a = client(server);
    const key = randomBytes(32);
    await a.call('syncCreate', {
      client: 'leader-a',
      syncId: 'sync-a',
      service: 'kv',
      settings,
      key: key.toString('base64'),
    });
    await a.call('syncSetPrimary', { syncId: 'sync-a', stateDir: primary });
    await a.call('syncAddEcho', { syncId: 'sync-a', echoId: 'kv-2', stateDir: echo });
    const writer = setInterval(write, 5);
    const b = new RemoteAgent({ host: 'h1', address: '127.0.0.1', url: server.url, secret: SECRET });
    cleanups.push(() => b.close({ leaveRunning: true }));
    try {
      const sync = b.fileSync({ service: 'kv', settings, key });
      await sync.setPrimary(primary);
      await sync.addEcho('kv-2', echo);
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      clearInterval(writer);
    }
    const last = write();
    await level("the new leader's sync", log, echoLog);
    expect(read(echoLog)).toContain(`"${last}"`);
    expect(server.state()).toMatchObject({ syncs: 1, handedOver: 0 });
  }, 60_000);
});
