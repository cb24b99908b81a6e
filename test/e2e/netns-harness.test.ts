// The real-hosts harness itself (test/lib/netns.ts): hosts reach each other across the bridge, a cut
// link stops them, a healed one works again, and nothing is left behind.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { harnessNamespaces, netnsSupport, NetnsLab, sweepStaleNamespaces } from '../lib/netns.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping the network-namespace harness tests: ${support.reason}`);

/** A TCP echo-once server on `address:port` inside host `name`, ready when it prints "listening". */
async function listen(lab: NetnsLab, name: string, port: number): Promise<void> {
  const server = lab.exec(
    name,
    process.execPath,
    [
      '-e',
      `require('node:net').createServer((s) => s.end('hello from ' + process.argv[1])).listen(${port}, process.argv[2], () => console.log('listening'))`,
      name,
      lab.address(name),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

/** Connects from host `from` to `address:port` with a 1.5 s deadline; what it read or the error code. */
function connect(lab: NetnsLab, from: string, address: string, port: number): string {
  const r = lab.run(from, process.execPath, [
    '-e',
    `const s = require('node:net').connect(${port}, '${address}'); let out = '';
     s.setTimeout(1500, () => { console.log('ETIMEDOUT'); process.exit(0); });
     s.on('data', (d) => (out += d)); s.on('end', () => { console.log(out); process.exit(0); });
     s.on('error', (e) => { console.log(e.code); process.exit(0); });`,
  ]);
  return r.stdout.trim();
}

describe.skipIf(!support.ok)('network-namespace hosts', () => {
  let lab: NetnsLab;
  beforeAll(() => {
    lab = NetnsLab.create({ hosts: ['a', 'b'] });
  });
  afterAll(async () => {
    await lab?.close();
  });

  it('gives each host its own address on a private /24', () => {
    const [a, b] = lab.hosts();
    expect(lab.subnet).toMatch(/^10\.\d+\.\d+\.0\/24$/);
    expect(a?.address).not.toBe(b?.address);
    expect(lab.run('a', 'ip', ['-4', 'addr', 'show', 'eth0']).stdout).toContain(`${lab.address('a')}/24`);
  });

  it('lets two hosts connect over TCP across the bridge', async () => {
    await listen(lab, 'b', 7000);
    expect(connect(lab, 'a', lab.address('b'), 7000)).toBe('hello from b');
  });

  it('keeps a host unreachable while its link is cut, and reachable again once healed', async () => {
    await listen(lab, 'a', 7001);
    lab.partition('a');
    expect(connect(lab, 'b', lab.address('a'), 7001)).not.toBe('hello from a');
    lab.heal('a');
    expect(connect(lab, 'b', lab.address('a'), 7001)).toBe('hello from a');
  });

  it('does not reach the machine’s own addresses from a host', () => {
    // Only the lab's addresses and the host's own loopback exist inside a namespace.
    const routes = lab.run('a', 'ip', ['-4', 'route']).stdout;
    expect(routes).not.toMatch(/default/);
  });
});

describe.skipIf(!support.ok)('network-namespace cleanup', () => {
  it('removes every namespace, veth and bridge it made, and the processes inside', async () => {
    const lab = NetnsLab.create({ hosts: ['x', 'y', 'z'] });
    const ours = harnessNamespaces().filter((n) => n.startsWith(`${lab.id}-`));
    expect(ours).toHaveLength(4); // three hosts and the switch
    const sleeper = lab.exec('x', 'sleep', ['300'], { stdio: 'ignore' });
    await lab.close();
    expect(sleeper.exitCode !== null || sleeper.signalCode !== null).toBe(true);
    expect(harnessNamespaces().filter((n) => n.startsWith(`${lab.id}-`))).toEqual([]);
    // Nothing was ever created in the machine's own namespace.
    const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
    expect(links).not.toMatch(new RegExp(`${lab.id}`));
    await lab.close(); // idempotent
  });

  it('sweeps the namespaces of a run whose process died before its cleanup', () => {
    const dead = spawnSync('true').pid as number; // exited: its pid is dead
    const stale = `us-${dead}-1-0`;
    expect(spawnSync('ip', ['netns', 'add', stale]).status).toBe(0);
    try {
      expect(sweepStaleNamespaces()).toContain(stale);
      expect(harnessNamespaces()).not.toContain(stale);
    } finally {
      spawnSync('ip', ['netns', 'del', stale]);
    }
  });
});
