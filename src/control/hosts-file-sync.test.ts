// The file sync of a service across hosts, on two real agents (each a LocalAgent served by an
// AgentServer with TLS under one cluster CA, reached by RemoteAgents as control reaches them), one on
// 127.0.0.1 and one on 127.0.0.2: the primary's host exposes a source to the echo's host, the echo's
// host syncs from it, and the roles swap when the primary moves.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentServer,
  createClusterCa,
  FakeAgent,
  issueLeaf,
  LocalAgent,
  RemoteAgent,
  type Agent,
  type FileSyncSettings,
  type TlsIdentity,
} from '../agent/index.js';
import { ErrorCode } from '../errors/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { verifyTrees } from '../sync/index.js';
import { copyStateBetweenHosts, HostsFileSync } from './hosts-file-sync.js';

const SECRET = 'hosts-file-sync-test-secret-0123456789';
const SETTINGS: FileSyncSettings = {
  mode: 'continuous',
  intervalMs: 1000,
  bytesThreshold: 1 << 20,
  bandwidthLimit: 0,
  priorities: [],
  exclude: [],
};
let dir: string;
const agents = new Map<string, Agent>();
/** Told of each agent that takes a host's place (as `AgentRegistry.onAgent`), by the tests that replace one. */
const agentListeners = new Set<(agent: Agent) => void>();
let ca: Awaited<ReturnType<typeof createClusterCa>>;
let control: TlsIdentity;
/** Host a's agent API: stopped and started again on the same address (an agent process restarted). */
const hostA: { server?: AgentServer; local?: LocalAgent; listen?: string; tls?: TlsIdentity } = {};
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'us-hosts-file-sync-'));
  ca = await createClusterCa();
  control = await issueLeaf(ca, { name: 'control-test' });
  for (const [host, address] of [
    ['a', '127.0.0.1'],
    ['b', '127.0.0.2'],
  ] as const) {
    const tls = await issueLeaf(ca, { name: host, ips: [address] });
    const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 200 }), host, address });
    const server = await AgentServer.start({ agent: local, secret: SECRET, tls, listen: `${address}:0` });
    const remote = new RemoteAgent({
      host,
      address,
      url: server.url,
      secret: SECRET,
      tls: control,
      reconnectMs: 100,
      syncPollMs: 100,
    });
    if (host === 'a') Object.assign(hostA, { server, local, listen: new URL(server.url).host, tls });
    closers.push(
      () => remote.close({ leaveRunning: true }),
      () => (host === 'a' ? hostA.server!.close() : server.close()),
      () => local.close({ graceMs: 100 }),
    );
    agents.set(host, remote);
  }
}, 30_000);

