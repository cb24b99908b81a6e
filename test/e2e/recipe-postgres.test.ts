// The PostgreSQL recipe (examples/postgres) end to end under `understudy up`: streaming replication as
// the external echo (echo.mode: external), synchronous; SIGKILL of the primary (its postmaster and
// every backend) under a stream of acknowledged inserts through the router; the promoted standby holds
// every one of them and takes new inserts; the old primary rejoins as a standby (pg_rewind). Then a
// planned switchover back under inserts: promoted at lag 0, the deposed primary restarted as a standby.
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { ApiClient } from '../../src/api/index.js';
import type { ServiceView } from '../../src/control/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { insertStream, killPostgresTree, postgresBin, psqlQuery } from './lib/pg-file-sync.js';

const recipe = join(repoRoot, 'examples/postgres');
const bin = postgresBin();
// Made by the first test that runs (a skipped file leaves nothing behind), removed after the last.
let workDir: string | undefined;
const work = (): string => (workDir ??= mkdtempSync(join(tmpdir(), 'understudy-pgup-')));
let started: { up: UpProcess; tag: string } | undefined;

afterAll(async () => {
  if (started) {
    started.up.child.kill('SIGINT');
    await started.up.exited;
    for (const pid of processesWithEnv('US_TEST_TAG', started.tag)) killPostgresTree(pid);
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function pg(api: ApiClient): Promise<ServiceView> {
  const svc = (await api.services()).find((s) => s.name === 'pg');
  if (!svc) throw new Error('no pg service');
  return svc;
}

function sql(port: number, statement: string): string {
  return psqlQuery(bin ?? '', port, statement);
}

const accepts = (port: number, statement = 'SELECT 1', expected = '1'): boolean => {
  try {
    return sql(port, statement) === expected;
  } catch {
    return false;
  }
};

describe.runIf(bin !== undefined)(
  'PostgreSQL recipe under understudy up (external echo, synchronous)',
  { timeout: 240_000 },
  () => {
    it('loses no acknowledged insert when the primary is SIGKILLed, rejoins the old primary as a standby, and switches back over without losing one either', async () => {
      const tag = randomUUID();
      const spec = parse(readFileSync(join(recipe, 'understudy.yaml'), 'utf8')) as {
        services: { env: Record<string, string> }[];
      };
      const svc = spec.services[0];
      if (!svc) throw new Error('the recipe has no service');
      svc.env = { ...svc.env, US_TEST_TAG: tag, PG_BIN: bin ?? '' };
      // A copy of the recipe: {specDir} resolves to the copied scripts.
      const dir = join(work(), 'recipe');
      cpSync(recipe, dir, { recursive: true });
      const file = join(dir, 'understudy.yaml');
      writeFileSync(file, stringify(spec));
      const up = await startUp(file, join(work(), 'data'));
      started = { up, tag };
      const api = ApiClient.fromDataDir(join(work(), 'data'));
      await waitFor(
        async () => (await pg(api)).instances.filter((i) => i.phase === 'running').length === 2,
        120_000,
        up.output,
      );
      const router = Number((await pg(api)).dataPlane?.address.split(':').pop());
      await waitFor(() => accepts(router), 60_000, up.output);
      sql(router, 'CREATE TABLE acked (id bigint PRIMARY KEY)');
      const echo = (await pg(api)).instances.find((i) => i.role === 'echo');
      await waitFor(
        () => accepts(echo?.ports.pg ?? 0, 'SELECT pg_is_in_recovery()', 't'),
        60_000,
        () => 'the echo never became a standby',
      );
      const primary = (await pg(api)).instances.find((i) => i.role === 'primary');
      await waitFor(
        () =>
          accepts(
            primary?.ports.pg ?? 0,
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'",
          ),
        60_000,
        () => 'the standby never became synchronous',
      );

      const stream = insertStream(bin ?? '', router, 'postgres');
      await waitFor(() => stream.acked() >= 300, 60_000);
      killPostgresTree(primary?.pid ?? 0);
      const acked = stream.acked();
      await stream.stop();
      await waitFor(
        async () => (await pg(api)).instances.find((i) => i.role === 'primary')?.id === echo?.id,
        60_000,
        up.output,
      );
      await waitFor(() => accepts(router, 'SELECT pg_is_in_recovery()', 'f'), 60_000, up.output);
      expect(Number(sql(router, `SELECT count(*) FROM acked WHERE id <= ${acked}`))).toBe(acked);
      // Inserts continue through the same address, on the promoted standby.
      sql(router, 'INSERT INTO acked VALUES (10000000)');
      // The old primary is back as a standby of the new one (prepare rewound its copy), and receives
      // what the new primary committed.
      await waitFor(
        async () => {
          const old = (await pg(api)).instances.find((i) => i.id === primary?.id);
          return (
            old?.role === 'echo' &&
            old.phase === 'running' &&
            accepts(old.ports.pg ?? 0, 'SELECT count(*) FROM acked WHERE id = 10000000')
          );
        },
        60_000,
        up.output,
      );
      expect(sql(primary?.ports.pg ?? 0, 'SELECT pg_is_in_recovery()')).toBe('t');

      // A planned switchover back under inserts: the router cuts the current primary, the standby
      // catches up (its lag hook reads 0), is promoted, and the deposed primary is restarted as a
      // standby (prepare: pg_rewind) — never left running as a second primary.
      sql(router, 'TRUNCATE acked');
      await waitFor(
        () =>
          accepts(echo?.ports.pg ?? 0, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"),
        60_000,
        () => 'the rejoined standby never became synchronous',
      );
      const again = insertStream(bin ?? '', router, 'postgres');
      await waitFor(() => again.acked() >= 300, 60_000);
      const switchover = await api.switchover('pg');
      const ackedAtSwitch = again.acked();
      await again.stop();
      expect(switchover.outcome.status).toBe('ok');
      expect(switchover.inputs).toMatchObject({ externalLagBytes: 0, externalCatchUp: { lagBytes: 0 } });
      expect((await pg(api)).instances.find((i) => i.role === 'primary')?.id).toBe(primary?.id);
      await waitFor(() => accepts(router, 'SELECT pg_is_in_recovery()', 'f'), 60_000, up.output);
      expect(Number(sql(router, `SELECT count(*) FROM acked WHERE id <= ${ackedAtSwitch}`))).toBe(
        ackedAtSwitch,
      );
      sql(router, 'INSERT INTO acked VALUES (20000000)');
      await waitFor(
        async () => {
          const deposed = (await pg(api)).instances.find((i) => i.id === echo?.id);
          return (
            deposed?.role === 'echo' &&
            deposed.phase === 'running' &&
            accepts(deposed.ports.pg ?? 0, 'SELECT count(*) FROM acked WHERE id = 20000000')
          );
        },
        60_000,
        up.output,
      );
      expect(sql(echo?.ports.pg ?? 0, 'SELECT pg_is_in_recovery()')).toBe('t');
    });
  },
);
