// The measurement behind the refusal of file-synced PostgreSQL data directories (issue 19, item 3):
// PostgreSQL under `understudy up` with a warm or a cold file-synced echo, a steady stream of unique
// inserts (each acknowledged by its own commit) beside pgbench, SIGKILL of the primary's whole process
// group (node death), promotion by Understudy, then the verdict on the promoted copy: does PostgreSQL
// start, does `pg_amcheck` pass, are the acknowledged rows there.
//
// The instance command is a small shell wrapper written into the run's directory (not a recipe): it
// runs initdb on the first start, drops root to the `postgres` user (PostgreSQL refuses root), and — as
// a warm echo — waits for the promotion signal (SIGHUP) before starting PostgreSQL on the synced copy.
// Being a wrapper, it also passes the spec check that refuses `postgres`/`pg_ctl` commands, which is
// what lets this measurement still run.
import { randomUUID } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient } from '../../../src/api/index.js';
import type { ServiceView } from '../../../src/control/index.js';
import { processesWithEnv, startUp, waitFor, type UpProcess } from './cli.js';

/** The PostgreSQL binaries (Debian: /usr/lib/postgresql/<v>/bin), newest version first. */
export function postgresBin(): string | undefined {
  for (const v of ['17', '16', '15', '14', '13']) {
    const bin = `/usr/lib/postgresql/${v}/bin`;
    if (['postgres', 'initdb', 'pg_amcheck', 'pgbench', 'psql'].every((c) => existsSync(join(bin, c))))
      return bin;
  }
  return undefined;
}

/**
 * Node death of a PostgreSQL server: its postmaster and every child at once. The children are not in
 * the postmaster's process group (each calls setsid), so killing the group alone would leave them
 * running briefly; they are stopped first (SIGSTOP), then all are killed.
 */
export function killPostgresTree(postmaster: number): void {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === postmaster) children.push(Number(entry));
    } catch {
      // gone
    }
  }
  const all = [postmaster, ...children];
  for (const sig of ['SIGSTOP', 'SIGKILL'] as const)
    for (const pid of all) {
      try {
        process.kill(pid, sig);
      } catch {
        // gone
      }
    }
}

/** What one run found. */
export interface FileSyncRun {
  mode: 'warm' | 'cold';
  /** Inserts acknowledged (committed and answered) before the kill. */
  acked: number;
  /** Whether PostgreSQL accepted connections on the promoted copy within the wait. */
  started: boolean;
  /** pg_amcheck's exit status on the promoted copy (0: no corruption found); undefined: not reached. */
  amcheckStatus?: number;
  /** pg_amcheck's report when it found something. */
  amcheckReport?: string;
  /** Acknowledged ids missing on the promoted copy. */
  lostAcked?: number;
  /** Why the row count failed (e.g. the table itself was lost). */
  countError?: string;
  /** The promoted instance's log tail when it did not start. */
  logTail?: string;
}

const WRAPPER = `#!/bin/sh
# role mode stateDir port bin workDir
set -e
role=$1; mode=$2; state=$3; port=$4; bin=$5; work=$6
pgdata="$state/pgdata"
d="$state"
while [ "$d" != "$work" ] && [ "$d" != "/" ]; do chmod o+x "$d"; d=$(dirname "$d"); done
chmod o+x "$work"
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
if [ "$mode" = warm ] && [ "$role" = echo ]; then
  promoted=0
  trap 'promoted=1' HUP
  while [ $promoted = 0 ]; do sleep 0.05 & wait $! || true; done
fi
if [ ! -f "$pgdata/PG_VERSION" ]; then
  mkdir -p "$pgdata"; chown postgres:postgres "$pgdata"
  as_pg "$bin/initdb" -D "$pgdata" -U test --auth=trust -E UTF8 >/dev/null
fi
chown -R postgres:postgres "$pgdata"; chmod 700 "$pgdata"
exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$bin/postgres" -D "$pgdata" \\
  -c listen_addresses=127.0.0.1 -c port="$port" -c unix_socket_directories= \\
  -c fsync=on -c synchronous_commit=on -c full_page_writes=on \\
  -c checkpoint_timeout=30s -c max_wal_size=32MB -c min_wal_size=32MB -c max_connections=30
`;

