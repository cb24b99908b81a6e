import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { ApiClient } from '../../src/api/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { missingAcked, kvService } from './lib/kv-load.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-pipelined-'));
let up: UpProcess | undefined;
const tag = randomUUID();

afterAll(async () => {
  if (up) {
    up.child.kill('SIGINT');
    await up.exited;
  }
  expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
  rmSync(work, { recursive: true, force: true });
});

/** The kv log's records, parsed (CRC prefix cut). */
function records(stateDir: string): Array<{ id?: string; useq?: number; stream?: string; op: string }> {
  return readFileSync(join(stateDir, 'kv.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line.slice(9)) as { id?: string; useq?: number; op: string });
}

/** `writers` closed-loop writers of unique keys (each PUT with its own x-request-id) until `signal` aborts. */
async function closedLoop(
  base: string,
  writers: number,
  signal: AbortSignal,
): Promise<{ acked: Map<string, string>; failed: number }> {
  const dispatcher = new Agent({ connections: writers, keepAliveTimeout: 5000 });
  const acked = new Map<string, string>();
  let failed = 0;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; !signal.aborted; i++) {
        const key = `w${w}-${i}`;
        try {
          const res = await request(`${base}/kv/${key}`, {
            method: 'PUT',
            body: `v-${key}`,
            headers: { 'x-request-id': `req-${key}` },
            dispatcher,
            headersTimeout: 10_000,
            bodyTimeout: 10_000,
          });
          await res.body.dump();
          if (res.statusCode === 200) acked.set(key, `v-${key}`);
          else failed++;
        } catch {
          failed++;
        }
      }
    }),
  );
  await dispatcher.close();
  return { acked, failed };
}

// One request per mutation to the echo, and batches of them (echo.mutations.batch).
const VARIANTS = [
  { name: 'one request per mutation', mutations: '{ order: pipelined }', dir: 'single' },
  {
    name: 'batched',
    mutations: '{ order: pipelined, batch: { path: /_understudy/batch, max: 16 } }',
    dir: 'batched',
  },
] as const;

describe.each(VARIANTS)(
  'pipelined order with a hot write-through echo, $name (real kv processes)',
  { timeout: 120_000 },
  (variant) => {
    it('loses no acknowledged write and applies none twice when the echo, then the primary, is SIGKILLed under pipelined load', async () => {
      if (up) {
        up.child.kill('SIGINT');
        await up.exited;
        up = undefined;
      }
      const file = join(work, `kv-${variant.dir}.yaml`);
      writeFileSync(
        file,
        `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: { count: 1, mode: hot, consistency: write-through, mutations: ${variant.mutations} }
    restart: { backoff: 50ms, maxRestarts: 50 }
`,
      );
      const dataDir = join(work, `data-${variant.dir}`);
      up = await startUp(file, dataDir);
      const api = ApiClient.fromDataDir(dataDir);
      await waitFor(
        async () => (await kvService(api)).instances.filter((i) => i.phase === 'running').length === 2,
        15_000,
        up.output,
      );
      const base = `http://${(await kvService(api)).dataPlane?.address}`;
      const stop = new AbortController();
      const load = closedLoop(base, 16, stop.signal);
      await new Promise((r) => setTimeout(r, 1000));
      // The echo dies mid-stream: it restarts from its log's position and the replays resume, deduplicated.
      const echo = (await kvService(api)).instances.find((i) => i.role === 'echo');
      process.kill(echo?.pid ?? 0, 'SIGKILL');
      await waitFor(async () => {
        const svc = await kvService(api);
        const e = svc.instances.find((i) => i.id === echo?.id);
        const r = svc.dataPlane?.replication?.echoes.find((x) => x.instanceId === echo?.id);
        return e?.phase === 'running' && e.pid !== echo?.pid && r?.inSync === true;
      }, 20_000);
      await new Promise((r) => setTimeout(r, 500));
      // The restarted echo got its replays as batches in the batched variant only.
      const echoNow = (await kvService(api)).instances.find((i) => i.id === echo?.id);
      const echoStats = (await (
        await request(`http://127.0.0.1:${echoNow?.ports.http}/stats`)
      ).body.json()) as { batches: number };
      if (variant.dir === 'batched') expect(echoStats.batches).toBeGreaterThan(0);
      else expect(echoStats.batches).toBe(0);
      const before = (await kvService(api)).instances.find((i) => i.role === 'primary');
      expect(before?.pid).toBeGreaterThan(0);
      process.kill(before?.pid ?? 0, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 1200));
      stop.abort();
      const { acked } = await load;
      const after = (await kvService(api)).instances.find((i) => i.role === 'primary');
      expect(after?.id).not.toBe(before?.id);
      expect(acked.size).toBeGreaterThan(20);
      expect(await missingAcked(base, acked)).toEqual([]);
      // The writes went through the pipelined path: every record of the new primary consumed a seq, once.
      const recs = records(after?.stateDir ?? '');
      expect(recs.length).toBeGreaterThan(20);
      expect(recs.every((r) => typeof r.useq === 'number')).toBe(true);
      const useqs = recs.map((r) => `${r.stream}:${r.useq}`);
      expect(new Set(useqs).size).toBe(useqs.length);
      const ids = recs.flatMap((r) => (r.id ? [r.id] : []));
      expect(new Set(ids).size).toBe(ids.length);
      expect((await kvService(api)).lastFailover).toMatchObject({ kind: 'failover', atRisk: [] });
    });
  },
);
