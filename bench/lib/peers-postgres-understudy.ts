// Understudy's PostgreSQL rows of `npm run bench -- peers` (issue 19): the recipe of examples/postgres
// (echo.mode external: a streaming-replication standby, synchronous once it streams) under the built
// CLI's `understudy up`, measured exactly as the Patroni rows of bench/lib/peers-postgres.ts: the same
// client (one psql session of autocommit `INSERT … RETURNING id, inet_server_port()`, reconnecting at
// once) through the service's address (Understudy's TCP router), the same faults (SIGKILL of the
// primary's postmaster and every backend; SIGSTOP of them for `stopMs`), the same measurements (fault →
// first acknowledged insert; acknowledged ids missing afterwards, read back through the router; split
// brain: inserts the old primary acknowledged after the fault that are gone afterwards). Each run starts
// a fresh system (the start is not measured). Everything runs on 127.0.0.1 with ports Understudy
// allocates and temporary directories, and is stopped in every path.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { ApiClient } from '../../src/api/index.js';
import type { PeerFault, PeerRow, PeerRunOptions } from '../peers.js';
import { percentile } from './failover-load.js';
import { descendants, InsertClient, postgresBin, signalTree, type Ack } from './peers-postgres.js';
import { startWithRetries } from './peers.js';
import { root } from './spec-up.js';

/** The row name of Understudy's PostgreSQL system. */
export const UNDERSTUDY_POSTGRES_SYSTEM = 'understudy (external, synchronous)';

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
    await sleep(100);
  }
}

