// `npm run bench -- peers [--quick] [--runs N] [--services redis,postgres] [--systems text,…]
// [--faults sigkill,sigstop,partition]`: real services head to head on the same machine, the same client and the
// same faults (issue 19) — Redis under Understudy against Redis Sentinel (bench/lib/peers-redis.ts),
// PostgreSQL under Understudy (examples/postgres: external, synchronous; bench/lib/peers-postgres-understudy.ts)
// against Patroni with HAProxy (bench/lib/peers-postgres.ts); the host partition on network namespaces
// (bench/lib/peers-partition.ts: Redis; -postgres.ts, -patroni.ts: PostgreSQL; without namespaces its
// rows say why they are skipped). Per system and fault over
// N runs (10 by default, 2 with --quick): fault → first successful write (p50/p99), acknowledged writes
// lost (read back after), split brain (writes acknowledged by the old primary after a new one took
// writes). A readable table, then the JSON last line
// {"bench":"peers","results":[{"system","service","fault","runs","p50Ms","p99Ms","lostAcked","splitBrain"}]}
// (partition rows add "isolatedLost").
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A fault of the peers bench: SIGKILL of the primary, SIGSTOP of it for `stopMs`, or its host cut off
 * the network for `stopMs` (`partition`: real hosts on network namespaces).
 */
export type PeerFault = 'sigkill' | 'sigstop' | 'partition';

/** Every fault, in the order of a full run. */
export const PEER_FAULTS: readonly PeerFault[] = ['sigkill', 'sigstop', 'partition'];

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
  /**
   * Partition rows: of `lostAcked`, the writes the isolated old primary acknowledged after the cut that
   * are gone after the heal (with asynchronous replication, those before its fence, with no second primary).
   */
  isolatedLost?: number;
  /** Why the row is empty or incomplete (a tool missing, a run that failed, a run without a write). */
  skipped?: string;
}

/** What every runner gets. */
export interface PeerRunOptions {
  /** Runs per system and fault. */
  runs: number;
  /** How long SIGSTOP holds the primary (and a partition cuts its host off), ms. */
  stopMs: number;
  faults: readonly PeerFault[];
  /** Only the systems whose name contains one of these (undefined: all). */
  systems?: readonly string[] | undefined;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

/** A runner of the bench: a module in bench/lib, the function it exports, the faults it makes. */
export interface PeerRunner {
  service: string;
  module: string;
  run: string;
  faults: readonly PeerFault[];
}

const PROCESS_FAULTS: readonly PeerFault[] = ['sigkill', 'sigstop'];

/**
 * The runners of the bench, in table order (a service may have several: Understudy's rows, then the
 * peer's): each is a module in bench/lib exporting a function that returns its rows and never throws;
 * it is given only the asked faults it makes. A runner whose module is absent gives skipped rows, and
 * an asked fault no runner of a service makes gives one skipped row (never a made-up one).
 */
export const PEER_RUNNERS: readonly PeerRunner[] = [
  { service: 'redis', module: './lib/peers-redis.ts', run: 'runRedisPeers', faults: PROCESS_FAULTS },
  {
    service: 'redis',
    module: './lib/peers-partition.ts',
    run: 'runRedisPartitionPeers',
    faults: ['partition'],
  },
  {
    service: 'postgres',
    module: './lib/peers-postgres-understudy.ts',
    run: 'runUnderstudyPostgresPeers',
    faults: PROCESS_FAULTS,
  },
  { service: 'postgres', module: './lib/peers-postgres.ts', run: 'runPostgresPeers', faults: PROCESS_FAULTS },
  {
    service: 'postgres',
    module: './lib/peers-partition-postgres.ts',
    run: 'runPostgresPartitionPeers',
    faults: ['partition'],
  },
];

/** The skipped rows of the asked faults that no runner of `service` makes. */
export function unbuiltFaultRows(service: string, faults: readonly PeerFault[]): PeerRow[] {
  const made = new Set(PEER_RUNNERS.filter((r) => r.service === service).flatMap((r) => r.faults));
  return faults
    .filter((f) => !made.has(f))
    .map((fault) => ({
      system: '(all)',
      service,
      fault,
      runs: 0,
      p50Ms: NaN,
      p99Ms: NaN,
      lostAcked: 0,
      splitBrain: 0,
      skipped: `the ${fault} fault of ${service} is not built (docs/recipes.md)`,
    }));
}

const fmt = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(3)} s` : '—');

/** The readable table of the rows. */
export function peerTable(rows: readonly PeerRow[]): string {
  const head = [
    'service',
    'system',
    'fault',
    'runs',
    'p50 first write',
    'p99',
    'lost acked',
    'of which isolated side',
    'split brain',
  ];
  const body = rows.map((r) => [
    r.service,
    r.system,
    r.fault,
    String(r.runs),
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    String(r.lostAcked),
    r.isolatedLost === undefined ? '—' : String(r.isolatedLost),
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
  const faults = (opt('--faults') ?? PEER_FAULTS.join(',')).split(',') as PeerFault[];
  if (faults.some((f) => !PEER_FAULTS.includes(f))) {
    process.stderr.write(`peers bench: --faults takes one or more of ${PEER_FAULTS.join(', ')}\n`);
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
    const its = faults.filter((f) => r.faults.includes(f));
    if (its.length === 0) continue;
    if (!existsSync(join(here, r.module))) {
      rows.push(
        ...its.map((fault) => ({
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
    rows.push(...(await run({ ...o, faults: its })));
  }
  for (const service of new Set(PEER_RUNNERS.map((r) => r.service)))
    if (!services || services.includes(service)) rows.push(...unbuiltFaultRows(service, faults));
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
