// The peer reference of the write-through bench: what PostgreSQL users pay for one standby, asynchronous
// (streaming, the primary does not wait) and synchronous.
// The same kind of workload as the kv bench (32 closed-loop clients, each transaction an upsert of one
// small row with a fresh key) is driven with pgbench against a primary without a standby, then with one
// asynchronous standby (made with pg_basebackup), then with that standby synchronous
// (`synchronous_commit = remote_apply`), both clusters on
// loopback in temporary directories. PostgreSQL refuses to run as root: as root, every PostgreSQL
// command runs as the `postgres` user through `runuser -u postgres --` (the directories are chowned to it).
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
  appendFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './peers-partition.js';

/** What the peer measurement found. */
export interface PostgresPeerResult {
  /** Transactions per second without a standby. */
  tpsAlone?: number;
  /** Transactions per second with one asynchronous standby (streaming; the primary does not wait for it). */
  tpsAsyncStandby?: number;
  /** tpsAsyncStandby / tpsAlone: the anchor of the bench's async ratio. */
  postgresAsyncRatio?: number;
  /** Transactions per second with one synchronous standby (remote_apply). */
  tpsSyncStandby?: number;
  /** tpsSyncStandby / tpsAlone. */
  postgresSyncRatio?: number;
  /** Why it was not measured (PostgreSQL missing and not installable, no `postgres` user as root). */
  skipped?: string;
}

/** Options of {@link measurePostgresPeer}. */
export interface PostgresPeerOptions {
  /** Seconds each pgbench run lasts. */
  seconds: number;
  /** Concurrent clients. @default 32 */
  clients?: number;
}

function findBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(base, v, 'bin');
    if (
      ['postgres', 'pg_ctl', 'initdb', 'pg_basebackup', 'pgbench', 'psql'].every((c) =>
        existsSync(join(bin, c)),
      )
    )
      return bin;
  }
  return undefined;
}

