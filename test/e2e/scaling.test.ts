// Horizontal serving sets, the warm pool and shadows, live: real processes behind the real router.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import type { ControlDecision, InstanceRecord, ServiceView } from '../../src/control/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-scaling-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function spec(tag: string, extra: string): string {
  return `services:
  - name: api
    command: [node, ${join(repoRoot, 'examples/api/server.mjs')}, --port, '{port}', --warmup, '300']
    ports: { http: 0 }
    env: { US_TEST_TAG: ${tag} }
    health:
      http: { path: /healthz }
      interval: 200ms
      timeout: 1s
    failover: { acceptablePause: 3s } # these tests are about scaling, not hang detection on a busy machine
    routing: { listen: 127.0.0.1:0 }
    echo: { count: 1, mode: warm }
${extra}`;
}

/** Open-loop load: `rate` GET /work?ms=`ms` per second until `stop` aborts. */
async function drive(
  base: string,
  rate: number,
  stop: AbortSignal,
  ms = 1,
): Promise<{ ok: number; failed: number }> {
  const dispatcher = new Agent({ connections: 32 });
  const totals = { ok: 0, failed: 0 };
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  let n = 0;
  while (!stop.aborted) {
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    for (; n < due; n++) {
      const p = request(`${base}/work?ms=${ms}`, { dispatcher })
        .then(async (res) => {
          await res.body.dump();
          if (res.statusCode === 200) totals.ok++;
          else totals.failed++;
        })
        .catch(() => void totals.failed++);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.allSettled(inFlight);
  await dispatcher.close();
  return totals;
}

describe('horizontal scaling, live', { timeout: 120_000 }, () => {
  it('scales out by promoting the warm echo first, spreads requests over the serving set, and scales back in', async () => {
    const tag = randomUUID();
    const file = join(work, 'scale.yaml');
    // 1 ms of CPU per request, declared capacity 20 requests/s per instance at 100 %: 60 requests/s
    // want ceil(60 / (20 × 0.6)) = 5, capped at max 3.
    writeFileSync(
      file,
      spec(
        tag,
        `    scaling: { min: 1, max: 3, target: 0.6, capacity: 20, step: 500ms, interval: 500ms, coldStart: 1s, stabilization: 2s }\n`,
      ),
    );
    const dataDir = join(work, 'data-scale');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    const api = ApiClient.fromDataDir(dataDir);
    const stop = new AbortController();
    try {
      let lastInstances: InstanceRecord[] | undefined;
      const running = async (role: string): Promise<InstanceRecord[]> =>
        (lastInstances = await api.instances()).filter((i) => i.role === role && i.phase === 'running');
      await waitFor(async () => (await running('echo')).length === 1, 20_000, up.output);
      await waitFor(async () => (await running('primary')).length === 1, 20_000, up.output);
      const [echo] = await running('echo');
      const svc = (await api.services()).find((s) => s.name === 'api');
      const base = `http://${svc?.dataPlane?.address ?? ''}`;
      const load = drive(base, 60, stop.signal);
      await waitFor(async () => (await running('primary')).length === 3, 30_000, up.output);
      // The warm echo went first: it serves now, without a cold start, and a new echo refills the pool.
      const events = await api.events({ service: 'api', limit: 1000 });
      const promoted = events.find((e) => e.kind === 'promote-echo');
      expect(promoted?.instance).toBe(echo?.id);
      expect(promoted?.outcome.status).toBe('ok');
      expect(promoted?.outcome.detail).toMatch(/ serves [\d.]+ ms after the decision \(no cold start\)/);
      const scaleOut = events.find((e) => e.kind === 'scale-out' && e.outcome.status === 'ok');
      expect(scaleOut?.inputs).toMatchObject({ policy: 'predictive' });
      // More than one instance carries at its target (20 × 0.6 = 12 requests/s).
      expect(scaleOut?.inputs['load']).toBeGreaterThan(12);
      expect(scaleOut?.inputs['reactive']).toBeGreaterThanOrEqual(2);
      expect(typeof scaleOut?.inputs['confidence']).toBe('number');
      await waitFor(async () => (await running('echo')).length >= 1, 20_000, up.output);
      // Every member of the serving set takes requests (least outstanding requests): polled until each
      // of the three has answered some, instead of a fixed wait.
      let view: ServiceView | undefined;
      let serving: InstanceRecord[] = [];
      let counts: number[] = [];
      await waitFor(
        async () => {
          view = (await api.services()).find((s) => s.name === 'api');
          serving = (await api.instances()).filter((i) => view?.dataPlane?.serving.includes(i.id));
          counts = await answered(serving);
          return serving.length === 3 && counts.every((n) => n > 0);
        },
        15_000,
        () =>
          `requests answered per serving instance: ${JSON.stringify(counts)}\n${up.output().slice(-2000)}`,
      );
      expect(view?.dataPlane?.serving).toHaveLength(3);
      expect(view?.scaling).toMatchObject({
        policy: 'predictive',
        capacity: { perInstance: 20, source: 'spec' },
      });
      expect(serving).toHaveLength(3);
      for (const n of counts) expect(n).toBeGreaterThan(0);
      stop.abort();
      const totals = await load;
      expect(totals.failed).toBe(0);
      // No load: after the stabilisation window the set shrinks back to min.
      await waitFor(
        async () => (await running('primary')).length === 1,
        30_000,
        () =>
          `${JSON.stringify((lastInstances ?? []).map((i) => [i.id, i.role, i.phase, i.slot]))}\n${up.output().slice(-3000)}`,
      );
      const after = await api.events({ service: 'api', limit: 2000 });
      expect(after.some((e: ControlDecision) => e.kind === 'scale-in' && e.outcome.status === 'ok')).toBe(
        true,
      );
      // Each instance that left the serving set drained out of the router: it went back into the warm
      // pool (demote) or was stopped, and the router serves from the one that is left.
      const left = after.filter(
        (e: ControlDecision) => (e.kind === 'demote' || e.kind === 'stop') && e.outcome.status === 'ok',
      );
      expect(left.length).toBeGreaterThanOrEqual(2);
      const final = (await api.services()).find((s) => s.name === 'api');
      expect(final?.dataPlane?.serving).toHaveLength(1);
      // The members that left are stopped records now; the lone primary left still fails over to an echo.
      const lone = (await running('primary'))[0];
      process.kill(lone?.pid ?? 0, 'SIGKILL');
      await waitFor(
        async () =>
          (await api.events({ service: 'api', limit: 3000 })).some(
            (e) => e.kind === 'failover' && e.instance === lone?.id && e.outcome.status === 'ok',
          ),
        20_000,
        up.output,
      );
    } finally {
      stop.abort();
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });

  it('mirrors traffic to a shadow with a fraction of the resources, measures shadow against live, and measures the capacity', async () => {
    const tag = randomUUID();
    const file = join(work, 'shadow.yaml');
    writeFileSync(
      file,
      spec(tag, `    shadow: { count: 1, sample: 1 }\n    scaling: { step: 500ms, interval: 500ms }\n`),
    );
    const dataDir = join(work, 'data-shadow');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    const api = ApiClient.fromDataDir(dataDir);
    const stop = new AbortController();
    try {
      const find = async (role: string): Promise<InstanceRecord | undefined> =>
        (await api.instances()).find((i) => i.role === role && i.phase === 'running');
      await waitFor(
        async () => (await find('shadow')) !== undefined && (await find('primary')) !== undefined,
        20_000,
        up.output,
      );
      const shadow = await find('shadow');
      const svc = (await api.services()).find((s) => s.name === 'api');
      const base = `http://${svc?.dataPlane?.address ?? ''}`;
      // 25 requests/s of 4 ms: a tenth of a core, enough to measure what one instance handles.
      const load = drive(base, 25, stop.signal, 4);
      await waitFor(
        async () => (await api.services()).find((s) => s.name === 'api')?.scaling?.capacity !== undefined,
        20_000,
        up.output,
      );
      stop.abort();
      const totals = await load;
      expect(totals.failed).toBe(0);
      // The shadow saw the mirrored requests; its answers went nowhere.
      const res = await request(`http://127.0.0.1:${shadow?.ports['http'] ?? 0}/stats`);
      const stats = (await res.body.json()) as { requests: number; role: string };
      expect(stats.role).toBe('shadow');
      expect(stats.requests).toBeGreaterThan(totals.ok / 2);
      const view = (await api.services()).find((s) => s.name === 'api');
      expect(view?.desired).toEqual({ primaries: 1, echoes: 1, shadows: 1 });
      expect(view?.scaling?.shadow?.shadows).toBe(1);
      expect(view?.scaling?.shadow?.liveLoad).toBeGreaterThan(0);
      // Seed 002's rate delta: the shadow answered (nearly) every mirrored request, so live and shadow
      // rates agree while it keeps up.
      expect(view?.scaling?.shadow?.rate?.shadow).toBeGreaterThan(0);
      expect(Math.abs(view?.scaling?.shadow?.rate?.relative ?? 1)).toBeLessThan(0.5);
      // 4 ms of CPU a request: one unlimited instance handles about 1000 / 4 = 250 requests/s at 100 %.
      expect(view?.scaling?.capacity?.source).toBe('measured');
      expect(view?.scaling?.capacity?.perInstance).toBeGreaterThan(100);
      expect(view?.scaling?.capacity?.perInstance).toBeLessThan(600);
      const measured = (await api.events({ service: 'api', limit: 1000 })).find((e) => e.kind === 'capacity');
      expect(measured?.why).toMatch(/measured: median of the last \d+ samples/);
    } finally {
      stop.abort();
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });
});

/** Requests each instance has answered (examples/api's /stats, asked directly, not through the router). */
async function answered(instances: InstanceRecord[]): Promise<number[]> {
  const out: number[] = [];
  for (const inst of instances) {
    const res = await request(`http://127.0.0.1:${inst.ports['http'] ?? 0}/stats`);
    out.push(((await res.body.json()) as { requests: number }).requests);
  }
  return out;
}