/** One psql statement on 127.0.0.1:`port`; its unaligned output. Thrown: when psql fails. */
function sql(bin: string, port: number, statement: string): string {
  const r = spawnSync(
    join(bin, 'psql'),
    ['-X', '-q', '-t', '-A', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres'],
    {
      input: statement,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, PGCONNECT_TIMEOUT: '3' },
    },
  );
  if (r.status !== 0) throw new Error(`psql on ${port}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The pids whose environment holds `name=value` (the processes one run started, PostgreSQL included). */
function processesWithEnv(name: string, value: string): number[] {
  const want = `${name}=${value}`;
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(want))
        out.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** A running `understudy up` of the PostgreSQL recipe. */
interface RecipeUp {
  api: ApiClient;
  /** The router's port: the service's address clients use. */
  routerPort: number;
  stop(): Promise<void>;
}

/** A running instance as the API shows it. */
interface InstanceView {
  id: string;
  role: string;
  phase: string;
  pid?: number;
  ports: Record<string, number>;
}

async function instances(api: ApiClient): Promise<InstanceView[]> {
  const svc = (await api.services()).find((s) => s.name === 'pg');
  return (svc?.instances ?? []) as InstanceView[];
}

/**
 * Starts `understudy up` on a copy of examples/postgres; resolves once the standby is synchronous and
 * the router takes writes, with the table `ids` created. Thrown (after stopping everything) otherwise.
 */
async function startRecipe(bin: string): Promise<RecipeUp> {
  const work = mkdtempSync(join(tmpdir(), 'peers-pg-up-'));
  const tag = randomUUID();
  const dir = join(work, 'recipe');
  cpSync(join(root, 'examples/postgres'), dir, { recursive: true });
  const doc = parse(readFileSync(join(dir, 'understudy.yaml'), 'utf8')) as {
    services: { env?: Record<string, string> }[];
  };
  const svc = doc.services[0];
  if (!svc) throw new Error('examples/postgres/understudy.yaml has no service');
  svc.env = { ...svc.env, PG_BIN: bin, UNDERSTUDY_PEERS_TAG: tag };
  const spec = join(dir, 'understudy.yaml');
  writeFileSync(spec, stringify(doc));
  const dataDir = join(work, 'data');
  const up: ChildProcess = spawn(
    process.execPath,
    [join(root, 'bin/understudy.js'), 'up', spec, '-d', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  const keep = (c: Buffer): void => {
    out = (out + c.toString()).slice(-2000);
  };
  up.stdout?.on('data', keep);
  up.stderr?.on('data', keep);
  const exited = new Promise((r) => up.once('exit', r));
  const stop = async (): Promise<void> => {
    if (up.exitCode === null && up.signalCode === null) up.kill('SIGINT');
    await Promise.race([exited, sleep(60_000)]);
    if (up.exitCode === null && up.signalCode === null) up.kill('SIGKILL');
    // Whatever outlived it (a stopped or orphaned PostgreSQL process of this run).
    const left = processesWithEnv('UNDERSTUDY_PEERS_TAG', tag);
    signalTree(left, 'SIGKILL');
    signalTree(left, 'SIGCONT');
    await sleep(200);
    rmSync(work, { recursive: true, force: true });
  };
  try {
    await until(() => existsSync(join(dataDir, 'api.json')) || up.exitCode !== null, 60_000, 'understudy up');
    if (up.exitCode !== null) throw new Error(`understudy up exited ${up.exitCode}`);
    const api = ApiClient.fromDataDir(dataDir);
    await until(
      async () => (await instances(api)).filter((i) => i.phase === 'running').length === 2,
      120_000,
      'the primary and its standby running',
    );
    const svcView = (await api.services()).find((s) => s.name === 'pg');
    const routerPort = Number(svcView?.dataPlane?.address.split(':').at(-1));
    await until(() => sql(bin, routerPort, 'SELECT 1') === '1', 60_000, 'the router routing');
    sql(bin, routerPort, 'CREATE TABLE IF NOT EXISTS ids (id bigint PRIMARY KEY)');
    await until(
      async () => {
        const primary = (await instances(api)).find((i) => i.role === 'primary');
        return (
          sql(
            bin,
            primary?.ports['pg'] ?? 0,
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
          ) === '1'
        );
      },
      60_000,
      'the standby synchronous',
    );
    return { api, routerPort, stop };
  } catch (err) {
    // What went wrong, in the control plane's words: its failed decisions.
    const failed = await ApiClient.fromDataDir(dataDir)
      .events({ limit: 500 })
      .then((ds) =>
        ds
          .filter((d) => d.outcome.status === 'failed')
          .map((d) => `${d.kind} ${d.instance ?? ''}: ${d.outcome.detail ?? ''}`)
          .slice(-3)
          .join(' | '),
      )
      .catch(() => out.trim().split('\n').slice(-2).join(' | ').slice(-600));
    await stop();
    throw new Error(`${(err as Error).message}${failed ? `: ${failed}` : ''}`);
  }
}

/** What one run measured. */
interface RunResult {
  recoveryMs: number;
  lost: number;
  splitBrain: number;
}

/** One run on a fresh system: load, the fault on the primary, first insert after it, read back. */
async function oneRun(
  bin: string,
  fault: PeerFault,
  stopMs: number,
  log: (line: string) => void,
): Promise<RunResult> {
  const up = await startWithRetries(() => startRecipe(bin), {
    log,
    what: `peers-postgres: ${UNDERSTUDY_POSTGRES_SYSTEM}`,
  });
  let client: InsertClient | undefined;
  let pids: number[] = [];
  try {
    const old = (await instances(up.api)).find((i) => i.role === 'primary' && i.phase === 'running');
    if (!old?.pid) throw new Error('no running primary');
    const oldPort = old.ports['pg'] ?? 0;
    client = new InsertClient(bin, up.routerPort);
    const c = client;
    await until(() => c.acks.length >= 50, 60_000, 'acknowledged inserts before the fault');
    // The postmaster (the instance's process: run.sh exec'd it) and every backend, at once. The list is
    // taken now: once the postmaster is killed (the fence), its children are no longer its descendants,
    // and a stopped one would otherwise never be resumed.
    pids = [old.pid, ...descendants(old.pid)];
    const faultAt = Date.now();
    signalTree(pids, fault === 'sigkill' ? 'SIGKILL' : 'SIGSTOP');
    let resumedAt = Infinity;
    const resumed =
      fault === 'sigstop'
        ? sleep(stopMs).then(() => {
            signalTree(pids, 'SIGCONT');
            resumedAt = Date.now();
          })
        : Promise.resolve();
    // An answer the old primary sent before the fault may be read just after it: only an insert
    // acknowledged by another server, or by the old one once resumed, counts as the first write.
    const recovered = (a: Ack): boolean => a.at > faultAt && (a.port !== oldPort || a.at > resumedAt);
    await until(() => c.acks.some(recovered), 180_000, 'an insert acknowledged after the fault');
    const first = c.acks.find(recovered) as Ack;
    if (first.at - faultAt > 2000) {
      // A slow run says where its time went: the control plane's decisions from the fault on.
      const events = await up.api.events({ service: 'pg' }).catch(() => []);
      for (const d of events.filter((e) => e.at >= faultAt - 100))
        log(
          `peers-postgres: slow run (${first.at - faultAt} ms): +${d.at - faultAt} ms ${d.kind} ${d.what} → ${d.outcome.status}${
            d.outcome.detail ? ` (${d.outcome.detail.slice(0, 160)})` : ''
          } ${JSON.stringify(d.inputs).slice(0, 600)}`,
        );
    }
    // Keep writing across the resumption of a stopped primary: that is where a split brain would show.
    await (fault === 'sigstop' ? resumed.then(() => sleep(5000)) : sleep(1000));
    await client.stop();
    let present = new Set<number>();
    await until(
      () => {
        present = new Set(
          sql(bin, up.routerPort, 'SELECT id FROM ids').split('\n').filter(Boolean).map(Number),
        );
        return true;
      },
      120_000,
      'reading the ids back through the router',
    );
    return {
      recoveryMs: first.at - faultAt,
      lost: c.acks.filter((a) => !present.has(a.id)).length,
      splitBrain: c.acks.filter((a) => a.at > faultAt && a.port === oldPort && !present.has(a.id)).length,
    };
  } finally {
    await client?.stop();
    if (pids.length) signalTree(pids, 'SIGCONT');
    await up.stop();
  }
}

/**
 * Understudy's PostgreSQL rows: per fault, `runs` fresh runs of examples/postgres. A row that cannot be
 * measured (PostgreSQL missing, a run that failed) says why in `skipped`; never throws.
 */
export async function runUnderstudyPostgresPeers(o: PeerRunOptions): Promise<PeerRow[]> {
  if (o.systems && !o.systems.some((x) => UNDERSTUDY_POSTGRES_SYSTEM.includes(x))) return [];
  const bin = postgresBin();
  const rows: PeerRow[] = [];
  for (const fault of o.faults) {
    const results: RunResult[] = [];
    let skipped: string | undefined = bin ? undefined : 'not installed: postgresql';
    for (let i = 0; bin && i < o.runs; i++) {
      try {
        const r = await oneRun(bin, fault, o.stopMs, o.log);
        o.log(`peers-postgres: ${UNDERSTUDY_POSTGRES_SYSTEM} ${fault} run ${i + 1}: ${JSON.stringify(r)}`);
        results.push(r);
      } catch (err) {
        skipped = `run ${i + 1} failed: ${(err as Error).message}`;
        o.log(`peers-postgres: ${UNDERSTUDY_POSTGRES_SYSTEM} ${fault}: ${skipped}`);
        break;
      }
    }
    const times = results.map((r) => r.recoveryMs);
    rows.push({
      system: UNDERSTUDY_POSTGRES_SYSTEM,
      service: 'postgres',
      fault,
      runs: results.length,
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
      lostAcked: results.reduce((t, r) => t + r.lost, 0),
      splitBrain: results.reduce((t, r) => t + r.splitBrain, 0),
      ...(skipped ? { skipped } : {}),
    });
  }
  return rows;
}
