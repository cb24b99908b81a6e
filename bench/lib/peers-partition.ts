// The host-partition fault of `npm run bench -- peers` (`--faults partition`), Redis rows: each system
// runs on real hosts — one network namespace per host of a NetnsLab (src/cli/netns-lab.ts) — and the
// master's host is cut off its bridge for 20 s (`lab.partition`), then healed.
// - Understudy (examples/redis: `echo.mode: external`, REPLICAOF hooks): etcd and the control plane
//   (with its TCP router, the service address) in `s1`, an `understudy agent` in `h1` and in `h2`
//   (src/cli/netns-cluster.ts starts them), so the primary and its echo run on two hosts.
// - Redis Sentinel: the master in `m`, the replica in `r`, the three sentinels in `s1`, `s2`, `s3`
//   (quorum 2: all on the majority side).
// Two clients, each a child in a namespace (bench/lib/peers-partition-client.ts): the main one in
// `client` (never cut) writes through the system's client path (Understudy's service address;
// Sentinel's get-master-addr-by-name); a second one on the master's host writes straight to the master
// it knows — an application beside the database — and is what sees the isolated old master acknowledge.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse, stringify } from 'yaml';
import { ensureClusterKey } from '../../src/agent/index.js';
import {
  startNetnsAgent,
  startNetnsControl,
  startNetnsEtcd,
  type NetnsProc,
} from '../../src/cli/netns-cluster.js';
import { NetnsLab, netnsSupport } from '../../src/cli/netns-lab.js';
import type { PeerRow, PeerRunOptions } from '../peers.js';
import { percentile } from './failover-load.js';
import { startWithRetries } from './peers.js';
import { root } from './spec-up.js';

/** One acknowledged write as a client printed it: key, server run_id, sent and acknowledged (epoch ms). */
export interface PartitionAck {
  k: string;
  s: string;
  sent: number;
  at: number;
}

/** What one partition run measured. */
export interface PartitionResult {
  /** Fault → the main client's first acknowledged write sent after it (ms; NaN: none). */
  recoveryMs: number;
  /** Acknowledged writes (both clients) missing when read back after the heal. */
  lost: number;
  /**
   * Split brain: writes the old master acknowledged after another server had acknowledged one after the
   * cut (two primaries acknowledging at once), kept or not — the definition of {@link PeerRow.splitBrain}.
   */
  splitBrain: number;
  /**
   * Of `lost`, the writes the old master acknowledged after the cut that are gone after the heal: the
   * isolated side's acknowledgements, thrown away when it rejoins (with asynchronous replication, those
   * of the moments before it was fenced, even with no second primary).
   */
  isolatedLost: number;
  /** How long after the cut the old master still acknowledged a write (ms; NaN: none after it). */
  isolatedAckMs: number;
}

/**
 * The three measurements of one run, from what the clients printed and what was read back. `t0`: the
 * cut (epoch ms); `oldServer`: the run_id of the master before it; `present`: the acknowledged keys the
 * current master holds after the heal. Split brain: writes the old master acknowledged after another
 * server had acknowledged one after the cut (two primaries acknowledging at once), each key counted once;
 * `isolatedLost`: writes it acknowledged after the cut that are gone after the heal. Pure.
 */
export function measurePartition(o: {
  t0: number;
  oldServer: string;
  main: readonly PartitionAck[];
  local: readonly PartitionAck[];
  present: ReadonlySet<string>;
}): PartitionResult {
  const first = o.main.find((a) => a.sent > o.t0);
  const all = [...o.main, ...o.local];
  const newAt = Math.min(...all.filter((a) => a.at > o.t0 && a.s !== o.oldServer).map((a) => a.at));
  const afterCut = all.filter((a) => a.s === o.oldServer && a.at > o.t0);
  const split = new Set(afterCut.filter((a) => a.at > newAt).map((a) => a.k));
  const isolatedLost = new Set(afterCut.filter((a) => !o.present.has(a.k)).map((a) => a.k));
  const lastOld = Math.max(...all.filter((a) => a.s === o.oldServer && a.at > o.t0).map((a) => a.at));
  return {
    recoveryMs: first ? Number((first.at - o.t0).toFixed(1)) : NaN,
    lost: all.filter((a) => !o.present.has(a.k)).length,
    splitBrain: split.size,
    isolatedLost: isolatedLost.size,
    isolatedAckMs: Number.isFinite(lastOld) ? Number((lastOld - o.t0).toFixed(1)) : NaN,
  };
}

