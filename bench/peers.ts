// `npm run bench -- peers [--quick] [--runs N] [--services redis,postgres] [--systems text,…]
// [--faults sigkill,sigstop]`: real services head to head on the same machine, the same client and the
// same faults (issue 19) — Redis under Understudy against Redis Sentinel (bench/lib/peers-redis.ts),
// PostgreSQL under Understudy (examples/postgres: external, synchronous; bench/lib/peers-postgres-understudy.ts)
// against Patroni with HAProxy (bench/lib/peers-postgres.ts). Per system and fault over
// N runs (10 by default, 2 with --quick): fault → first successful write (p50/p99), acknowledged writes
// lost (read back after), split brain (writes acknowledged by the old primary after a new one took
// writes). A readable table, then the JSON last line
// {"bench":"peers","results":[{"system","service","fault","runs","p50Ms","p99Ms","lostAcked","splitBrain"}]}.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A fault of the peers bench: SIGKILL of the primary, or SIGSTOP of it for `stopMs`. */
export type PeerFault = 'sigkill' | 'sigstop';

/** One row of the peers bench: one system, service and fault over `runs` runs. */
export interface PeerRow {
  system: string;
  service: string;
  fault: PeerFault;
  runs: number;
  /** Fault → first acknowledged write, median over the runs that had one (ms; NaN: none). */
  p50Ms: number;
  /** The same, 99th percentile (nearest rank: the worst run below 100 runs). */
  p99Ms: number;
  /** Acknowledged writes missing when read back after the run, summed over the runs. */
  lostAcked: number;
  /** Writes the old primary acknowledged after a new primary had acknowledged one, summed. */
  splitBrain: number;
  /** Why the row is empty or incomplete (a tool missing, a run that failed, a run without a write). */
  skipped?: string;
}

/** What every runner gets. */
export interface PeerRunOptions {
  /** Runs per system and fault. */
  runs: number;
  /** How long SIGSTOP holds the primary, ms. */
  stopMs: number;
  faults: readonly PeerFault[];
  /** Only the systems whose name contains one of these (undefined: all). */
  systems?: readonly string[] | undefined;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

/**
 * The runners of the bench, in table order (a service may have several: Understudy's rows, then the
 * peer's): each is a module in bench/lib exporting a function that returns its rows and never throws. A
 * runner whose module is absent gives one skipped row.
 */
export const PEER_RUNNERS: readonly { service: string; module: string; run: string }[] = [
  { service: 'redis', module: './lib/peers-redis.ts', run: 'runRedisPeers' },
  { service: 'postgres', module: './lib/peers-postgres-understudy.ts', run: 'runUnderstudyPostgresPeers' },
  { service: 'postgres', module: './lib/peers-postgres.ts', run: 'runPostgresPeers' },
];

const fmt = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(3)} s` : '—');

/** The readable table of the rows. */
export function peerTable(rows: readonly PeerRow[]): string {
  const head = ['service', 'system', 'fault', 'runs', 'p50 first write', 'p99', 'lost acked', 'split brain'];
  const body = rows.map((r) => [
    r.service,
    r.system,
    r.fault,
    String(r.runs),
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    String(r.lostAcked),
    String(r.splitBrain),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  const notes = rows
    .filter((r) => r.skipped)
    .map((r) => `  ${r.service} / ${r.system} / ${r.fault}: ${r.skipped}`);
  return [line(head), ...body.map(line), ...(notes.length ? ['notes:', ...notes] : [])].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const quick = args.includes('--quick');
  const runs = opt('--runs') !== undefined ? Number(opt('--runs')) : quick ? 2 : 10;
  if (!Number.isInteger(runs) || runs < 1) {
    process.stderr.write('peers bench: --runs takes a positive whole number\n');
    process.exit(2);
  }
  const faults = (opt('--faults') ?? 'sigkill,sigstop').split(',') as PeerFault[];
  if (faults.some((f) => f !== 'sigkill' && f !== 'sigstop')) {
    process.stderr.write('peers bench: --faults takes sigkill and/or sigstop\n');
    process.exit(2);
  }
  const services = opt('--services')?.split(',');
  const systems = opt('--systems')?.split(',');
  const here = fileURLToPath(new URL('.', import.meta.url));
  if (!existsSync(join(here, '../dist/cli/main.js'))) {
    process.stderr.write('peers bench: run `npm run build` first (the bench runs the built CLI)\n');
    process.exit(2);
  }
  const o: PeerRunOptions = {
    runs,
    stopMs: 20_000,
    faults,
    systems,
    log: (line) => process.stderr.write(line + '\n'),
  };
  const rows: PeerRow[] = [];
  for (const r of PEER_RUNNERS) {
    if (services && !services.includes(r.service)) continue;
    if (!existsSync(join(here, r.module))) {
      rows.push(
        ...faults.map((fault) => ({
          system: '(all)',
          service: r.service,
          fault,
          runs: 0,
          p50Ms: NaN,
          p99Ms: NaN,
          lostAcked: 0,
          splitBrain: 0,
          skipped: `${r.module} is not in this tree`,
        })),
      );
      continue;
    }
    const mod = (await import(r.module)) as Record<string, (o: PeerRunOptions) => Promise<PeerRow[]>>;
    const run = mod[r.run];
    if (typeof run !== 'function') throw new Error(`${r.module} exports no ${r.run}`);
    rows.push(...(await run(o)));
  }
  process.stdout.write(peerTable(rows) + '\n');
  // NaN is not JSON: an empty measurement is null.
  const json = rows.map((r) => ({
    ...r,
    p50Ms: Number.isFinite(r.p50Ms) ? r.p50Ms : null,
    p99Ms: Number.isFinite(r.p99Ms) ? r.p99Ms : null,
  }));
  process.stdout.write(JSON.stringify({ bench: 'peers', quick, runs, results: json }) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