/** Installs Debian's PostgreSQL (server, contrib, client) when it is missing, as scripts/setup.sh does. */
function ensurePostgres(): string | undefined {
  const found = findBin();
  if (found) return found;
  process.stdout.write('postgres peer: installing Debian packages postgresql postgresql-contrib\n');
  const sudo = process.getuid?.() === 0 ? [] : ['sudo'];
  const run = (args: string[]): void => {
    const [cmd, ...rest] = [...sudo, ...args];
    execFileSync(cmd ?? 'apt-get', rest, {
      stdio: 'ignore',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  };
  try {
    run(['apt-get', 'update', '-qq']);
    run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', 'postgresql', 'postgresql-contrib']);
  } catch {
    return undefined;
  }
  return findBin();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * Measures {@link PostgresPeerResult}: pgbench tps of the upsert workload without a standby, with one
 * asynchronous standby, then with it synchronous. Stops both clusters and removes their directories in every path.
 */
export async function measurePostgresPeer(options: PostgresPeerOptions): Promise<PostgresPeerResult> {
  const clients = options.clients ?? 32;
  const bin = ensurePostgres();
  if (!bin) return { skipped: 'PostgreSQL is not installed and could not be installed with apt-get' };
  const asRoot = process.getuid?.() === 0;
  let pgUid = 0;
  let pgGid = 0;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0)
      return { skipped: "running as root and there is no 'postgres' user to run PostgreSQL as" };
    pgUid = Number(id.stdout.trim());
    pgGid = Number(gid.stdout.trim());
  }
  // Runs a PostgreSQL program (as the postgres user when we are root).
  const pg = (program: string, args: string[], opts: { timeoutMs?: number } = {}): string => {
    const [cmd, ...rest] = asRoot
      ? ['runuser', '-u', 'postgres', '--', join(bin, program), ...args]
      : [join(bin, program), ...args];
    const r = spawnSync(cmd ?? program, rest, { encoding: 'utf8', timeout: opts.timeoutMs ?? 120_000 });
    if (r.status !== 0)
      throw new Error(
        `${program} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr || r.stdout}`,
      );
    return r.stdout;
  };
  const work = mkdtempSync(join(tmpdir(), 'understudy-pg-peer-'));
  if (asRoot) chownSync(work, pgUid, pgGid);
  const primary = join(work, 'primary');
  const standby = join(work, 'standby');
  const started: string[] = [];
  const [p1, p2] = [await freePort(), await freePort()];
  const common = (port: number): string =>
    [
      `listen_addresses = '127.0.0.1'`,
      `port = ${port}`,
      `unix_socket_directories = '${work}'`,
      `max_connections = ${clients + 20}`,
      `shared_buffers = '128MB'`,
      `wal_level = replica`,
      `max_wal_senders = 4`,
      `fsync = on`,
      `synchronous_commit = on`,
      '',
    ].join('\n');
  const tps = (port: number, script: string): number => {
    const out = pg(
      'pgbench',
      [
        '-n',
        '-c',
        String(clients),
        '-j',
        '4',
        '-T',
        String(options.seconds),
        '-f',
        script,
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'bench',
        'bench',
      ],
      { timeoutMs: (options.seconds + 60) * 1000 },
    );
    const m = /tps = ([\d.]+) \(without initial connection time\)/.exec(out) ?? /tps = ([\d.]+)/.exec(out);
    if (!m?.[1]) throw new Error(`pgbench printed no tps: ${out}`);
    return Number(m[1]);
  };
  const sql = (port: number, statement: string): string =>
    pg('psql', [
      '-X',
      '-q',
      '-t',
      '-A',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-U',
      'bench',
      '-d',
      'bench',
      '-c',
      statement,
    ]);
  try {
    pg('initdb', ['-D', primary, '-U', 'bench', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    appendFileSync(primary + '/postgresql.conf', common(p1));
    appendFileSync(primary + '/pg_hba.conf', 'host replication bench 127.0.0.1/32 trust\n');
    pg('pg_ctl', ['-D', primary, '-l', join(work, 'primary.log'), '-w', 'start']);
    started.push(primary);
    pg('createdb', ['-h', '127.0.0.1', '-p', String(p1), '-U', 'bench', 'bench']);
    sql(p1, 'CREATE TABLE kv (k text PRIMARY KEY, v text NOT NULL)');
    const script = join(work, 'upsert.sql');
    // A fresh key per transaction (mostly inserts), as the kv bench writes unique keys.
    writeFileSync(
      script,
      "\\set k random(1, 1000000000)\nINSERT INTO kv (k, v) VALUES (:client_id || '-' || :k, 'v' || :k) ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v;\n",
    );
    if (asRoot) chownSync(script, pgUid, pgGid);
    const tpsAlone = tps(p1, script);

    pg('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(p1),
      '-U',
      'bench',
      '-D',
      standby,
      '-X',
      'stream',
      '-R',
      '--no-sync',
      // An immediate checkpoint: the default spread one, right after the write load, can take minutes.
      '--checkpoint=fast',
    ]);
    appendFileSync(join(standby, 'postgresql.conf'), `${common(p2)}hot_standby = on\n`);
    // After the primary_conninfo that -R wrote (the last setting wins): named, so it can be synchronous.
    appendFileSync(
      join(standby, 'postgresql.auto.conf'),
      `primary_conninfo = 'host=127.0.0.1 port=${p1} user=bench application_name=standby1'\n`,
    );
    pg('pg_ctl', ['-D', standby, '-l', join(work, 'standby.log'), '-w', 'start']);
    started.push(standby);
    await until(
      () => sql(p1, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").trim() === '1',
      30_000,
      () => 'the standby to stream from the primary',
    );
    const tpsAsyncStandby = tps(p1, script);
    sql(p1, "ALTER SYSTEM SET synchronous_standby_names = 'standby1'");
    sql(p1, "ALTER SYSTEM SET synchronous_commit = 'remote_apply'");
    sql(p1, 'SELECT pg_reload_conf()');
    await until(
      () => sql(p1, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").trim() === '1',
      30_000,
      () => 'the standby to become synchronous',
    );
    const tpsSyncStandby = tps(p1, script);
    return {
      tpsAlone: Math.round(tpsAlone),
      tpsAsyncStandby: Math.round(tpsAsyncStandby),
      postgresAsyncRatio: Math.round((tpsAsyncStandby / tpsAlone) * 100) / 100,
      tpsSyncStandby: Math.round(tpsSyncStandby),
      postgresSyncRatio: Math.round((tpsSyncStandby / tpsAlone) * 100) / 100,
    };
  } finally {
    for (const dir of started.reverse()) {
      try {
        pg('pg_ctl', ['-D', dir, '-m', 'immediate', '-w', 'stop'], { timeoutMs: 30_000 });
      } catch {
        // already stopped
      }
    }
    rmSync(work, { recursive: true, force: true });
  }
}
