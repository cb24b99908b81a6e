// `npm run bench -- write-through [--quick]`: the cost of replicating every write to a hot echo, as a
// ratio of write throughput through the router: no echo, hot async and hot write-through in pipelined
// order (many mutations in flight, the kv example orders them by x-understudy-seq), and for comparison
// write-through in serial order (one mutation in flight) and per-key serial order, and async and
// write-through replicating to the echo in batches (echo.mutations.batch; same run, same kv example,
// closed-loop writers). The headline ratios (asyncRatio, writeThroughRatio, writeThroughP99Ratio) are
// the batched rows: examples/kv's default configuration. `--only a,b` measures only those rows.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { percentile } from './lib/failover-load.js';
import { startKvUp } from './lib/kv-up.js';
import { measurePostgresPeer, type PostgresPeerResult } from './lib/postgres-peer.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const quick = process.argv.includes('--quick');
const seconds = quick ? 3 : 8;
/** Unmeasured load before each row's measurement. */
const warmupSeconds = quick ? 1 : 2;
const writers = 32;
// `--only <row>[,<row>…]`: measure only these rows (to profile one; the ratios need `no-echo` too).
const onlyAt = process.argv.indexOf('--only');
/**
 * `--rounds N`: how many times the headline rows (no echo, batched async, batched write-through) are
 * measured, alternating; every ratio is the median of the per-round ratios. @default 3 (1 with --quick)
 */
const roundsAt = process.argv.indexOf('--rounds');
const rounds = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : quick ? 1 : 3;
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
  process.stderr.write(
    `write-through bench: --rounds must be an integer 1-20, got ${process.argv[roundsAt + 1]}\n`,
  );
  process.exit(2);
}
const HEADLINE_ROWS = new Set(['no-echo', 'hot-async-batch', 'hot-wt-batch']);
const only = onlyAt > 0 ? new Set((process.argv[onlyAt + 1] ?? '').split(',')) : undefined;

const MODES = [
  { name: 'no-echo', echo: '{ count: 0 }', running: 1 },
  {
    name: 'hot-async',
    echo: '{ count: 1, mode: hot, consistency: async, mutations: { order: pipelined } }',
    running: 2,
  },
  {
    name: 'hot-write-through',
    echo: '{ count: 1, mode: hot, consistency: write-through, mutations: { order: pipelined } }',
    running: 2,
  },
  {
    name: 'hot-async-batch',
    echo: '{ count: 1, mode: hot, consistency: async, mutations: { order: pipelined, batch: { path: /_understudy/batch, max: 64 } } }',
    running: 2,
  },
  {
    name: 'hot-wt-batch',
    echo: '{ count: 1, mode: hot, consistency: write-through, mutations: { order: pipelined, batch: { path: /_understudy/batch, max: 64 } } }',
    running: 2,
  },
  {
    name: 'hot-wt-serial',
    echo: '{ count: 1, mode: hot, consistency: write-through, mutations: { order: serial } }',
    running: 2,
  },
  {
    name: 'hot-wt-per-key',
    echo: '{ count: 1, mode: hot, consistency: write-through, mutations: { order: serial, partitionBy: { pathSegment: 1 } } }',
    running: 2,
  },
] as const;

