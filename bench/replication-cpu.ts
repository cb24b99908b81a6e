// `npm run bench -- replication-cpu [--quick]`: the control process's CPU per replicated write without the
// router, the primary or a load generator in other processes — `ServiceReplication` driven in this
// process by 32 closed-loop writers (a seq, resolved as applied a turn later, then the write-through
// wait), replicating to a real examples/kv echo in batches, with the durable log in a temporary
// directory. Measured with process.cpuUsage(): steadier on a busy machine than the write-through bench's
// throughput, and only replication's share (docs/failover.md, "The router's share"). Rows alternate, so
// a drifting load hits them alike.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ServiceReplication } from '../src/replication/index.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const quick = process.argv.includes('--quick');
const seconds = quick ? 2 : 4;
const tries = quick ? 1 : 3;
const writers = 32;

const ROWS = [
  { name: 'wt-batch', consistency: 'write-through', durable: true },
  { name: 'wt-batch-memory-log', consistency: 'write-through', durable: false },
  { name: 'async-batch', consistency: 'async', durable: true },
] as const;

interface RowResult {
  writesPerSec: number;
  /** CPU µs (user + system) of this process per write. */
  cpuUsPerWrite: number;
  /** Mutations per batch request to the echo. */
  meanBatch: number;
}

async function measure(row: (typeof ROWS)[number]): Promise<RowResult> {
  const work = mkdtempSync(join(tmpdir(), 'understudy-bench-repl-cpu-'));
  const kv = spawn(
    process.execPath,
    [join(root, 'examples/kv/server.mjs'), '--port', '0', '--state', join(work, 'echo')],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let out = '';
      kv.once('exit', () => reject(new Error('the kv echo exited before listening')));
      kv.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on http:\/\/[\d.]+:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
    });
    const repl = await ServiceReplication.open({
      service: 'kv',
      consistency: row.consistency,
      epoch: () => 1,
      rules: {
        methods: ['PUT', 'DELETE'],
        paths: ['/kv'],
        timeoutMs: 5000,
        strict: false,
        order: 'pipelined',
        batch: { path: '/_understudy/batch', max: 64, inflight: 2 },
      },
      ...(row.durable ? { log: { dir: join(work, 'log') } } : {}),
    });
    repl.addEcho({ instanceId: 'echo', host: '127.0.0.1', port }, 0);
    let n = 0;
    let stop = false;
    const writer = async (w: number): Promise<void> => {
      while (!stop) {
        const i = n++;
        const seq = repl.sequence();
        const request = {
          method: 'PUT',
          path: `/kv/w${w}-${i}`,
          headers: { 'content-type': 'text/plain', 'x-request-id': `r${i}` },
          body: Buffer.from(`v${i}`),
          epoch: 1,
        };
        // The primary's answer comes a turn later.
        await new Promise((r) => setImmediate(r));
        repl.resolve(seq, request, 'apply', 'primary');
        await repl.awaitEchoes(seq);
      }
    };
    const running = Array.from({ length: writers }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, 1000));
    const echoBefore = repl.echoes()[0];
    const cpu = process.cpuUsage();
    const n0 = n;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const used = process.cpuUsage(cpu);
    const done = n - n0;
    const elapsed = (performance.now() - t0) / 1000;
    const echoAfter = repl.echoes()[0];
    stop = true;
    await Promise.all(running);
    await repl.close();
    const batches = (echoAfter?.batches ?? 0) - (echoBefore?.batches ?? 0);
    return {
      writesPerSec: Math.round(done / elapsed),
      cpuUsPerWrite: Math.round(((used.user + used.system) / done) * 10) / 10,
      meanBatch:
        batches > 0
          ? Math.round((((echoAfter?.applied ?? 0) - (echoBefore?.applied ?? 0)) / batches) * 10) / 10
          : 0,
    };
  } finally {
    kv.kill();
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  process.stdout.write(
    `replication-cpu bench: ${writers} closed-loop writers in process, a real kv echo, ${seconds} s per try, ${tries} tries per row, rows alternated\n`,
  );
  const results: Record<string, RowResult[]> = {};
  for (let t = 0; t < tries; t++)
    for (const row of ROWS) {
      const r = await measure(row);
      (results[row.name] ??= []).push(r);
      process.stdout.write(
        `  ${row.name.padEnd(20)} ${String(r.writesPerSec).padStart(6)} writes/s  ${r.cpuUsPerWrite} µs CPU per write  mean batch ${r.meanBatch}\n`,
      );
    }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const cpuUsPerWrite = Object.fromEntries(
    Object.entries(results).map(([k, rs]) => [k, median(rs.map((r) => r.cpuUsPerWrite))]),
  );
  process.stdout.write(
    JSON.stringify({ bench: 'replication-cpu', writers, seconds, tries, cpuUsPerWrite, results }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`replication-cpu bench: ${(err as Error).message}\n`);
  process.exit(1);
});
