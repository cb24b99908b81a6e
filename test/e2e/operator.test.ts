// The operator verbs and the logs of `understudy up`, with the built CLI and the example kv service on
// 127.0.0.1: config validate, JSON log records (one per decision), pause/resume/history, failover --to
// and restart refusals, status -w, completion names, and SIGHUP reloading the spec file.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import type { ControlDecision } from '../../src/control/index.js';
import { cliBin, processesWithEnv, repoRoot, runCli, startUp, waitFor, type UpProcess } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-ops-'));
const kvDir = join(repoRoot, 'examples/kv');
const tag = randomUUID();

/**
 * Runs the built CLI without blocking this process (a blocking spawnSync would leave the test's API
 * client holding a keep-alive socket the server closed meanwhile).
 */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cliBin, ...args], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function kvSpec(echoes: number, extra = ''): string {
  return `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${kvDir}
    env: { US_TEST_TAG: ${tag}, KV_SECRET: s3cret-${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 200ms, failureThreshold: 2 }
    echo: { count: ${echoes} }
    restart: { policy: on-failure, backoff: 50ms }
${extra}`;
}

describe('understudy config validate', () => {
  it('exits 0 for a valid file and writes nothing (no data directory)', () => {
    const file = join(work, 'valid.yaml');
    writeFileSync(file, kvSpec(1));
    const dataDir = join(work, 'validate-data');
    const r = runCli(['config', 'validate', file, '-d', dataDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${file}: valid (1 service: kv)\n`);
    expect(existsSync(dataDir)).toBe(false);
  });

  it('exits 2 with exactly the errors up prints, file:line included', async () => {
    const file = join(work, 'broken.yaml');
    writeFileSync(file, kvSpec(1).replace('echo: { count: 1 }', 'echo: { count: -1, colour: red }'));
    const [validate, up] = await Promise.all([
      cli(['config', 'validate', file]),
      cli(['up', file, '-d', join(work, 'broken-data')]),
    ]);
    expect(validate.code).toBe(2);
    expect(up.code).toBe(2);
    expect(validate.stderr).toMatch(new RegExp(`broken\\.yaml:7`));
    expect(validate.stderr).toMatch(/colour/);
    expect(validate.stderr).toBe(up.stderr);
    expect(validate.stdout).toBe('');
  });
});

describe('a running understudy up', () => {
  const file = join(work, 'kv.yaml');
  const dataDir = join(work, 'data');
  let up: UpProcess;
  let api: ApiClient;
  const instances = async (): Promise<string[]> =>
    (await api.instances()).filter((i) => i.phase !== 'stopped').map((i) => `${i.id}:${i.role}:${i.phase}`);
  const records = (): Record<string, unknown>[] =>
    up
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    writeFileSync(file, kvSpec(1));
    up = await startUp(file, dataDir);
    api = ApiClient.fromDataDir(dataDir);
    await waitFor(
      async () => (await instances()).filter((i) => i.endsWith(':running')).length === 2,
      20_000,
      () => `kv did not start: ${up.output()}`,
    );
  }, 30_000);

  afterAll(async () => {
    if (up && up.child.exitCode === null) {
      up.child.kill('SIGTERM');
      await Promise.race([up.exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    for (const pid of [up?.child.pid, ...processesWithEnv('US_TEST_TAG', tag)]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(work, { recursive: true, force: true });
  }, 20_000);

  it('logs JSON lines when piped: one record per decision, with its fields, and no env value', async () => {
    const settled = (await api.events({ limit: 1000 })).filter((d) => d.outcome.status !== 'pending');
    expect(settled.length).toBeGreaterThan(2);
    const seqs = (): unknown[] => records().map((r) => r.seq);
    await waitFor(
      () => settled.every((d) => seqs().includes(d.seq)),
      5000,
      () => `decisions missing from the log: ${up.output()}`,
    );
    for (const d of settled) {
      const mine = records().filter((r) => r.seq === d.seq);
      expect(mine, `decision ${d.seq}`).toHaveLength(1);
      expect(mine[0]).toMatchObject({
        kind: d.kind,
        service: d.service,
        what: d.what,
        why: d.why,
        outcome: d.outcome,
      });
      expect(mine[0]).toHaveProperty('inputs');
      expect(typeof mine[0]?.level).toBe('string');
    }
    const start = records().find((r) => r.kind === 'start');
    expect(start).toMatchObject({ service: 'kv', epoch: 0 });
    expect(up.output()).not.toContain(`s3cret-${tag}`);
  });

  it('pause holds the service (PAUSED in status, the view and the log), resume ends it; history lists failovers', async () => {
    const paused = await cli(['pause', 'kv', '--reason', 'disk swap', '-d', dataDir]);
    expect(paused.stderr).toBe('');
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(/pause\s+kv\s+pause kv: maintenance mode — requested: disk swap \[ok\]/);
    const status = await cli(['status', '-d', dataDir]);
    expect(status.stdout).toMatch(/^kv PAUSED\s+kv-1\s+primary/m);
    expect(status.stdout).toMatch(/kv: PAUSED since .* \(disk swap\): no automatic failover or scaling/);
    expect((await api.services())[0]?.paused).toMatchObject({ reason: 'disk swap' });
    await waitFor(() => records().some((r) => r.kind === 'pause'), 5000);
    const resumed = await cli(['resume', 'kv', '-d', dataDir]);
    expect(resumed.code).toBe(0);
    expect((await api.services())[0]?.paused).toBeUndefined();

    const failover = await cli(['failover', 'kv', '--to', 'kv-2', '-d', dataDir]);
    expect(failover.stderr).toBe('');
    expect(failover.code).toBe(0);
    const [history, historyTable] = await Promise.all([
      cli(['history', 'kv', '-o', 'json', '-d', dataDir]),
      cli(['history', 'kv', '-d', dataDir]),
    ]);
    const entries = (
      JSON.parse(history.stdout) as { history: { kind: string; from: string; to: string; epoch: number }[] }
    ).history;
    expect(entries).toEqual([
      expect.objectContaining({ kind: 'failover', from: 'kv-1', to: 'kv-2', epoch: 1 }),
    ]);
    expect(historyTable.stdout).toMatch(/failover\s+1\s+kv-1\s+kv-2\s+/);
  }, 30_000);

  it('refuses failover --to an instance that cannot take over, and a restart of the lone primary without --force', async () => {
    const primary = (await api.instances()).find((i) => i.role === 'primary' && i.phase === 'running')!;
    // Three refusals, asked at once: none of them changes anything.
    const [bad, self, restart] = await Promise.all([
      cli(['failover', 'kv', '--to', 'kv-9', '-d', dataDir]),
      cli(['failover', 'kv', '--to', primary.id, '-d', dataDir]),
      cli(['restart', primary.id, '-d', dataDir]),
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe("understudy: 'kv-9' is not an instance of 'kv'\n");
    expect(self.stderr).toMatch(new RegExp(`'${primary.id}' cannot take over 'kv' \\(primary, running\\)`));
    expect(restart.code).toBe(1);
    expect(restart.stderr).toMatch(/only serving primary of 'kv'.*understudy switchover kv.*--force/);
    expect((await api.instances()).find((i) => i.id === primary.id)?.pid).toBe(primary.pid);
  });

  it('status -w draws the table, and Ctrl-C exits 0; completion names come from the API', async () => {
    const child = spawn(process.execPath, [cliBin, 'status', '-w', '-d', dataDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await waitFor(
        () => /SERVICE\s+INSTANCE/.test(out),
        10_000,
        () => out,
      );
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(out).toMatch(/every 1s: understudy status/);
    expect((await cli(['__names', 'services', '-d', dataDir])).stdout).toBe('kv\n');
  });

  it('SIGHUP applies a changed echo count live; a broken file changes nothing and is reported', async () => {
    const before = (await instances()).length;
    writeFileSync(file, kvSpec(2));
    up.child.kill('SIGHUP');
    await waitFor(
      async () => (await instances()).filter((i) => i.includes(':echo:running')).length === 2,
      20_000,
      () => `no second echo: ${up.output().slice(-2000)}`,
    );
    const reload = (await api.events({ limit: 1000 })).filter((d) => d.kind === 'reload');
    expect(reload.at(-1)).toMatchObject({
      outcome: { status: 'ok' },
      inputs: { applied: [{ service: 'kv', field: 'echo.count', from: 1, to: 2 }] },
    });
    expect((await instances()).length).toBe(before + 1);

    writeFileSync(file, kvSpec(1).replace('echo: { count: 1 }', 'echo: { count: lots }'));
    up.child.kill('SIGHUP');
    let refused: ControlDecision | undefined;
    await waitFor(async () => {
      refused = (await api.events({ limit: 1000 })).filter((d) => d.kind === 'reload').at(-1);
      return refused?.outcome.status === 'failed';
    }, 10_000);
    expect(refused?.why).toMatch(/the file is invalid: .*kv\.yaml:7/);
    await waitFor(
      () =>
        records().some((r) => r.kind === 'reload' && (r.outcome as { status: string }).status === 'failed'),
      5000,
    );
    expect(up.child.exitCode).toBeNull();
    expect((await instances()).filter((i) => i.includes(':echo:')).length).toBe(2);
    expect(readFileSync(file, 'utf8')).toContain('lots');
  }, 40_000);
});
