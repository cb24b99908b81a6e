// Under `understudy up`: the warm echo's cache warmed by mirrored reads (echo.warmReads), then, on a
// scale-out, the primary's runtime state streamed into the promoted echo (stateTransfer) before it
// serves, and the echo ramping up (routing.slowStart). Real processes, the real router.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import type { InstanceRecord } from '../../src/control/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-warmstart-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function cacheOf(rec: InstanceRecord | undefined): Promise<Record<string, number>> {
  const res = await request(`http://127.0.0.1:${rec?.ports['http'] ?? 0}/stats`);
  return ((await res.body.json()) as { cache: Record<string, number> }).cache;
}

describe('warm start under understudy up', { timeout: 120_000 }, () => {
  it('warms the echo with mirrored reads, then transfers the primary’s state into it when it is promoted', async () => {
    const tag = randomUUID();
    const file = join(work, 'api.yaml');
    writeFileSync(
      file,
      `services:
  - name: api
    command: [node, ${join(repoRoot, 'examples/api/server.mjs')}, --port, '{port}', --warmup, '300', --miss-ms, '1']
    ports: { http: 0 }
    env: { US_TEST_TAG: ${tag} }
    health: { http: { path: /healthz }, interval: 200ms, timeout: 1s }
    failover: { acceptablePause: 3s }
    routing: { listen: 127.0.0.1:0, slowStart: 5s }
    echo: { count: 1, mode: warm, warmReads: 1 }
    stateTransfer: { export: /state/export, import: /state/import }
    scaling: { min: 1, max: 2, target: 0.6, capacity: 20, step: 500ms, interval: 500ms, coldStart: 1s, stabilization: 60s }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    const api = ApiClient.fromDataDir(dataDir);
    const dispatcher = new Agent({ connections: 16 });
    const stop = new AbortController();
    try {
      const running = async (role: string): Promise<InstanceRecord[]> =>
        (await api.instances()).filter((i) => i.role === role && i.phase === 'running');
      await waitFor(async () => (await running('echo')).length === 1, 20_000, up.output);
      await waitFor(async () => (await running('primary')).length === 1, 20_000, up.output);
      const [echo] = await running('echo');
      const svc = (await api.services()).find((s) => s.name === 'api');
      const base = `http://${svc?.dataPlane?.address ?? ''}`;
      // 10 reads a second: below what would scale out (capacity 20 at target 0.6 = 12/s).
      for (let i = 0; i < 30; i++) {
        await (await request(`${base}/item/k${i}`, { dispatcher })).body.dump();
        await new Promise((r) => setTimeout(r, 100));
      }
      // Every read was copied to the warm echo: its cache holds the 30 keys before it serves anything.
      let seen: Record<string, number> = {};
      await waitFor(
        async () => (seen = await cacheOf(echo)).warmCopies === 30,
        10_000,
        () => `${JSON.stringify(seen)}\n${up.output().slice(-3000)}`,
      );
      expect(await cacheOf(echo)).toMatchObject({ size: 30, misses: 30 });
      // Load: the scale-out promotes the echo.
      const load = (async () => {
        while (!stop.signal.aborted) {
          await Promise.all(
            Array.from({ length: 4 }, () =>
              request(`${base}/work?ms=2`, { dispatcher })
                .then((r) => r.body.dump())
                .catch(() => undefined),
            ),
          );
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await waitFor(async () => (await running('primary')).length === 2, 40_000, up.output);
      const transfer = (await api.events({ service: 'api', limit: 1000 })).find(
        (e) => e.kind === 'state-transfer' && e.instance === echo?.id,
      );
      expect(transfer?.outcome.status).toBe('ok');
      expect(transfer?.inputs['bytes']).toBeGreaterThan(0);
      expect((await cacheOf(echo)).imported).toBeGreaterThanOrEqual(30);
      // It joined a serving set of two: it ramps up rather than taking half the traffic at once.
      const promoted = (await api.events({ service: 'api', limit: 1000 })).find(
        (e) => e.kind === 'promote-echo' && e.instance === echo?.id,
      );
      expect(promoted?.inputs['slowStartMs']).toBe(5000);
      // Between the import and joining, it answered the router's sample of recent reads, replayed
      // (stateTransfer.warmUpReads): the router had forwarded live reads before the scale-out.
      expect(promoted?.inputs['warmUp']).toMatchObject({
        reads: 2000,
        completed: expect.any(Number),
        source: 'replay',
      });
      expect((promoted?.inputs['warmUp'] as { completed: number }).completed).toBeGreaterThan(0);
      expect(promoted?.outcome.detail).toMatch(/ramping up to its full share over 5000 ms/);
      stop.abort();
      await load;
    } finally {
      stop.abort();
      await dispatcher.close();
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });
});
