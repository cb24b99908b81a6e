import { describe, expect, it } from 'vitest';
import {
  aptCommands,
  BENCH_PEERS,
  commandExists,
  ensurePeers,
  missingPeers,
  startWithRetries,
} from '../../bench/lib/peers.js';

describe('benchmark peers', () => {
  it('lists the tools of the benchmarks that run them', () => {
    expect(BENCH_PEERS.router?.map((p) => p.command)).toEqual(['wrk', 'haproxy']);
    expect(BENCH_PEERS.sync?.map((p) => p.package)).toEqual(['rsync']);
    expect(missingPeers('forecast', () => false)).toEqual([]);
  });

  it('installs what the PostgreSQL rows of the peers bench run: PostgreSQL, Patroni, HAProxy and etcd', () => {
    const packages = missingPeers('peers', () => false).map((p) => p.package);
    expect(packages).toEqual(
      expect.arrayContaining([
        'redis-server',
        'redis-sentinel',
        'postgresql',
        'patroni',
        'haproxy',
        'etcd-server',
      ]),
    );
    expect(missingPeers('peers', (c) => c !== 'patroni')).toEqual([
      { command: 'patroni', package: 'patroni' },
    ]);
  });

  it('finds commands on PATH', () => {
    expect(commandExists('sh')).toBe(true);
    expect(commandExists('no-such-command-understudy')).toBe(false);
  });

  it('installs only the missing packages with apt-get (sudo unless root), and reports what is still missing', () => {
    const installed = new Set(['haproxy']);
    const ran: string[][] = [];
    const still = ensurePeers('router', {
      exists: (c) => installed.has(c),
      run: (argv) => {
        ran.push(argv);
        if (argv.includes('install')) installed.add('wrk');
        return 0;
      },
      root: false,
      log: () => undefined,
    });
    expect(still).toEqual([]);
    expect(ran).toEqual(aptCommands(['wrk'], false));
    expect(ran[0]).toEqual(['sudo', 'apt-get', 'update', '-qq']);
    expect(ran[1]?.slice(-2)).toEqual(['--no-install-recommends', 'wrk']);
  });

  it('runs nothing when every peer is there, and stops after a failed apt-get', () => {
    const ran: string[][] = [];
    expect(ensurePeers('sync', { exists: () => true, run: (a) => (ran.push(a), 0) })).toEqual([]);
    expect(ran).toEqual([]);
    const lines: string[] = [];
    const still = ensurePeers('sync', {
      exists: () => false,
      run: (a) => (ran.push(a), 100),
      root: true,
      log: (l) => lines.push(l),
    });
    expect(still).toEqual([{ command: 'rsync', package: 'rsync' }]);
    expect(ran).toEqual([['apt-get', 'update', '-qq']]);
    expect(lines.at(-1)).toMatch(/'apt-get update -qq' failed \(exit 100\)/);
  });
});

describe('starting the system of a bench run', () => {
  it('starts again after a failed start, saying why, and returns the first system that comes up', async () => {
    const lines: string[] = [];
    const seen: number[] = [];
    const system = await startWithRetries(
      (attempt) => {
        seen.push(attempt);
        return attempt < 3 ? Promise.reject(new Error(`slow start ${attempt}`)) : Promise.resolve('up');
      },
      { log: (l) => lines.push(l), what: 'peers-x: sys' },
    );
    expect(system).toBe('up');
    expect(seen).toEqual([1, 2, 3]);
    expect(lines).toEqual([
      'peers-x: sys: start attempt 1 failed (slow start 1); again',
      'peers-x: sys: start attempt 2 failed (slow start 2); again',
    ]);
  });

  it('gives up after the last attempt with its error', async () => {
    let calls = 0;
    await expect(
      startWithRetries(
        () => {
          calls++;
          return Promise.reject(new Error(`no ${calls}`));
        },
        { log: () => undefined, what: 'x', attempts: 2 },
      ),
    ).rejects.toThrow('no 2');
    expect(calls).toBe(2);
  });
});