/** A system started in a lab for one run. */
export interface PartitionRunning {
  /** The main client's target (peers-partition-client's `addr:` or `sentinel:` form for Redis). */
  target: string;
  /** Where the master is now: its lab host and port. */
  master(): Promise<{ host: string; port: number }>;
  /** What to show when a run fails (the end of the control plane's output). */
  tail(): string;
  /**
   * Starts a writing client in namespace `host` for `target` (`addr:<host>:<port>` for the second
   * client). @default the Redis client of bench/lib/peers-partition-client.ts
   */
  writer?(host: string, name: string, target: string): Writer;
  /** The acknowledged keys the current master holds. @default the Redis client's `check` */
  readBack?(keys: string[]): Promise<Set<string>>;
}

/** A system of the partition rows. */
export interface PartitionSystem {
  system: string;
  /** The lab's hosts besides `client`. */
  hosts: readonly string[];
  /** Longest wait for a first write after the cut. */
  maxWaitMs: number;
  start(lab: NetnsLab, work: string): Promise<PartitionRunning>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Now, ms since the epoch with sub-ms precision (the clock the clients in namespaces share). */
export const now = (): number => performance.timeOrigin + performance.now();

/** Waits until `check` holds (every 100 ms); thrown after `ms` with `what()`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: () => string,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await sleep(100);
  }
}

/** `redis-cli` inside host `from` of the lab; its stdout lines (empty on failure). */
function redisCli(lab: NetnsLab, from: string, host: string, port: number, args: string[]): string[] {
  const r = lab.run(from, 'redis-cli', ['-h', host, '-p', String(port), '--no-raw', ...args]);
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
}

/** A primary's replication: `INFO replication` fields. */
function replication(lab: NetnsLab, from: string, host: string, port: number): Record<string, string> {
  const r = lab.run(from, 'redis-cli', ['-h', host, '-p', String(port), 'INFO', 'replication']);
  const out: Record<string, string> = {};
  for (const line of (r.status === 0 ? r.stdout : '').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** Whether the master at host:port has one replica online at its own offset. */
function replicaCaughtUp(lab: NetnsLab, host: string, port: number): boolean {
  const info = replication(lab, 'client', host, port);
  const slave = info['slave0'] ?? '';
  return (
    info['role'] === 'master' &&
    info['connected_slaves'] === '1' &&
    /state=online/.test(slave) &&
    slave.includes(`offset=${info['master_repl_offset']},`)
  );
}

/** redis-server flags: append-only with fsync on every write (as the other Redis rows), on the host's address. */
const redisFlags = (dir: string): string[] => [
  ...['--bind', '0.0.0.0', '--protected-mode', 'no', '--dir', dir],
  ...['--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
  ...['--repl-diskless-sync-delay', '0', '--daemonize', 'no'],
];

/** Redis Sentinel in the lab: master `m`, replica `r`, sentinels `s1`–`s3`, quorum 2. */
function sentinel(downAfterMs: number, failoverTimeoutMs: number, stopMs: number): PartitionSystem {
  return {
    system: `redis-sentinel (down-after ${downAfterMs}, failover-timeout ${failoverTimeoutMs})`,
    hosts: ['m', 'r', 's1', 's2', 's3'],
    maxWaitMs: stopMs + 30_000,
    async start(lab, work) {
      const port = 6379;
      const sport = 26379;
      for (const [host, extra] of [
        ['m', []],
        ['r', ['--replicaof', lab.address('m'), String(port)]],
      ] as const) {
        const dir = join(work, host);
        mkdirSync(dir);
        lab.exec(host, 'redis-server', ['--port', String(port), ...redisFlags(dir), ...extra], {
          stdio: 'ignore',
        });
      }
      const sentinels = ['s1', 's2', 's3'];
      for (const s of sentinels) {
        const conf = join(work, `sentinel-${s}.conf`);
        writeFileSync(
          conf,
          [
            `port ${sport}`,
            'bind 0.0.0.0',
            'protected-mode no',
            'daemonize no',
            `dir ${work}`,
            `sentinel monitor mymaster ${lab.address('m')} ${port} 2`,
            `sentinel down-after-milliseconds mymaster ${downAfterMs}`,
            `sentinel failover-timeout mymaster ${failoverTimeoutMs}`,
            'sentinel parallel-syncs mymaster 1',
            '',
          ].join('\n'),
        );
        lab.exec(s, 'redis-sentinel', [conf], { stdio: 'ignore' });
      }
      const field = (lines: string[], k: string): string => lines[lines.indexOf(k) + 1] ?? '';
      await until(
        () =>
          sentinels.every((s) => {
            const kv = redisCli(lab, 'client', lab.address(s), sport, ['SENTINEL', 'master', 'mymaster']).map(
              (l) => l.replace(/^\d+\)\s*/, '').replace(/^"|"$/g, ''),
            );
            return field(kv, 'num-slaves') === '1' && field(kv, 'num-other-sentinels') === '2';
          }) && replicaCaughtUp(lab, lab.address('m'), port),
        30_000,
        () => 'the sentinels to see the replica and each other',
      );
      const byAddress = new Map(lab.hosts().map((h) => [h.address, h.name]));
      return {
        target: `sentinel:${sentinels.map((s) => `${lab.address(s)}:${sport}`).join(',')}`,
        master: async () => {
          for (const s of sentinels) {
            const r = redisCli(lab, 'client', lab.address(s), sport, [
              'SENTINEL',
              'get-master-addr-by-name',
              'mymaster',
            ]).map((l) => l.replace(/^\d+\)\s*/, '').replace(/^"|"$/g, ''));
            const host = byAddress.get(r[0] ?? '');
            if (host && r.length === 2) return { host, port: Number(r[1]) };
          }
          throw new Error('no sentinel names the master');
        },
        tail: () => '',
      };
    },
  };
}

/** An instance record as read from etcd. */
export interface InstanceRecord {
  id: string;
  role: string;
  phase: string;
  host: string;
  ports: Record<string, number>;
}

/**
 * Understudy in the lab: etcd and the control plane in `s1`, agents in `h1` (zone z1) and `h2` (z2),
 * examples/redis/understudy.yaml with redis-server on every address of its host and the router on
 * `0.0.0.0:6379` of `s1`. `leaseTtlMs`: the agents' `--lease-ttl` (self-fencing after 600 ms, the default bound, either way).
 */
function understudy(leaseTtlMs: number, label: string): PartitionSystem {
  return {
    system: `understudy (external, REPLICAOF; ${label})`,
    hosts: ['s1', 'h1', 'h2'],
    maxWaitMs: 30_000,
    async start(lab, work) {
      const dir = join(root, 'examples/redis');
      const doc = parse(readFileSync(join(dir, 'understudy.yaml'), 'utf8')) as {
        services: Record<string, unknown>[];
      };
      const svc = doc.services[0]!;
      svc['cwd'] = dir;
      const command = svc['command'] as string[];
      command[command.indexOf('--bind') + 1] = '0.0.0.0';
      command.push('--protected-mode', 'no');
      (svc['routing'] as Record<string, unknown>)['listen'] = '0.0.0.0:6379';
      const spec = join(work, 'understudy.yaml');
      writeFileSync(spec, stringify(doc));
      const { control, records } = await startUnderstudyLab(lab, work, spec, leaseTtlMs);
      const primary = (): InstanceRecord | undefined =>
        records().find((r) => r.role === 'primary' && r.phase === 'running');
      await until(
        () => {
          const p = primary();
          const echo = records().find((r) => r.role === 'echo' && r.phase === 'running');
          return !!p && !!echo && replicaCaughtUp(lab, lab.address(p.host), p.ports['redis'] ?? 0);
        },
        60_000,
        () => `a primary and its echo in sync: ${control.out().slice(-1500)}`,
      );
      return {
        target: `addr:${lab.address('s1')}:6379`,
        master: async () => {
          const p = primary();
          if (!p) throw new Error('no running primary recorded');
          return { host: p.host, port: p.ports['redis'] ?? 0 };
        },
        tail: () => control.out().slice(-1500),
      };
    },
  };
}

/**
 * Starts Understudy in the lab on the spec file `spec`: etcd and `understudy control` (name `c-s1`) in `s1`, an
 * `understudy agent` in `h1` (zone z1) and `h2` (z2) with `--lease-ttl leaseTtlMs`. Returns the control
 * replica and a reader of the instance records in etcd. Everything is a child of the lab.
 */
export async function startUnderstudyLab(
  lab: NetnsLab,
  work: string,
  spec: string,
  leaseTtlMs: number,
): Promise<{ control: NetnsProc; records(): InstanceRecord[] }> {
  const etcd = await startNetnsEtcd(lab, { members: ['s1'], dataDir: work });
  const clusterKey = join(work, 'cluster.key');
  ensureClusterKey(clusterKey);
  for (const [host, zone] of [
    ['h1', 'z1'],
    ['h2', 'z2'],
  ] as const) {
    const { proc, serving } = await startNetnsAgent(lab, {
      store: etcd.url,
      host,
      zone,
      clusterKey,
      leaseTtlMs,
    });
    if (!serving) throw new Error(`agent ${host} did not start: ${proc.out().slice(-500)}`);
  }
  const control: NetnsProc = startNetnsControl(lab, 's1', {
    spec,
    store: etcd.url,
    name: 'c-s1',
    clusterKey,
    dataDir: join(work, 'control'),
  });
  const endpoint = `http://${lab.address('s1')}:2379`;
  const records = (): InstanceRecord[] => {
    const r = lab.run('s1', 'etcdctl', [
      `--endpoints=${endpoint}`,
      'get',
      '--prefix',
      'understudy/k/instances/',
      '--print-value-only',
    ]);
    return r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as InstanceRecord);
  };
  return { control, records };
}

/** The systems of the partition rows, in table order. */
export function partitionSystems(stopMs: number): PartitionSystem[] {
  return [
    understudy(2000, 'lease 2s'),
    understudy(10_000, 'lease 10s, the default'),
    sentinel(30_000, 180_000, stopMs),
    sentinel(1000, 5000, stopMs),
  ];
}

/** A writing client in a namespace: the acknowledgements it printed so far, and how to stop it. */
export interface Writer {
  acks: PartitionAck[];
  stop(): Promise<void>;
}

function startWriter(lab: NetnsLab, host: string, name: string, target: string): Writer {
  const child: ChildProcess = lab.exec(
    host,
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/lib/peers-partition-client.ts'), 'write', name, target],
    { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const acks: PartitionAck[] = [];
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (!line.startsWith('{"k"')) return;
    try {
      acks.push(JSON.parse(line) as PartitionAck);
    } catch {
      // a line cut short by a client killed mid-write (stop() gives up after 5 s)
    }
  });
  return {
    acks,
    stop: async () => {
      child.stdin?.end('stop\n');
      await Promise.race([exited, sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The acknowledged keys the current master holds (read from inside the lab, `client`). */
async function readBack(lab: NetnsLab, target: string, keys: string[]): Promise<Set<string>> {
  const child = lab.exec(
    'client',
    process.execPath,
    ['--import', 'tsx', join(root, 'bench/lib/peers-partition-client.ts'), 'check', target],
    { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const code = await new Promise<number | null>((r) => {
    child.once('exit', (c) => r(c));
    child.stdin!.end(JSON.stringify(keys));
  });
  const line = out.split('\n').find((l) => l.startsWith('{"present"'));
  if (code !== 0 || !line) throw new Error(`reading back failed (${code}): ${err.trim().slice(-300)}`);
  return new Set((JSON.parse(line) as { present: string[] }).present);
}

async function oneRun(
  sys: PartitionSystem,
  stopMs: number,
  log: (line: string) => void,
): Promise<PartitionResult> {
  let lab: NetnsLab | undefined;
  let work = '';
  const writers: Writer[] = [];
  let running: PartitionRunning | undefined;
  try {
    running = await startWithRetries(
      async () => {
        await lab?.close();
        if (work) rmSync(work, { recursive: true, force: true });
        work = mkdtempSync(join(tmpdir(), 'peers-partition-'));
        lab = NetnsLab.create({ hosts: [...sys.hosts, 'client'] });
        return sys.start(lab, work);
      },
      { log, what: `peers-partition: ${sys.system}` },
    );
    const l = lab!;
    const sysNow = running;
    const master = await sysNow.master();
    const write =
      sysNow.writer?.bind(sysNow) ??
      ((host: string, name: string, target: string) => startWriter(l, host, name, target));
    const main = write('client', 'main', sysNow.target);
    const local = write(master.host, 'local', `addr:${l.address(master.host)}:${master.port}`);
    writers.push(main, local);
    await until(
      () => main.acks.length >= 300 && local.acks.length >= 50,
      30_000,
      () => `the first writes (main ${main.acks.length}, local ${local.acks.length}): ${sysNow.tail()}`,
    );
    const oldServer = main.acks.at(-1)?.s ?? '';
    l.partition(master.host);
    // The cut is the moment `ip` returned (the switch port is down): a write sent between the call
    // and then may still have been acknowledged through the link (`ip` takes tens of ms here).
    const t0 = now();
    await sleep(stopMs);
    l.heal(master.host);
    const firstAfter = (): boolean => main.acks.some((a) => a.sent > t0);
    await until(firstAfter, Math.max(0, t0 + sys.maxWaitMs - now()), () => 'a write after the cut').catch(
      () => undefined,
    );
    // Let the healed side settle (the old master rejoins as a replica and drops what it took alone).
    await sleep(5000);
    await Promise.all(writers.map((w) => w.stop()));
    const keys = [...main.acks, ...local.acks].map((a) => a.k);
    const present = await (sysNow.readBack?.(keys) ?? readBack(l, sysNow.target, keys));
    return measurePartition({ t0, oldServer, main: main.acks, local: local.acks, present });
  } finally {
    await Promise.all(writers.map((w) => w.stop().catch(() => undefined)));
    await lab?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  }
}

/** Whether partition rows can run here: network namespaces, and the programs they start (`commands`: the Redis rows'). */
export function partitionSupport(
  commands: readonly string[] = ['redis-server', 'redis-sentinel', 'redis-cli', 'etcd', 'etcdctl'],
): { ok: true } | { ok: false; reason: string } {
  const ns = netnsSupport();
  if (!ns.ok) return { ok: false, reason: `network namespaces unavailable (${ns.reason})` };
  for (const cmd of commands)
    if (spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status !== 0)
      return { ok: false, reason: `${cmd} is not installed` };
  return { ok: true };
}

/**
 * Runs the partition rows of Redis: per system, `runs` fresh runs, each in a fresh lab. Without network
 * namespaces (or a program the rows start) no run is made and every row says why in `skipped`
 * (`network namespaces unavailable (…)`); never throws. `support`: what {@link partitionSupport} says.
 */
export async function runRedisPartitionPeers(
  o: PeerRunOptions,
  support: { ok: true } | { ok: false; reason: string } = partitionSupport(),
): Promise<PeerRow[]> {
  return runPartitionRows('redis', partitionSystems(o.stopMs), o, support);
}

/**
 * The rows of `service` under the partition fault: per system (those `o.systems` names), `runs` fresh
 * runs, each in a fresh lab; with `support` not ok, no run and each row says why. Never throws.
 */
export async function runPartitionRows(
  service: string,
  all: readonly PartitionSystem[],
  o: PeerRunOptions,
  support: { ok: true } | { ok: false; reason: string },
): Promise<PeerRow[]> {
  const systems = all.filter((s) => !o.systems || o.systems.some((x) => s.system.includes(x)));
  const rows: PeerRow[] = [];
  // Interrupted (Ctrl-C, a timeout's SIGTERM): exit, so that the lab's exit hook removes its
  // namespaces and everything running in them (a signal alone would end the process without it).
  const interrupted = (): never => process.exit(130);
  process.once('SIGINT', interrupted).once('SIGTERM', interrupted);
  try {
    for (const sys of systems) {
      const results: PartitionResult[] = [];
      let skipped: string | undefined = support.ok ? undefined : support.reason;
      for (let i = 0; support.ok && i < o.runs; i++) {
        try {
          const r = await oneRun(sys, o.stopMs, o.log);
          o.log(`peers-partition: ${sys.system} run ${i + 1}: ${JSON.stringify(r)}`);
          results.push(r);
        } catch (err) {
          skipped = `run ${i + 1} failed: ${(err as Error).message}`;
          o.log(`peers-partition: ${sys.system}: ${skipped}`);
          break;
        }
      }
      const times = results.map((r) => r.recoveryMs).filter((t) => Number.isFinite(t));
      const noWrite = results.length - times.length;
      const why = [skipped, noWrite ? `${noWrite} run(s) without a write within ${sys.maxWaitMs} ms` : '']
        .filter(Boolean)
        .join('; ');
      rows.push({
        system: sys.system,
        service,
        fault: 'partition',
        runs: results.length,
        p50Ms: percentile(times, 50),
        p99Ms: percentile(times, 99),
        lostAcked: results.reduce((t, r) => t + r.lost, 0),
        splitBrain: results.reduce((t, r) => t + r.splitBrain, 0),
        isolatedLost: results.reduce((t, r) => t + r.isolatedLost, 0),
        ...(why ? { skipped: why } : {}),
      });
    }
  } finally {
    process.off('SIGINT', interrupted).off('SIGTERM', interrupted);
  }
  return rows;
}
