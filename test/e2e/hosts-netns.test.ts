// Real hosts: etcd in one network namespace, an `understudy agent` in each of two others (two zones),
// and `understudy hosts` reading the store across the bridge. A host cut off loses its lease and
// leaves the list; healed, its agent registers again.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterKey } from '../../src/agent/index.js';
import { netnsSupport, NetnsLab } from '../lib/netns.js';
import { cliBin, repoRoot, waitFor } from './lib/cli.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping hosts across network namespaces: ${support.reason}`);

interface HostsJson {
  hosts: { host: string; zone: string | null; address: string | null; lease: string }[];
}

describe.skipIf(!support.ok)('hosts on network namespaces', () => {
  let lab: NetnsLab;
  let dir: string;
  let storeUrl: string;
  const agents = new Map<string, { child: ChildProcess; out: () => string }>();

  const hosts = (): HostsJson => {
    const r = lab.run('store', process.execPath, [cliBin, 'hosts', '--store', storeUrl, '-o', 'json']);
    if (r.status !== 0) throw new Error(`understudy hosts failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as HostsJson;
  };

  beforeAll(async () => {
    lab = NetnsLab.create({ hosts: ['store', 'h1', 'h2'] });
    dir = mkdtempSync(join(tmpdir(), 'us-hosts-netns-'));
    // etcd's usual ports are free here: nothing but this test's etcd runs in the store namespace.
    const client = `http://${lab.address('store')}:2379`;
    storeUrl = `etcd://${lab.address('store')}:2379`;
    lab.exec(
      'store',
      process.env.UNDERSTUDY_ETCD_BIN ?? '/usr/bin/etcd',
      [
        '--name=s',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${client}`,
        `--advertise-client-urls=${client}`,
        '--listen-peer-urls=http://127.0.0.1:2380',
        '--initial-advertise-peer-urls=http://127.0.0.1:2380',
        '--initial-cluster=s=http://127.0.0.1:2380',
        '--heartbeat-interval=50',
        '--election-timeout=500',
        '--log-level=error',
        '--logger=zap',
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      () => lab.run('h1', 'etcdctl', [`--endpoints=${client}`, 'endpoint', 'health']).status === 0,
      20_000,
      () => 'etcd in the store namespace to be healthy (seen from h1)',
    );
    const key = join(dir, 'cluster.key');
    ensureClusterKey(key);
    for (const [host, zone] of [
      ['h1', 'z1'],
      ['h2', 'z2'],
    ] as const) {
      const child = lab.exec(
        host,
        process.execPath,
        [
          cliBin,
          'agent',
          '--store',
          storeUrl,
          '--host',
          host,
          '--zone',
          zone,
          '--listen',
          `${lab.address(host)}:0`,
          '--cluster-key',
          key,
          '--lease-ttl',
          '1s',
        ],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      agents.set(host, { child, out: () => out });
      await waitFor(
        () => /serving http/.test(out) || child.exitCode !== null,
        20_000,
        () => `agent ${host}: ${out}`,
      );
      if (child.exitCode !== null) throw new Error(`agent ${host} exited: ${out}`);
    }
  });

  afterAll(async () => {
    await lab?.close(); // kills the agents and etcd with their namespaces
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves each agent API over HTTPS on its namespace address (TLS is the default with etcd)', () => {
    for (const host of ['h1', 'h2'])
      expect(agents.get(host)!.out()).toContain(`serving https://${lab.address(host)}:`);
  });

  it('lists both agents with their zone and their namespace address, each under a held lease', () => {
    const list = hosts().hosts;
    expect(list.map((h) => [h.host, h.zone, h.address, h.lease])).toEqual([
      ['h1', 'z1', lab.address('h1'), 'held'],
      ['h2', 'z2', lab.address('h2'), 'held'],
    ]);
  });

  it('drops a host whose link is cut once its lease lapses, and lists it again when healed', async () => {
    lab.partition('h1');
    await waitFor(
      () => !hosts().hosts.some((h) => h.host === 'h1'),
      20_000,
      () => `h1 to leave the list: ${JSON.stringify(hosts())}`,
    );
    expect(hosts().hosts.map((h) => h.host)).toEqual(['h2']);
    lab.heal('h1');
    await waitFor(
      () => hosts().hosts.some((h) => h.host === 'h1' && h.lease === 'held'),
      30_000,
      () => `h1 to register again: ${agents.get('h1')?.out()}`,
    );
  }, 90_000);
});
