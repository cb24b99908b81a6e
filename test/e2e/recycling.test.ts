// Seed 001's recycling, live: a scale-out promotes the warm echo; its runtime state comes from the
// running shadow (warmed by mirrored traffic); once the new serving instance has served through its
// settle window, the shadow that fed it is recycled into the warm pool (a recorded decision).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/api/index.js';
import type { ControlDecision, InstanceRecord, ProfileView } from '../../src/control/index.js';
import { processesWithEnv, repoRoot, startUp, waitFor } from './lib/cli.js';

const work = mkdtempSync(join(tmpdir(), 'understudy-recycling-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Open-loop load: `rate` GET /work?ms=1 per second until `stop` aborts. */
async function drive(base: string, rate: number, stop: AbortSignal): Promise<void> {
  const dispatcher = new Agent({ connections: 16 });
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  let n = 0;
  while (!stop.aborted) {
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    for (; n < due; n++) {
      const p = request(`${base}/work?ms=1`, { dispatcher })
        .then((res) => res.body.dump())
        .catch(() => undefined);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.allSettled(inFlight);
  await dispatcher.close();
}

describe('recycling the shadow that fed a scale-out', { timeout: 120_000 }, () => {
  it('transfers the shadow’s state into the promoted echo, then recycles the shadow into the warm pool', async () => {
    const tag = randomUUID();
    const file = join(work, 'recycle.yaml');
    writeFileSync(
      file,
      `services:
  - name: api
    command: [node, ${join(repoRoot, 'examples/api/server.mjs')}, --port, '{port}']
    ports: { http: 0 }
    env: { US_TEST_TAG: ${tag} }
    health:
      http: { path: /healthz }
      interval: 200ms
      timeout: 1s
    failover: { acceptablePause: 3s }
    routing: { listen: 127.0.0.1:0, slowStart: 500ms }
    echo: { count: 1, mode: warm }
    shadow: { count: 1, sample: 0.5 }
    stateTransfer: { export: /state/export, import: /state/import }
    scaling: { min: 1, max: 2, target: 0.6, capacity: 20, step: 500ms, interval: 500ms, coldStart: 1s, stabilization: 30s }
`,
    );
    const dataDir = join(work, 'data');
    const up = await startUp(file, dataDir, { US_TEST_TAG: tag });
    const api = ApiClient.fromDataDir(dataDir);
    const stop = new AbortController();
    let load: Promise<void> | undefined;
    try {
      const running = async (role: string): Promise<InstanceRecord[]> =>
        (await api.instances()).filter((i) => i.role === role && i.phase === 'running');
      await waitFor(
        async () =>
          (await running('echo')).length === 1 &&
          (await running('shadow')).length === 1 &&
          (await running('primary')).length === 1,
        30_000,
        up.output,
      );
      const [shadow] = await running('shadow');
      const [echo] = await running('echo');
      const svc = (await api.services()).find((s) => s.name === 'api');
      load = drive(`http://${svc?.dataPlane?.address ?? ''}`, 40, stop.signal);
      const recycled = async (): Promise<ControlDecision | undefined> =>
        (await api.events({ service: 'api', limit: 2000 })).find(
          (e) => e.kind === 'recycle' && e.outcome.status !== 'pending',
        );
      await waitFor(async () => (await recycled()) !== undefined, 60_000, up.output);
      const events = await api.events({ service: 'api', limit: 2000 });
      // The warm echo was promoted, fed by the shadow (its runtime state, not the primary's).
      const promoted = events.find((e) => e.kind === 'promote-echo');
      expect(promoted?.instance).toBe(echo?.id);
      const transfer = events.find((e) => e.kind === 'state-transfer' && e.instance === echo?.id);
      expect(transfer?.inputs['from']).toBe(shadow?.id);
      expect(transfer?.outcome.status).toBe('ok');
      // Once it served through its settle window, the shadow went into the warm pool, with the reason.
      const d = await recycled();
      expect(d).toMatchObject({
        instance: shadow?.id,
        what: `recycle shadow ${shadow?.id} into the warm pool`,
        outcome: { status: 'ok' },
        inputs: { fed: echo?.id, action: 'recycle' },
      });
      expect(d?.why).toMatch(/has served for \d+ ms \(settle window 900 ms\); the warm pool's target is/);
      expect(d?.at).toBeGreaterThanOrEqual((promoted?.at ?? 0) + 900);
      // The promotion's time is part of the service's profile now.
      const profile = await api.request<ProfileView>('GET', '/v1/services/api/profile');
      expect(profile.startup.promotion?.samples).toBeGreaterThanOrEqual(1);
      const after = (await api.instances()).find((i) => i.id === shadow?.id);
      expect(after?.role).toBe('echo');
      // The spec still wants a shadow: a fresh one is started in its place.
      await waitFor(
        async () => (await running('shadow')).some((s) => s.id !== shadow?.id),
        30_000,
        up.output,
      );
    } finally {
      stop.abort();
      await load;
      up.child.kill('SIGINT');
      await up.exited;
      expect(processesWithEnv('US_TEST_TAG', tag)).toEqual([]);
    }
  });
});
