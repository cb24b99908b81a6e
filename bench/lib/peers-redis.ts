// The Redis rows of `npm run bench -- peers`: Understudy (file-synced cold echo, and the external echo
// of examples/redis) against Redis Sentinel (3 sentinels, down-after-milliseconds at the documented
// default 30000 and tuned to 1000), the same client writing unique keys, the same faults (SIGKILL of
// the primary; SIGSTOP of it for 20 s). Each run starts a fresh system.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { allocatePort } from '../../src/runtime/index.js';
import type { PeerFault, PeerRow, PeerRunOptions } from '../peers.js';
import { percentile } from './failover-load.js';
import { startWithRetries } from './peers.js';
import { RespClient } from './resp.js';
import { respWriteLoop, type Resolve, type RespAck } from './resp-write-loop.js';
import { ApiClient } from '../../src/api/index.js';
import { root } from './spec-up.js';

/** One acknowledged write: its key, the server (run_id) that acknowledged it, when sent and acknowledged (ms). */
type Ack = RespAck;

/** A system under test for one run: where to write, the primary's pid, and how to stop it. */
interface RunningSystem {
  resolve: Resolve;
  primaryPid(): Promise<number>;
  close(): Promise<void>;
}

/** A Redis system of the bench: its row name and how to start a fresh one. */
interface RedisSystem {
  system: string;
  start(work: string): Promise<RunningSystem>;
  /** Longest wait for a first write after the fault. */
  maxWaitMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** The redis-server flags every system uses: append-only, fsync on every write, no RDB snapshots. */
const REDIS_FLAGS = [
  '--bind',
  '127.0.0.1',
  '--appendonly',
  'yes',
  '--appendfsync',
  'always',
  '--save',
  '',
  '--repl-diskless-sync-delay',
  '0',
  '--daemonize',
  'no',
];

/** A running `understudy up` (the built CLI) in a temporary data directory. */
interface SpecUp {
  api: ApiClient;
  stop(): Promise<void>;
}

/**
 * Starts `understudy up` on the spec text; resolves once its API answers. Thrown: when it exits or
 * does not answer within 60 s (a loaded machine), with the end of its output.
 */
async function startUnderstudy(specText: string): Promise<SpecUp> {
  const work = mkdtempSync(join(tmpdir(), 'peers-redis-up-'));
  const spec = join(work, 'understudy.yaml');
  writeFileSync(spec, specText);
  const dataDir = join(work, 'data');
  const up = spawn(process.execPath, [join(root, 'bin/understudy.js'), 'up', spec, '-d', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString()).slice(-2000);
  };
  up.stdout.on('data', keep);
  up.stderr.on('data', keep);
  const exited = new Promise((r) => up.once('exit', r));
  const stop = async (): Promise<void> => {
    if (up.exitCode === null && up.signalCode === null) up.kill('SIGINT');
    await exited;
    rmSync(work, { recursive: true, force: true });
  };
  try {
    await until(() => existsSync(join(dataDir, 'api.json')) || up.exitCode !== null, 60_000, 'understudy up');
    if (up.exitCode !== null) throw new Error(`understudy up exited ${up.exitCode}`);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}: ${out.trim().split('\n').slice(-3).join(' | ')}`);
  }
  return { api: ApiClient.fromDataDir(dataDir), stop };
}

/** An Understudy system: one of the examples/redis specs, run by the built CLI. */
function understudy(system: string, specFile: string, synced: (up: SpecUp) => Promise<boolean>): RedisSystem {
  return {
    system,
    maxWaitMs: 30_000,
    async start() {
      const dir = join(root, 'examples/redis');
      const doc = parse(readFileSync(join(dir, specFile), 'utf8')) as { services: Record<string, unknown>[] };
      (doc.services[0] as Record<string, unknown>)['cwd'] = dir;
      const up = await startUnderstudy(stringify(doc));
      try {
        await until(() => synced(up), 30_000, `${system}: the echo in sync`);
        const svc = (await up.api.services()).find((s) => s.name === 'redis');
        const port = Number(svc?.dataPlane?.address.split(':').at(-1));
        return {
          resolve: async () => ({ host: '127.0.0.1', port }),
          primaryPid: async () =>
            (await up.api.instances()).find((i) => i.role === 'primary' && i.phase === 'running')?.pid ?? 0,
          close: () => up.stop(),
        };
      } catch (err) {
        await up.stop();
        throw err;
      }
    },
  };
}

const externalSynced = async (up: SpecUp): Promise<boolean> =>
  (await up.api.services())
    .find((s) => s.name === 'redis')
    ?.externalEchoes?.some((e) => e.lagBytes === 0 && e.error === undefined) ?? false;

const coldSynced = async (up: SpecUp): Promise<boolean> => {
  const svc = (await up.api.services()).find((s) => s.name === 'redis');
  const echo = svc?.instances.find((i) => i.role === 'echo');
  const files = svc?.fileSync?.find((f) => f.echo === echo?.id);
  return echo?.phase === 'standby' && files !== undefined && files.connected && !files.initialSync;
};

/** Starts a process whose output is dropped; its exit is awaited on close. */
function child(argv: string[]): ChildProcess {
  const [cmd, ...args] = argv;
  return spawn(cmd ?? 'false', args, { stdio: 'ignore' });
}

async function stopAll(procs: ChildProcess[]): Promise<void> {
  await Promise.all(
    procs.map(async (p) => {
      if (p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((r) => p.once('exit', r));
      try {
        p.kill('SIGCONT');
        p.kill('SIGKILL');
      } catch {
        // gone
      }
      await gone;
    }),
  );
}

/** Redis Sentinel: a master, a replica, three sentinels (quorum 2) with the given timings. */
function sentinel(downAfterMs: number, failoverTimeoutMs: number): RedisSystem {
  return {
    system: `redis-sentinel (down-after ${downAfterMs}, failover-timeout ${failoverTimeoutMs})`,
    maxWaitMs: downAfterMs + failoverTimeoutMs + 10_000,
    async start(work) {
      const procs: ChildProcess[] = [];
      try {
        const [mPort, rPort] = [await allocatePort(), await allocatePort()];
        const servers = new Map<number, ChildProcess>();
        for (const [port, extra] of [
          [mPort, []],
          [rPort, ['--replicaof', '127.0.0.1', String(mPort)]],
        ] as const) {
          const dir = join(work, `redis-${port}`);
          mkdirSync(dir);
          const p = child(['redis-server', '--port', String(port), '--dir', dir, ...REDIS_FLAGS, ...extra]);
          procs.push(p);
          servers.set(port, p);
        }
        const sentinelPorts: number[] = [];
        for (let i = 0; i < 3; i++) {
          const port = await allocatePort();
          const conf = join(work, `sentinel-${port}.conf`);
          writeFileSync(
            conf,
            [
              `port ${port}`,
              'bind 127.0.0.1',
              'daemonize no',
              `dir ${work}`,
              `sentinel monitor mymaster 127.0.0.1 ${mPort} 2`,
              `sentinel down-after-milliseconds mymaster ${downAfterMs}`,
              `sentinel failover-timeout mymaster ${failoverTimeoutMs}`,
              'sentinel parallel-syncs mymaster 1',
              '',
            ].join('\n'),
          );
          procs.push(child(['redis-sentinel', conf]));
          sentinelPorts.push(port);
        }
        // Ready: every sentinel sees the replica and the two other sentinels.
        await until(
          async () => {
            for (const port of sentinelPorts) {
              const c = await RespClient.connect('127.0.0.1', port, 300);
              try {
                const r = await c.command(['SENTINEL', 'master', 'mymaster'], 500);
                const kv = Array.isArray(r) ? r.map(String) : [];
                const field = (k: string): string => kv[kv.indexOf(k) + 1] ?? '';
                if (field('num-slaves') !== '1' || field('num-other-sentinels') !== '2') return false;
              } finally {
                c.close();
              }
            }
            return true;
          },
          30_000,
          'the sentinels to see the replica and each other',
        );
        const resolve: Resolve = async () => {
          for (const port of sentinelPorts) {
            const c = await RespClient.connect('127.0.0.1', port, 300).catch(() => undefined);
            if (!c) continue;
            try {
              const r = await c.command(['SENTINEL', 'get-master-addr-by-name', 'mymaster'], 500);
              if (Array.isArray(r) && r.length === 2) return { host: String(r[0]), port: Number(r[1]) };
            } catch {
              // the next sentinel
            } finally {
              c.close();
            }
          }
          throw new Error('no sentinel answered');
        };
        return {
          resolve,
          primaryPid: async () => servers.get((await resolve()).port)?.pid ?? 0,
          close: () => stopAll(procs),
        };
      } catch (err) {
        await stopAll(procs);
        throw err;
      }
    },
  };
}

/** The systems of the Redis rows, in table order. */
export const REDIS_SYSTEMS: readonly RedisSystem[] = [
  // File sync ships the AOF after Redis has answered: the asynchronous mode (docs/recipes.md, Redis).
  understudy('understudy (file sync, cold echo, async)', 'understudy-filesync.yaml', coldSynced),
  understudy('understudy (external, REPLICAOF)', 'understudy.yaml', externalSynced),
  sentinel(30_000, 180_000),
  sentinel(1000, 5000),
];

/** The client (bench/lib/resp-write-loop.ts): unique keys `k<i>`, times from `performance.now()`. */
function writeLoop(resolve: Resolve, acks: Ack[], stop: { now: boolean }): Promise<void> {
  return respWriteLoop({
    resolve,
    key: (i) => `k${i}`,
    clock: () => performance.now(),
    onAck: (a) => acks.push(a),
    stop,
  });
}

/** What one run measured. */
interface RunResult {
  recoveryMs: number;
  lost: number;
  splitBrain: number;
  /**
   * How long before the fault the oldest lost acknowledgement reached the client, ms (absent: nothing
   * lost): the window the system's asynchronous copy was behind by. Negative when every lost write was
   * answered after the fault was sent (the answer already on its way from the dying server).
   */
  lostWindowMs?: number;
}

async function oneRun(
  sys: RedisSystem,
  fault: PeerFault,
  stopMs: number,
  log: (line: string) => void,
): Promise<RunResult> {
  const work = mkdtempSync(join(tmpdir(), 'peers-redis-'));
  let running: RunningSystem | undefined;
  const stop = { now: false };
  let writer: Promise<void> | undefined;
  let pid = 0;
  try {
    const system = await startWithRetries(
      (attempt) => {
        if (attempt > 1) {
          rmSync(work, { recursive: true, force: true });
          mkdirSync(work);
        }
        return sys.start(work);
      },
      { log, what: `peers-redis: ${sys.system}` },
    );
    running = system;
    const acks: Ack[] = [];
    writer = writeLoop(system.resolve, acks, stop);
    await until(() => acks.length >= 300, 20_000, 'the first writes');
    pid = await system.primaryPid();
    const before = acks.at(-1)?.server ?? '';
    const t0 = performance.now();
    process.kill(pid, fault === 'sigkill' ? 'SIGKILL' : 'SIGSTOP');
    const cont =
      fault === 'sigstop'
        ? sleep(stopMs).then(() => {
            try {
              process.kill(pid, 'SIGCONT');
            } catch {
              // fenced (killed) meanwhile
            }
          })
        : Promise.resolve();
    // The first write sent after the fault: one in flight at the fault was served before it.
    const firstAfter = (): Ack | undefined => acks.find((a) => a.sent > t0);
    await until(() => firstAfter() !== undefined, sys.maxWaitMs, 'a write after the fault').catch(
      () => undefined,
    );
    const first = firstAfter();
    // Keep writing a while: after SIGSTOP until the stopped primary has been back for 2 s (writes it
    // takes then, beside a new primary, are split brain).
    await (fault === 'sigstop' ? cont.then(() => sleep(2000)) : sleep(1000));
    stop.now = true;
    await writer;
    // Read back every acknowledged key from whichever primary the system names now.
    const addr = await system.resolve();
    const reader = await RespClient.connect(addr.host, addr.port, 1000);
    const missing: Ack[] = [];
    try {
      for (let i = 0; i < acks.length; i += 500) {
        const batch = acks.slice(i, i + 500);
        const values = await reader.command(['MGET', ...batch.map((a) => a.key)], 5000);
        if (!Array.isArray(values)) throw new Error(`MGET answered ${String(values)}`);
        batch.forEach((a, j) => {
          if (values[j] === null || values[j] === undefined) missing.push(a);
        });
      }
    } finally {
      reader.close();
    }
    const newPrimaryAt = acks.find((a) => a.at > t0 && a.server !== before)?.at;
    const splitBrain =
      newPrimaryAt === undefined ? 0 : acks.filter((a) => a.server === before && a.at > newPrimaryAt).length;
    return {
      recoveryMs: first ? Number((first.at - t0).toFixed(1)) : NaN,
      lost: missing.length,
      splitBrain,
      ...(missing.length
        ? { lostWindowMs: Number(Math.max(...missing.map((a) => t0 - a.at)).toFixed(1)) }
        : {}),
    };
  } finally {
    stop.now = true;
    await writer?.catch(() => undefined);
    try {
      if (pid) process.kill(pid, 'SIGCONT');
    } catch {
      // gone
    }
    await running?.close();
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Runs the Redis rows: per system and fault, `runs` fresh runs. A system that cannot run gives a row
 * with `skipped` saying why; never throws.
 */
export async function runRedisPeers(o: PeerRunOptions): Promise<PeerRow[]> {
  const rows: PeerRow[] = [];
  const systems = REDIS_SYSTEMS.filter((s) => !o.systems || o.systems.some((x) => s.system.includes(x)));
  for (const sys of systems) {
    for (const fault of o.faults) {
      const results: RunResult[] = [];
      let skipped: string | undefined;
      for (let i = 0; i < o.runs; i++) {
        try {
          const r = await oneRun(sys, fault, o.stopMs, o.log);
          o.log(`peers-redis: ${sys.system} ${fault} run ${i + 1}: ${JSON.stringify(r)}`);
          results.push(r);
        } catch (err) {
          skipped = `run ${i + 1} failed: ${(err as Error).message}`;
          o.log(`peers-redis: ${sys.system} ${fault}: ${skipped}`);
          break;
        }
      }
      const times = results.map((r) => r.recoveryMs).filter((t) => Number.isFinite(t));
      const noWrite = results.length - times.length;
      rows.push({
        system: sys.system,
        service: 'redis',
        fault,
        runs: results.length,
        p50Ms: percentile(times, 50),
        p99Ms: percentile(times, 99),
        lostAcked: results.reduce((t, r) => t + r.lost, 0),
        splitBrain: results.reduce((t, r) => t + r.splitBrain, 0),
        ...(skipped || noWrite
          ? {
              skipped: [
                skipped,
                noWrite ? `${noWrite} run(s) without a write within ${sys.maxWaitMs} ms` : '',
              ]
                .filter(Boolean)
                .join('; '),
            }
          : {}),
      });
    }
  }
  return rows;
}