/** utime + stime of a process, in clock ticks (0 when it is gone). */
function cpuTicks(pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}
/** Clock ticks per second (USER_HZ: 100 on Linux). */
const HZ = 100;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function measure(mode: (typeof MODES)[number]): Promise<{
  writesPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU µs per acknowledged write over the load window: control process (the router), primary, echo. */
  cpuUsPerWrite: { control: number; primary: number; echo: number };
  /**
   * Over the load window: mutations per batch request to the echo (batched rows) and per write of the
   * durable mutation log (its group commit); null where there is none.
   */
  meanBatch: { echo: number | null; log: number | null };
}> {
  const up = await startKvUp(`wt-${mode.name}`, mode.echo, '{ http: { path: /healthz }, interval: 500ms }');
  const api = up.api;
  const dispatcher = new Agent({ connections: writers });
  try {
    for (let i = 0; i < 400; i++) {
      const svc = (await api.services()).find((s) => s.name === 'kv');
      if (svc && svc.instances.filter((x) => x.phase === 'running').length === mode.running) break;
      await sleep(50);
    }
    const svc = (await api.services()).find((s) => s.name === 'kv');
    const base = `http://${svc?.dataPlane?.address}`;
    const pidOf = (role: string): number =>
      svc?.instances.find((x) => x.role === role && x.phase === 'running')?.pid ?? 0;
    const pids = { control: up.pid, primary: pidOf('primary'), echo: pidOf('echo') };
    /** The replication counters of the API (`dataPlane.replication`): echo batches and log writes. */
    const replicationCounts = async (): Promise<{
      applied: number;
      batches: number;
      lastSeq: number;
      logWrites: number;
    }> => {
      const r = (await api.services()).find((s) => s.name === 'kv')?.dataPlane?.replication as
        | {
            lastSeq?: number;
            log?: { writes?: number };
            echoes?: Array<{ applied?: number; batches?: number }>;
          }
        | undefined;
      const echo = r?.echoes?.[0];
      return {
        applied: echo?.applied ?? 0,
        batches: echo?.batches ?? 0,
        lastSeq: r?.lastSeq ?? 0,
        logWrites: r?.log?.writes ?? 0,
      };
    };
    let n = 0;
    /** `writers` closed-loop writers of unique keys for `forSeconds`; latencies of the 200s, errors. */
    const load = async (forSeconds: number): Promise<{ latencies: number[]; errors: number }> => {
      const latencies: number[] = [];
      let errors = 0;
      const until = performance.now() + forSeconds * 1000;
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          while (performance.now() < until) {
            const i = n++;
            const t0 = performance.now();
            try {
              const res = await request(`${base}/kv/w${w}-${i}`, {
                method: 'PUT',
                body: `v${i}`,
                dispatcher,
                headers: { 'x-request-id': `wt-${w}-${i}` },
              });
              await res.body.dump();
              if (res.statusCode !== 200) errors++;
              else latencies.push(performance.now() - t0);
            } catch {
              errors++;
            }
          }
        }),
      );
      return { latencies, errors };
    };
    // Unmeasured warm-up: the first row used to pay for compiling the load generator, the router and kv
    // (no-echo is the first row, and the denominator of every ratio).
    await load(warmupSeconds);
    const batchesBefore = await replicationCounts();
    const before = {
      control: cpuTicks(pids.control),
      primary: cpuTicks(pids.primary),
      echo: cpuTicks(pids.echo),
    };
    const { latencies, errors } = await load(seconds);
    const batchesAfter = await replicationCounts();
    const perWrite = (who: keyof typeof pids): number =>
      pids[who] && latencies.length
        ? Math.round(((cpuTicks(pids[who]) - before[who]) / HZ / latencies.length) * 1e6)
        : 0;
    const cpuUsPerWrite = {
      control: perWrite('control'),
      primary: perWrite('primary'),
      echo: perWrite('echo'),
    };
    const mean = (n: number, d: number): number | null => (d > 0 ? round(n / d) : null);
    const meanBatch = {
      echo: mean(batchesAfter.applied - batchesBefore.applied, batchesAfter.batches - batchesBefore.batches),
      log: mean(
        batchesAfter.lastSeq - batchesBefore.lastSeq,
        batchesAfter.logWrites - batchesBefore.logWrites,
      ),
    };
    return {
      cpuUsPerWrite,
      meanBatch,
      writesPerSec: Math.round(latencies.length / seconds),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      errors,
    };
  } finally {
    await dispatcher.close();
    await up.stop();
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

async function main(): Promise<void> {
  if (!existsSync(join(root, 'dist/cli/main.js'))) {
    process.stderr.write('write-through bench: run `npm run build` first\n');
    process.exit(1);
  }
  process.stdout.write(
    `write-through bench: ${writers} closed-loop writers, ${seconds} s per mode after ${warmupSeconds} s of warm-up, PUT of unique keys through the router\n`,
  );
  type RowResult = Awaited<ReturnType<typeof measure>>;
  const report = (name: string, r: RowResult, pass: number): void => {
    process.stdout.write(
      `  ${(rounds > 1 && HEADLINE_ROWS.has(name) ? `${name} #${pass + 1}` : name).padEnd(20)} ${String(r.writesPerSec).padStart(6)} writes/s  p50 ${r.p50Ms} ms  p99 ${r.p99Ms} ms  errors ${r.errors}  CPU µs/write: control ${r.cpuUsPerWrite.control}, primary ${r.cpuUsPerWrite.primary}, echo ${r.cpuUsPerWrite.echo}  mean batch: echo ${r.meanBatch.echo ?? '-'}, log ${r.meanBatch.log ?? '-'}\n`,
    );
  };
  // The headline rows are measured `rounds` times, alternating (no echo, async, write-through, then
  // again): a drift of the shared machine's speed hits each round's rows alike, and every ratio is the
  // median of the per-round ratios. The other rows are measured once, after the rounds (their ratios
  // are to the median round's no-echo row).
  const byRound: Array<Record<string, RowResult>> = [];
  for (let pass = 0; pass < rounds; pass++) {
    const these: Record<string, RowResult> = {};
    byRound.push(these);
    for (const mode of MODES) {
      if ((only && !only.has(mode.name)) || !HEADLINE_ROWS.has(mode.name)) continue;
      const r = await measure(mode);
      these[mode.name] = r;
      report(mode.name, r, pass);
    }
  }
  // The other rows once, after the rounds: a round's rows follow one another, so its ratios compare
  // rows measured under the same conditions (the unbatched rows write far more to disk, and between
  // the no-echo and echo rows of a round they would weigh on the echo rows only).
  for (const mode of MODES) {
    if ((only && !only.has(mode.name)) || HEADLINE_ROWS.has(mode.name)) continue;
    const r = await measure(mode);
    (byRound[0] as Record<string, RowResult>)[mode.name] = r;
    report(mode.name, r, 0);
  }
  /** A row's result of the round whose throughput is the median (its own figures stay together). */
  const results: Record<string, RowResult & { roundsWritesPerSec?: number[] }> = {};
  for (const mode of MODES) {
    const rs = byRound.map((r) => r[mode.name]).filter((r): r is RowResult => r !== undefined);
    if (rs.length === 0) continue;
    const mid = [...rs].sort((a, b) => a.writesPerSec - b.writesPerSec)[
      Math.floor(rs.length / 2)
    ] as RowResult;
    results[mode.name] = rs.length > 1 ? { ...mid, roundsWritesPerSec: rs.map((r) => r.writesPerSec) } : mid;
  }
  /** Per round, `row`'s figure over no-echo's of the same round; the median of those. */
  const ratioOf = (row: string, of: (r: RowResult) => number): { median: number; rounds: number[] } => {
    const per = byRound
      .map((r) => {
        const a = r[row];
        const b = r['no-echo'];
        return a && b ? of(a) / of(b) : NaN;
      })
      .filter((x) => !Number.isNaN(x));
    const sorted = [...per].sort((a, b) => a - b);
    return { median: sorted[Math.floor(sorted.length / 2)] ?? NaN, rounds: per.map((x) => round(x)) };
  };
  const asyncR = ratioOf('hot-async-batch', (r) => r.writesPerSec);
  const wtR = ratioOf('hot-wt-batch', (r) => r.writesPerSec);
  const wtP99R = ratioOf('hot-wt-batch', (r) => r.p99Ms);
  const base = results['no-echo']?.writesPerSec ?? NaN;
  const wt = results['hot-write-through']?.writesPerSec ?? NaN;
  const async_ = results['hot-async']?.writesPerSec ?? NaN;
  const perKey = results['hot-wt-per-key']?.writesPerSec ?? NaN;
  const serial = results['hot-wt-serial']?.writesPerSec ?? NaN;
  const p99Ratio = (results['hot-write-through']?.p99Ms ?? NaN) / (results['no-echo']?.p99Ms ?? NaN);
  // The headline is what a user of examples/kv gets by default (its understudy.yaml: pipelined order,
  // batched to the echo): the `-batch` rows. One request per mutation and serial order are extra fields.
  process.stdout.write(
    `write throughput vs no echo, examples/kv's default (pipelined, batched to the echo, max 64): hot async ${asyncR.median.toFixed(2)}x, hot write-through ${wtR.median.toFixed(2)}x (goals 0.9x and 0.7x), write-through p99 ${wtP99R.median.toFixed(2)}x no-echo p99 (goal <= 2x)${rounds > 1 ? `; medians of ${rounds} rounds (async ${asyncR.rounds.join(', ')}; write-through ${wtR.rounds.join(', ')})` : ''}\n`,
  );
  process.stdout.write(
    `  without batch (one request per mutation): hot async ${(async_ / base).toFixed(2)}x, hot write-through ${(wt / base).toFixed(2)}x, write-through p99 ${p99Ratio.toFixed(2)}x; serial order ${(serial / base).toFixed(2)}x (one mutation in flight), per-key serial order ${(perKey / base).toFixed(2)}x\n`,
  );
  const peer: PostgresPeerResult = only
    ? { skipped: '--only given' }
    : await measurePostgresPeer({ seconds, clients: writers }).catch((err: unknown) => ({
        skipped: (err as Error).message,
      }));
  process.stdout.write(
    peer.postgresSyncRatio === undefined
      ? `peer: PostgreSQL with a synchronous standby not measured: ${peer.skipped}\n`
      : `peer: PostgreSQL upserts, ${writers} clients: ${peer.tpsAlone} tps alone, ${peer.tpsAsyncStandby} tps with one asynchronous standby (${peer.postgresAsyncRatio}x), ${peer.tpsSyncStandby} tps with it synchronous (remote_apply): ${peer.postgresSyncRatio}x\n`,
  );
  process.stdout.write(
    JSON.stringify({
      bench: 'write-through',
      writers,
      seconds,
      warmupSeconds,
      results,
      // Headline: examples/kv's default configuration (pipelined, batched).
      headline: 'hot-async-batch / hot-wt-batch (examples/kv default: pipelined, batched)',
      rounds,
      asyncRatio: round(asyncR.median),
      writeThroughRatio: round(wtR.median),
      writeThroughP99Ratio: round(wtP99R.median),
      roundRatios: { async: asyncR.rounds, writeThrough: wtR.rounds, writeThroughP99: wtP99R.rounds },
      // One request per mutation to the echo (pipelined, no batch endpoint declared).
      asyncUnbatchedRatio: round(async_ / base),
      writeThroughUnbatchedRatio: round(wt / base),
      writeThroughUnbatchedP99Ratio: round(p99Ratio),
      writeThroughPerKeyRatio: round(perKey / base),
      writeThroughSerialRatio: round(serial / base),
      asyncBatchRatio: round(asyncR.median),
      writeThroughBatchRatio: round(wtR.median),
      writeThroughBatchP99Ratio: round(wtP99R.median),
      order: 'pipelined',
      postgresSyncRatio: peer.postgresSyncRatio ?? null,
      postgresAsyncRatio: peer.postgresAsyncRatio ?? null,
      postgres: peer,
    }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`write-through bench: ${(err as Error).message}\n`);
  process.exit(1);
});