afterAll(async () => {
  for (const c of closers.splice(0)) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const same = async (a: string, b: string) => (await verifyTrees(a, b)).length === 0;

/**
 * A HostsFileSync of `service` whose primary `p` (`<dir>/<name>/a/p`, holding `data.txt`) is on host a
 * and whose echo `e` (`<dir>/<name>/<echoHost>/e`) on `echoHost`, once the echo holds the primary's
 * files (the instances' hosts found by id and by directory); `events` collects the sync's events.
 */
async function syncedPair(
  name: string,
  service: string,
  echoHost: string,
  data: string,
  firstCopy = 'the first copy',
  followRegistry = false,
): Promise<{ p: string; e: string; sync: HostsFileSync; events: string[] }> {
  const root = join(dir, name);
  const [p, e] = [join(root, 'a', 'p'), join(root, echoHost, 'e')];
  mkdirSync(p, { recursive: true });
  writeFileSync(join(p, 'data.txt'), data);
  const where = new Map<string, string>([
    ['p', 'a'],
    [p, 'a'],
    ['e', echoHost],
    [e, echoHost],
  ]);
  const events: string[] = [];
  const sync = new HostsFileSync(
    { service, settings: SETTINGS, onEvent: (id, kind, m) => events.push(`${id} ${kind} ${m}`) },
    {
      agentOf: (h) => agents.get(h)!,
      hostOf: (i) => where.get(i.id ?? i.stateDir ?? ''),
      defaultHost: 'a',
      ...(followRegistry
        ? {
            onAgent: (l: (agent: Agent) => void) => {
              agentListeners.add(l);
              return () => agentListeners.delete(l);
            },
          }
        : {}),
    },
  );
  closers.unshift(() => sync.close());
  await sync.setPrimary(p);
  await agents.get(echoHost)!.prepareSyncTarget(e);
  await sync.addEcho('e', e);
  await until(firstCopy, () => same(p, e));
  return { p, e, sync, events };
}

describe('HostsFileSync', () => {
  it('syncs an echo on another host from the primary over the hosts’ own addresses, follows changes, reports its lag from the primary’s host, and swaps source and echo when the primary moves', async () => {
    const { p, e, sync, events } = await syncedPair(
      'swap',
      'svc',
      'b',
      'written on host a\n',
      'the echo on host b to hold the primary’s files',
    );
    writeFileSync(join(p, 'later.txt'), 'a change after the initial copy\n');
    await until('the change to reach host b', () => same(p, e));
    expect(await sync.waitCaughtUp('e', 10_000)).toBe(true);
    await until('the view of the primary’s host to say caught up', () => sync.caughtUp('e'));
    const view = sync.echoes().find((v) => v.echo === 'e');
    expect(view).toMatchObject({ connected: true, lagBytes: 0, initialSync: null });
    expect(view!.wireBytes).toBeGreaterThan(0);

    // A failover: the echo on b is promoted; the old primary's directory on a becomes its echo.
    await sync.removeEcho('e');
    await sync.setPrimary(e);
    writeFileSync(join(e, 'after-failover.txt'), 'written on host b, the new primary\n');
    await sync.addEcho('p', p);
    await until('host a to follow the new primary on host b', () => same(e, p));
    expect(await sync.waitCaughtUp('p', 10_000)).toBe(true);
    expect(sync.echoes().map((v) => v.echo)).toEqual(['p']);
    expect(events.filter((x) => x.includes(' error '))).toEqual([]);
  }, 60_000);

  it('after the primary host’s agent restarts (its sources made again on new ports), the echo on the other host follows the new source', async () => {
    const { p, e, sync } = await syncedPair('restart', 'svc2', 'b', 'before the restart\n');

    await hostA.server!.close();
    hostA.server = await AgentServer.start({
      agent: hostA.local!,
      secret: SECRET,
      tls: hostA.tls!,
      listen: hostA.listen!,
    });
    writeFileSync(join(p, 'after.txt'), 'written after the agent restarted\n');
    await until('the change to reach host b through the new source', () => same(p, e), 20_000);
    expect(await sync.waitCaughtUp('e', 10_000)).toBe(true);
  }, 60_000);

  /** Host `host` at `address`, served by an agent that can be replaced by another on a new address. */
  async function replaceableHost(host: string, address: string) {
    const tls = await issueLeaf(ca, { name: host, ips: [address] });
    const local = new LocalAgent({ runtime: await ProcessRuntime.create({ graceMs: 200 }), host, address });
    closers.push(() => local.close({ graceMs: 100 }));
    const serve = async () => {
      const server = await AgentServer.start({ agent: local, secret: SECRET, tls, listen: `${address}:0` });
      const remote = new RemoteAgent({
        host,
        address,
        url: server.url,
        secret: SECRET,
        tls: control,
        syncPollMs: 100,
      });
      closers.unshift(
        () => remote.close({ leaveRunning: true }),
        () => server.close(),
      );
      agents.set(host, remote);
      for (const l of [...agentListeners]) l(remote);
      return { server, remote };
    };
    const first = await serve();
    return {
      /** The agent process stops (its syncs go with it) and another registers on a new address. */
      replace: async () => {
        await first.server.close();
        await first.remote.close({ leaveRunning: true });
        return serve();
      },
    };
  }

  it('when the echo host’s agent comes back on a new address (a new client in the registry), the sync is set up again on it', async () => {
    const c = await replaceableHost('c', '127.0.0.3');
    const { p, e, sync } = await syncedPair('replaced', 'svc3', 'c', 'before host c came back\n');

    await c.replace();
    writeFileSync(join(p, 'after.txt'), 'written once host c came back\n');
    await until('the change to reach host c again', () => {
      sync.caughtUp('e'); // a view read notices the new client
      return same(p, e);
    });
  }, 60_000);

  it('told by the registry of the echo host’s new agent, the sync is set up again on it with no view read; once closed, it no longer listens', async () => {
    const d = await replaceableHost('d', '127.0.0.4');
    const { p, e, sync } = await syncedPair(
      'told',
      'svc5',
      'd',
      'before host d came back\n',
      'the first copy',
      true,
    );
    expect(agentListeners.size).toBe(1);

    await d.replace();
    writeFileSync(join(p, 'after.txt'), 'written once host d came back\n');
    await until('the change to reach host d again', () => same(p, e));

    // A closed sync (its control term over) no longer listens to the registry.
    await sync.close();
    expect(agentListeners.size).toBe(0);
  }, 60_000);

  it('reports, instead of syncing, an echo on another host when the agents sync files on one host only', async () => {
    const fakes = new Map([
      ['a', new FakeAgent({ host: 'a' })],
      ['b', new FakeAgent({ host: 'b' })],
    ]);
    const events: string[] = [];
    const sync = new HostsFileSync(
      { service: 'svc', settings: SETTINGS, onEvent: (id, kind, m) => events.push(`${id} ${kind}: ${m}`) },
      {
        agentOf: (h) => fakes.get(h)!,
        hostOf: (i) => (i.id === 'e' ? 'b' : 'a'),
        defaultHost: 'a',
      },
    );
    await sync.addEcho('e', '/nowhere/e');
    await sync.setPrimary('/nowhere/p');
    expect(events).toEqual([expect.stringContaining("e error: cannot sync the files of echo e on host 'b'")]);
    expect(sync.caughtUp('e')).toBe(false);
    await sync.close();
  });
});

describe('copyStateBetweenHosts', () => {
  it('copies a primary’s directory to an empty directory on another host, then stops: later changes are not copied', async () => {
    const root = join(dir, 'copy');
    const [from, to] = [join(root, 'a', 'kv-0'), join(root, 'b', 'kv-1')];
    mkdirSync(join(from, 'sub'), { recursive: true });
    writeFileSync(join(from, 'kv.log'), 'put a 1\nput b 2\n');
    writeFileSync(join(from, 'sub', 'x.bin'), Buffer.alloc(200_000, 7));
    mkdirSync(to, { recursive: true });
    writeFileSync(join(to, 'stale.txt'), 'left from an earlier life of this echo\n');
    await copyStateBetweenHosts((h) => agents.get(h)!, {
      service: 'kv',
      from: { host: 'a', stateDir: from },
      to: { id: 'kv-1', host: 'b', stateDir: to },
      settings: SETTINGS,
      timeoutMs: 20_000,
    });
    expect(await verifyTrees(from, to)).toEqual([]);
    writeFileSync(join(from, 'kv.log'), 'put a 1\nput b 2\nput c 3\n');
    await new Promise((r) => setTimeout(r, 500));
    expect((await verifyTrees(from, to)).map((d) => d.path)).toEqual(['kv.log']);
  }, 40_000);

  it('refuses with UNDERSTUDY_ERR_STATE_DIR where the agents copy state on one host only', async () => {
    const err = await copyStateBetweenHosts((h) => new FakeAgent({ host: h }), {
      service: 'kv',
      from: { host: 'a', stateDir: '/nowhere/a' },
      to: { id: 'kv-1', host: 'b', stateDir: '/nowhere/b' },
      settings: SETTINGS,
      timeoutMs: 1000,
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCode.StateDir });
    expect((err as Error).message).toContain('these agents copy state on one host only');
  });
});
