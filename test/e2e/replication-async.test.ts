// Hot echo with async consistency, pipelined and batched (batches fill for up to 5 ms, the durable log
// writes at most every 10 ms): under concurrent load the echo ends with the primary's applied sequence,
// in the same order, and the durable log catches up with every write.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { ApiClient } from '../../src/api/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor, type UpProcess } from './lib/cli.js';
import { kvService } from './lib/kv-load.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-async-'));
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

/** The kv log's sequenced records, in log order: `stream:seq id`. */
function applied(stateDir: string): string[] {
  return readFileSync(join(stateDir, 'kv.log'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line.slice(9)) as { id?: string; useq?: number; stream?: string })
    .filter((r) => typeof r.useq === 'number')
    .map((r) => `${r.stream}:${r.useq} ${r.id ?? ''}`);
}

describe(
  'hot echo, async consistency, pipelined and batched (real kv processes)',
  { timeout: 60_000 },
  () => {
    it('the echo ends with the primary applied sequence, in order, and the durable log holds every write', async () => {
      const file = join(work, 'kv.yaml');
      writeFileSync(
        file,
        `services:
  - name: kv
    command: [node, server.mjs, --port, '{port}', --state, '{stateDir}']
    cwd: ${join(repoRoot, 'examples/kv')}
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 300ms, failureThreshold: 2 }
    echo: { count: 1, mode: hot, consistency: async, mutations: { order: pipelined, batch: { path: /_understudy/batch } } }
`,
      );
      const dataDir = join(work, 'data');
      up = await startUp(file, dataDir);
      const api = ApiClient.fromDataDir(dataDir);
      await waitFor(
        async () => (await kvService(api)).instances.filter((i) => i.phase === 'running').length === 2,
        15_000,
        up.output,
      );
      const base = `http://${(await kvService(api)).dataPlane?.address}`;
      const dispatcher = new Agent({ connections: 16 });
      let acked = 0;
      await Promise.all(
        Array.from({ length: 16 }, async (_, w) => {
          for (let i = 0; i < 25; i++) {
            const res = await request(`${base}/kv/w${w}-${i}`, {
              method: 'PUT',
              body: `v${w}-${i}`,
              headers: { 'x-request-id': `async-${w}-${i}` },
              dispatcher,
            });
            await res.body.dump();
            if (res.statusCode === 200) acked++;
          }
        }),
      );
      await dispatcher.close();
      expect(acked).toBe(400);
      const svc = await kvService(api);
      const primary = svc.instances.find((i) => i.role === 'primary');
      const echo = svc.instances.find((i) => i.role === 'echo');
      // Async: the echo and the log follow behind the acknowledgements, and catch up.
      await waitFor(async () => {
        // The API gives the log's stats too (ServiceReplication.stats()); the view type leaves them out.
        const r = (await kvService(api)).dataPlane?.replication as
          | {
              lastSeq: number;
              log: { durableSeq: number };
              echoes: Array<{ instanceId: string; pending: number }>;
            }
          | undefined;
        const e = r?.echoes.find((x) => x.instanceId === echo?.id);
        return r !== undefined && e?.pending === 0 && r.log.durableSeq === r.lastSeq && r.lastSeq >= 400;
      }, 20_000);
      const onPrimary = applied(primary?.stateDir ?? '');
      expect(onPrimary.length).toBeGreaterThanOrEqual(400);
      expect(applied(echo?.stateDir ?? '')).toEqual(onPrimary);
      // Batched: fewer requests to the echo than writes.
      const stats = (await kvService(api)).dataPlane?.replication?.echoes.find(
        (x) => x.instanceId === echo?.id,
      );
      expect(stats?.batches).toBeGreaterThan(0);
      expect(stats?.batches).toBeLessThan(stats?.applied ?? 0);
    });
  },
);
