// The PostgreSQL recipe's hook scripts (examples/postgres), run directly against two real PostgreSQL
// instances as Understudy's external echo mode runs them: the instance command (run.sh) for the
// primary and the echo, then prepare (before the echo starts), lag, fence, promote and prepare again
// for the deposed primary (its rejoin), with the context in environment variables. SIGKILL of the primary's process group is node death; with synchronous replication no
// acknowledged row may be missing on the promoted standby.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, waitFor } from './lib/cli.js';
import { insertStream, killPostgresTree, postgresBin, psqlQuery } from './lib/pg-file-sync.js';

const bin = postgresBin();
const recipe = join(repoRoot, 'examples/postgres');
// Made by the first test that runs (a skipped file leaves nothing behind), removed after the last.
let workDir: string | undefined;
const work = (): string => (workDir ??= mkdtempSync(join(tmpdir(), 'understudy-pgrecipe-')));
const groups: ChildProcess[] = [];

afterAll(async () => {
  for (const child of groups)
    if (child.pid && child.exitCode === null && child.signalCode === null) killPostgresTree(child.pid);
  await new Promise((r) => setTimeout(r, 300));
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

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

interface Instance {
  name: string;
  port: number;
  dir: string;
}

const envOf = (self: Instance, role: 'primary' | 'echo', primary?: Instance): Record<string, string> => ({
  ...(process.env as Record<string, string>),
  PG_BIN: bin ?? '',
  UNDERSTUDY_SERVICE: 'pg',
  UNDERSTUDY_INSTANCE: self.name,
  UNDERSTUDY_ROLE: role,
  UNDERSTUDY_EPOCH: '1',
  UNDERSTUDY_PORT: String(self.port),
  UNDERSTUDY_STATE_DIR: self.dir,
  UNDERSTUDY_REJOIN: '0',
  ...(primary
    ? {
        UNDERSTUDY_PRIMARY_HOST: '127.0.0.1',
        UNDERSTUDY_PRIMARY_PORT: String(primary.port),
        UNDERSTUDY_PRIMARY_STATE_DIR: primary.dir,
      }
    : {}),
});

/** Starts the instance command (run.sh) in its own process group, as the runtime does. */
function startInstance(self: Instance, role: 'primary' | 'echo', primary?: Instance): ChildProcess {
  const log = openSync(`${self.dir}.log`, 'a');
  const child = spawn('sh', [join(recipe, 'run.sh')], {
    env: envOf(self, role, primary),
    detached: true,
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  groups.push(child);
  return child;
}

function hook(
  name: string,
  self: Instance,
  primary?: Instance,
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', [join(recipe, `${name}.sh`)], {
    env: envOf(self, 'echo', primary),
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function sql(port: number, statement: string): string {
  return psqlQuery(bin ?? '', port, statement);
}

/** The last lines PostgreSQL logged for an instance (for a failure's message). */
const logOf = (self: Instance): string => {
  try {
    return readFileSync(`${self.dir}.log`, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
};

const accepts = (port: number): boolean => {
  try {
    return sql(port, 'SELECT 1') === '1';
  } catch {
    return false;
  }
};

describe.runIf(bin !== undefined)(
  'PostgreSQL recipe hooks (two real PostgreSQL instances)',
  { timeout: 240_000 },
  () => {
    it('copies the primary before the echo starts, reports lag, promotes without losing an acknowledged row after SIGKILL, and rewinds the old primary into a standby', async () => {
      const a: Instance = { name: 'pg-1', port: await freePort(), dir: join(work(), 'pg-1') };
      const b: Instance = { name: 'pg-2', port: await freePort(), dir: join(work(), 'pg-2') };

      const primary = startInstance(a, 'primary');
      await waitFor(
        () => accepts(a.port),
        60_000,
        () => 'the primary never accepted connections',
      );
      sql(a.port, 'CREATE TABLE acked (id bigint PRIMARY KEY)');

      // prepare copies the primary (pg_basebackup) before the echo starts; run.sh starts it as a standby.
      const prepare = hook('prepare', b, a);
      expect(prepare.stderr).toBe('');
      expect(prepare.status).toBe(0);
      startInstance(b, 'echo', a);
      await waitFor(
        () => accepts(b.port),
        60_000,
        () => 'the standby never accepted connections',
      );
      expect(sql(b.port, 'SELECT pg_is_in_recovery()')).toBe('t');
      // A promote request that lands while the standby restarts its walreceiver waits out this
      // interval (PostgreSQL's recovery loop; the 5 s SIGSTOP outliers of docs/recipes.md): 100 ms, not 5 s.
      expect(sql(b.port, 'SHOW wal_retrieve_retry_interval')).toBe('100ms');
      // prepare again keeps a standby's copy (a restarted echo is not copied again).
      expect(hook('prepare', b, a).status).toBe(0);
      expect(sql(b.port, 'SELECT pg_is_in_recovery()')).toBe('t');

      // lag: a JSON line; once the standby streams, the primary replicates synchronously.
      let lag = -1;
      await waitFor(() => {
        const r = hook('lag', b, a);
        if (r.status !== 0) return false;
        lag = (JSON.parse(r.stdout) as { lagBytes: number }).lagBytes;
        return true;
      }, 30_000);
      expect(Number.isInteger(lag) && lag >= 0).toBe(true);
      expect(sql(a.port, 'SHOW synchronous_standby_names')).toBe('*');
      expect(sql(a.port, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'pg-2'")).toBe(
        'sync',
      );

      // Acknowledged inserts, then node death of the primary (its whole process group).
      const stream = insertStream(bin ?? '', a.port, 'postgres');
      await waitFor(
        () => stream.acked() >= 300,
        60_000,
        () => `only ${stream.acked()} inserts acknowledged`,
      );
      const exited = new Promise<void>((resolve) => {
        if (primary.exitCode !== null || primary.signalCode !== null) resolve();
        else primary.once('exit', () => resolve());
      });
      killPostgresTree(primary.pid ?? 0); // run.sh exec'd the postmaster: same pid
      const acked = stream.acked();
      await stream.stop();
      // Reaped before the (synchronous) hook runs: an unreaped postmaster is a zombie that `pg_ctl
      // status` still counts as running, and `spawnSync` would keep this process from reaping it.
      await exited;

      expect(hook('fence', a).status).toBe(0); // already down: fenced
      const promote = hook('promote', b);
      expect(promote.stderr).toBe('');
      expect(promote.status).toBe(0);
      expect(sql(b.port, 'SELECT pg_is_in_recovery()')).toBe('f');
      expect(Number(sql(b.port, `SELECT count(*) FROM acked WHERE id <= ${acked}`))).toBe(acked);
      // Alone, the new primary acknowledges by itself (non-strict): this insert does not hang.
      sql(b.port, 'INSERT INTO acked VALUES (1000000)');

      // The old primary rejoins as a standby of the new one: prepare rewinds its copy (pg_rewind).
      const rejoin = hook('prepare', a, b);
      expect(rejoin.status).toBe(0);
      expect(rejoin.stderr).not.toMatch(/rebuilding the copy/); // rewound, not copied again
      startInstance(a, 'echo', b);
      await waitFor(
        () => accepts(a.port),
        60_000,
        () => 'the rejoined standby never accepted connections',
      );
      expect(sql(a.port, 'SELECT pg_is_in_recovery()')).toBe('t');
      await waitFor(
        () => sql(a.port, 'SELECT count(*) FROM acked WHERE id = 1000000') === '1',
        60_000,
        () => `the rejoined standby never received the new primary's insert:\n${logOf(a)}`,
      );
      const rejoinedLag = hook('lag', a, b);
      expect(rejoinedLag.status).toBe(0);
      expect(JSON.parse(rejoinedLag.stdout)).toEqual({ lagBytes: expect.any(Number) });
    });

    it('fences an old primary whose killed postmaster is not reaped yet (a zombie that pg_ctl still counts as running)', async () => {
      // What the fence hook meets right after Understudy's SIGKILL: postmaster.pid names a process that
      // is dead but not yet reaped; `pg_ctl status` says running, and `pg_ctl stop` fails once it is
      // reaped with its pid file left behind. The postmaster is gone: fenced, exit 0.
      const self: Instance = { name: 'pg-z', port: await freePort(), dir: join(work(), 'pg-z') };
      const pgdata = join(self.dir, 'pgdata');
      mkdirSync(pgdata, { recursive: true, mode: 0o700 });
      writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
      // The zombie: a child of `sleep 2`, which never reaps it; as root it belongs to the user
      // PostgreSQL runs as (pg_ctl, run as that user, must be allowed to signal it).
      const root = process.getuid?.() === 0;
      const maker = ['sh', '-c', 'sleep 0.1 & echo $!; exec sleep 2'];
      const parent = spawn(
        root ? 'setpriv' : (maker[0] ?? 'sh'),
        root ? ['--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...maker] : maker.slice(1),
        { cwd: '/', detached: true, stdio: ['ignore', 'pipe', 'ignore'] },
      );
      groups.push(parent);
      const zombie = await new Promise<number>((resolve) =>
        parent.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
      );
      await waitFor(
        () => readFileSync(`/proc/${zombie}/stat`, 'latin1').split(') ')[1]?.startsWith('Z') ?? false,
        10_000,
        () => `process ${zombie} never became a zombie`,
      );
      writeFileSync(join(pgdata, 'postmaster.pid'), `${zombie}\n${pgdata}\n`);
      if (root) {
        spawnSync('chown', ['-R', 'postgres:', pgdata]);
        chmodSync(work(), 0o711); // traversable by postgres, not listable
        chmodSync(self.dir, 0o711);
      }
      const fence = hook('fence', self);
      expect(fence.stderr).toBe('');
      expect(fence.status).toBe(0);
    });

    it('fails with a message naming what is missing, not a trace', () => {
      const r = spawnSync('sh', [join(recipe, 'lag.sh')], {
        env: { ...process.env, PG_BIN: bin ?? '', UNDERSTUDY_STATE_DIR: join(work(), 'none') },
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(
        "postgres recipe (lag.sh): UNDERSTUDY_INSTANCE is not set (it is part of Understudy's hook environment)",
      );
    });
  },
);