/** Runs one statement with `psql` (unaligned, tuples only) as `user` on 127.0.0.1:`port`. */
function runPsql(bin: string, port: number, sql: string, user: string, timeoutMs: number) {
  const args = [
    '-X',
    '-q',
    '-t',
    '-A',
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    '-U',
    user,
    '-d',
    'postgres',
    '-c',
    sql,
  ];
  return spawnSync(join(bin, 'psql'), args, { encoding: 'utf8', timeout: timeoutMs });
}

function psql(bin: string, port: number, sql: string, timeoutMs = 20_000): { ok: boolean; out: string } {
  const r = runPsql(bin, port, sql, 'test', timeoutMs);
  return { ok: r.status === 0, out: (r.stdout + r.stderr).trim() };
}

/** One statement as the `postgres` superuser; its output trimmed, or an error naming the port and psql's stderr. */
export function psqlQuery(bin: string, port: number, statement: string): string {
  const r = runPsql(bin, port, statement, 'postgres', 20_000);
  if (r.status !== 0) throw new Error(`psql on ${port}: ${r.stderr}`);
  return r.stdout.trim();
}

async function service(api: ApiClient): Promise<ServiceView> {
  const svc = (await api.services()).find((s) => s.name === 'pg');
  if (!svc) throw new Error('no pg service');
  return svc;
}

/**
 * Streams `INSERT INTO acked VALUES (n)` for n = 1, 2, … through one psql session (autocommit: each
 * answered `INSERT 0 1` is a committed, acknowledged row) until the connection dies or `stop` is called.
 */
