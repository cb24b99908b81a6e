// `npm run bench -- live-scaling [--quick]`: the live control loop's scale-out, end to end — from the
// scaling decision to the new instance serving through the router — for a warm echo of examples/api
// (promotion: a router change) versus a cold start (process start, the example's 1.5 s warm-up, health
// check, router). Real processes under `understudy up`; the figures are read from the recorded decisions.
import { join } from 'node:path';
import { Agent, request } from 'undici';
import type { ControlDecision } from '../src/control/index.js';
import { root, startSpecUp, type SpecUp } from './lib/spec-up.js';

const quick = process.argv.includes('--quick');
const rounds = quick ? 2 : 5;

function spec(echoes: number): string {
  return `services:
  - name: api
    command: [node, ${join(root, 'examples/api/server.mjs')}, --port, '{port}', --warmup, '1500']
    ports: { http: 0 }
    health: { http: { path: /healthz }, interval: 100ms, timeout: 500ms }
    routing: { listen: 127.0.0.1:0 }
    echo: { count: ${echoes}, mode: warm }
    scaling: { min: 1, max: 2, capacity: 20, step: 500ms, interval: 250ms, coldStart: 2s, stabilization: 10m }
`;
}

/** Drives 30 requests/s (1.5× what one instance is given at target) until `stop`. */
async function drive(base: string, stop: AbortSignal): Promise<void> {
  const dispatcher = new Agent({ connections: 16 });
  const started = Date.now();
  let n = 0;
  const inFlight = new Set<Promise<void>>();
  while (!stop.aborted) {
    const due = Math.floor(((Date.now() - started) / 1000) * 30);
    for (; n < due; n++) {
      const p = request(`${base}/work?ms=1`, { dispatcher })
        .then((r) => r.body.dump())
        .catch(() => undefined);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.allSettled(inFlight);
  await dispatcher.close();
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One scale-out from 1 to 2 serving instances; returns decision → serving, ms. */
async function scaleOut(up: SpecUp, warm: boolean): Promise<number> {
  const { api } = up;
  await until(async () => {
    const all = await api.instances();
    const primaries = all.filter((i) => i.role === 'primary' && i.phase === 'running').length;
    const echoes = all.filter((i) => i.role === 'echo' && i.phase === 'running').length;
    return primaries === 1 && echoes === (warm ? 1 : 0);
  }, 30_000);
  const svc = (await api.services()).find((s) => s.name === 'api');
  const stop = new AbortController();
  const load = drive(`http://${svc?.dataPlane?.address ?? ''}`, stop.signal);
  try {
    await until(
      async () => ((await api.services()).find((s) => s.name === 'api')?.dataPlane?.serving.length ?? 0) >= 2,
      30_000,
    );
  } finally {
    stop.abort();
    await load;
  }
  const events: ControlDecision[] = await api.events({ service: 'api', limit: 10_000 });
  const decision = events.find((e) => e.kind === 'scale-out' && e.outcome.status === 'ok');
  if (!decision) throw new Error('no scale-out decision was recorded');
  // Warm: the promotion's own timing (decision → router); cold: the new instance joining the set.
  const joined = warm
    ? events.find((e) => e.kind === 'promote-echo' && e.outcome.status === 'ok')
    : events.find((e) => e.kind === 'serving' && e.at >= decision.at);
  if (!joined) throw new Error(`no ${warm ? 'promotion' : 'cold start'} was recorded`);
  if (warm) {
    const ms = Number(joined.inputs['servesAfterMs'] ?? Number.NaN);
    return joined.at - decision.at + ms;
  }
  return joined.at - decision.at;
}

const results: Record<'warm' | 'cold', number[]> = { warm: [], cold: [] };
for (let r = 0; r < rounds; r++) {
  for (const mode of ['warm', 'cold'] as const) {
    const up = await startSpecUp(`live-scaling-${mode}`, spec(mode === 'warm' ? 1 : 0));
    try {
      results[mode].push(await scaleOut(up, mode === 'warm'));
    } finally {
      await up.stop();
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};
const warmMs = median(results.warm);
const coldMs = median(results.cold);
process.stdout.write(
  `live scale-out of examples/api under 'understudy up' (decision → serving through the router), ${rounds} rounds\n`,
);
process.stdout.write(`${'mode'.padEnd(6)}${'median ms'.padStart(12)}   rounds (ms)\n`);
for (const mode of ['warm', 'cold'] as const)
  process.stdout.write(
    `${mode.padEnd(6)}${median(results[mode]).toFixed(1).padStart(12)}   ${results[mode].map((x) => x.toFixed(1)).join(', ')}\n`,
  );
process.stdout.write(
  `a warm echo serves ${(coldMs / warmMs).toFixed(0)}× sooner than a cold start (the example's own warm-up is 1.5 s of it)\n`,
);
process.stdout.write(
  `${JSON.stringify({
    bench: 'live-scaling',
    rounds,
    warmMs: Math.round(warmMs * 10) / 10,
    coldMs: Math.round(coldMs * 10) / 10,
    ratio: Math.round((coldMs / warmMs) * 10) / 10,
    appWarmupMs: 1500,
  })}\n`,
);
