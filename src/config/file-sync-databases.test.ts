import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { postgresDataDirIn, postgresProgramIn } from './file-sync-databases.js';
import { checkStateDirsForDatabases, ConfigError, parseSpecText } from './load.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-fsdb-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function problemsOf(text: string): ConfigError['problems'] {
  try {
    parseSpecText(text, 'u.yaml');
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

const pgService = (command: string, echo: string): string =>
  `services:\n  - name: pg\n    command: ${command}\n    ports: { pg: 0 }\n    echo: ${echo}\n`;

describe('file-synced PostgreSQL is refused', () => {
  it('refuses a warm echo of a service that runs postgres, naming the field and the external mode', () => {
    const problems = problemsOf(pgService("[postgres, -D, '{stateDir}', -p, '{port}']", '{ mode: warm }'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ field: 'services[0].echo', line: 5 });
    expect(problems[0]?.message).toMatch(/file-synced echo \(echo\.mode warm\) of PostgreSQL/);
    expect(problems[0]?.message).toMatch(/echo\.mode: external/);
  });

  it('refuses a cold echo, and the default (warm) echo, of pg_ctl, a full path and a shell string', () => {
    for (const command of [
      "[/usr/lib/postgresql/15/bin/pg_ctl, -D, '{stateDir}', start]",
      "[sh, -c, 'exec postgres -D {stateDir} -p {port}']",
      "[runuser, -u, postgres, --, postmaster, -D, '{stateDir}']",
    ]) {
      expect(problemsOf(pgService(command, '{ mode: cold }')).map((p) => p.field)).toEqual([
        'services[0].echo',
      ]);
    }
    expect(
      problemsOf(`services:\n  - name: pg\n    command: [postgres, -D, '{stateDir}']\n`).map((p) => p.field),
    ).toEqual(['services[0].echo']);
  });

  it('accepts PostgreSQL without an echo, and a service that only names the postgres user or database', () => {
    expect(problemsOf(pgService("[postgres, -D, '{stateDir}']", '{ count: 0 }'))).toEqual([]);
    expect(problemsOf(pgService('[runuser, -u, postgres, --, node, app.mjs]', '{ mode: warm }'))).toEqual([]);
    expect(problemsOf(pgService('[psql, -d, postgres]', '{ mode: cold }'))).toEqual([]);
  });

  it('accepts an external echo of PostgreSQL (its own replication, no file sync), the recipe included', () => {
    const external =
      '{ mode: external, external: { prepare: { exec: [./prepare.sh] }, promote: { exec: [./promote.sh] } } }';
    expect(problemsOf(pgService("[postgres, -D, '{stateDir}']", external))).toEqual([]);
    const recipe = readFileSync(new URL('../../examples/postgres/understudy.yaml', import.meta.url), 'utf8');
    expect(parseSpecText(recipe, 'understudy.yaml').services[0]?.echo.mode).toBe('external');
  });

  it('finds the program in argv, paths, shell strings and image names, but not as an option value', () => {
    expect(postgresProgramIn(['docker', 'run', 'postgres:15'])).toBe('postgres');
    expect(postgresProgramIn(['bash', '-c', 'cd x && pg_ctlcluster 15 main start'])).toBe('pg_ctlcluster');
    expect(postgresProgramIn(['node', 'server.mjs', '--db', 'postgres'])).toBeUndefined();
    expect(postgresProgramIn(['postgres-exporter'])).toBeUndefined();
  });

  it('at up, refuses a file-synced service whose state directory already holds a PostgreSQL data directory', () => {
    const dir = mkdtempSync(join(work, 'spec-'));
    const file = join(dir, 'u.yaml');
    const text = pgService("[sh, start.sh, '{stateDir}']", '{ mode: warm }');
    writeFileSync(file, text);
    const loaded = { spec: parseSpecText(text, file), file, dir };
    const dataDir = join(dir, 'data');
    checkStateDirsForDatabases(loaded, dataDir); // nothing there yet
    const pgdata = join(dataDir, 'state', 'pg-3', 'pgdata');
    mkdirSync(join(pgdata, 'global'), { recursive: true });
    writeFileSync(join(pgdata, 'PG_VERSION'), '15\n');
    checkStateDirsForDatabases(loaded, dataDir); // PG_VERSION alone is not a data directory
    writeFileSync(join(pgdata, 'global', 'pg_control'), '');
    expect(postgresDataDirIn(join(dataDir, 'state', 'pg-3'))).toBe(pgdata);
    let caught: unknown;
    try {
      checkStateDirsForDatabases(loaded, dataDir);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const problem = (caught as ConfigError).problems[0];
    expect(problem).toMatchObject({ field: 'services[0].echo', line: 5 });
    expect(problem?.message).toContain(`${pgdata} is a PostgreSQL data directory`);
    expect((caught as ConfigError).code).toBe('UNDERSTUDY_ERR_CONFIG');
    // Without an echo the same directory is fine.
    const solo = pgService("[sh, start.sh, '{stateDir}']", '{ count: 0 }');
    writeFileSync(file, solo);
    checkStateDirsForDatabases({ spec: parseSpecText(solo, file), file, dir }, dataDir);
  });
});