export function insertStream(
  bin: string,
  port: number,
  user = 'test',
): { acked: () => number; stop: () => Promise<void> } {
  const child = spawn(
    join(bin, 'psql'),
    ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(port), '-U', user, '-d', 'postgres'],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  let acked = 0;
  let sent = 0;
  let carry = '';
  const feed = (): void => {
    if (!child.stdin.writable) return;
    let chunk = '';
    while (sent - acked < 64) chunk += `INSERT INTO acked VALUES (${++sent});\n`;
    if (chunk) child.stdin.write(chunk);
  };
  child.stdin.on('error', () => undefined);
  child.stdout.on('data', (c: Buffer) => {
    const lines = (carry + c.toString()).split('\n');
    carry = lines.pop() ?? '';
    acked += lines.filter((l) => l === 'INSERT 0 1').length;
    feed();
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  feed();
  return {
    acked: () => acked,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Options of {@link measureFileSyncRun}. */
export interface FileSyncRunOptions {
  work: string;
  bin: string;
  mode: 'warm' | 'cold';
  /** Milliseconds of load before the kill. @default 8000 */
  loadMs?: number;
}

/** One run: up, load, SIGKILL of the primary's process group, promotion, verdict. Stops everything it started. */
export async function measureFileSyncRun(options: FileSyncRunOptions): Promise<FileSyncRun> {
  const { work, bin, mode } = options;
  const tag = randomUUID();
  const dir = join(work, tag);
  mkdirSync(dir, { recursive: true });
  const wrapper = join(dir, 'pg-wrapper.sh');
  writeFileSync(wrapper, WRAPPER);
  chmodSync(wrapper, 0o755);
  const file = join(dir, 'understudy.yaml');
  writeFileSync(
    file,
    `services:
  - name: pg
    command: [sh, ${wrapper}, '{role}', ${mode}, '{stateDir}', '{port}', ${bin}, ${work}]
    env: { US_TEST_TAG: ${tag} }
    ports: { pg: 0 }
    routing: { protocol: tcp }
    echo: { count: 1, mode: ${mode}${mode === 'warm' ? ', promote: { signal: SIGHUP }' : ''} }
    restart: { policy: never }
    stopGrace: 5s
`,
  );
  let up: UpProcess | undefined;
  const loads: { stop: () => Promise<void> }[] = [];
  try {
    up = await startUp(file, join(dir, 'data'));
    const api = ApiClient.fromDataDir(join(dir, 'data'));
    const expectRunning = mode === 'warm' ? 2 : 1;
    await waitFor(
      async () => (await service(api)).instances.filter((i) => i.phase === 'running').length >= expectRunning,
      60_000,
      () => up?.output() ?? '',
    );
    const primary = (await service(api)).instances.find((i) => i.role === 'primary');
    if (!primary?.pid) throw new Error('no primary');
    const port = primary.ports.pg ?? 0;
    await waitFor(
      () => psql(bin, port, 'SELECT 1').ok,
      60_000,
      () => 'the primary PostgreSQL never accepted connections',
    );
    const routerPort = Number((await service(api)).dataPlane?.address.split(':').pop());
    psql(bin, port, 'CREATE TABLE acked (id bigint PRIMARY KEY)');
    const init = spawnSync(
      join(bin, 'pgbench'),
      ['-i', '-q', '-s', '2', '-h', '127.0.0.1', '-p', String(port), '-U', 'test', 'postgres'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    if (init.status !== 0) throw new Error(`pgbench -i failed: ${init.stderr}`);
    const bench = spawn(
      join(bin, 'pgbench'),
      [
        '-n',
        '-c',
        '4',
        '-j',
        '2',
        '-T',
        '600',
        '-h',
        '127.0.0.1',
        '-p',
        String(port),
        '-U',
        'test',
        'postgres',
      ],
      { stdio: 'ignore' },
    );
    const benchExit = new Promise<void>((r) => bench.on('exit', () => r()));
    loads.push({ stop: async () => (bench.kill('SIGKILL'), await benchExit) });
    const stream = insertStream(bin, routerPort);
    loads.push(stream);
    await new Promise((r) => setTimeout(r, options.loadMs ?? 8000));
    killPostgresTree(primary.pid);
    const acked = stream.acked();
    let started = false;
    let newPort = 0;
    try {
      await waitFor(async () => {
        const p = (await service(api)).instances.find((i) => i.role === 'primary');
        return p !== undefined && p.id !== primary.id && p.phase === 'running';
      }, 60_000);
      newPort = (await service(api)).instances.find((i) => i.role === 'primary')?.ports.pg ?? 0;
      await waitFor(() => psql(bin, newPort, 'SELECT 1', 5000).ok, 90_000);
      started = true;
    } catch {
      started = false;
    }
    for (const l of loads.splice(0)) await l.stop();
    if (!started) {
      const promoted = (await service(api)).instances.find((i) => i.id !== primary.id);
      const log =
        promoted?.stderrPath && existsSync(promoted.stderrPath)
          ? readFileSync(promoted.stderrPath, 'utf8')
          : '';
      const control = (up?.output() ?? '').split('\n').slice(-6).join('\n');
      return {
        mode,
        acked,
        started,
        logTail: `${log.split('\n').slice(-15).join('\n')}\n--- up:\n${control}`,
      };
    }
    const count = psql(bin, newPort, `SELECT count(*) FROM acked WHERE id <= ${acked}`);
    const present = count.ok ? Number(count.out) : 0;
    const amcheck = spawnSync(
      join(bin, 'pg_amcheck'),
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(newPort),
        '-U',
        'test',
        '--all',
        '--install-missing',
        '--heapallindexed',
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    return {
      mode,
      acked,
      started,
      amcheckStatus: amcheck.status ?? -1,
      ...(amcheck.status === 0 ? {} : { amcheckReport: (amcheck.stdout + amcheck.stderr).slice(0, 2000) }),
      lostAcked: acked - present,
      ...(count.ok ? {} : { countError: count.out.slice(0, 500) }),
    };
  } finally {
    for (const l of loads) await l.stop();
    if (up) {
      if (up.child.exitCode === null) up.child.kill('SIGINT');
      await up.exited;
    }
    for (const pid of processesWithEnv('US_TEST_TAG', tag)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  }
}
