import { describe, expect, it } from 'vitest';
import {
  HpaController,
  OracleController,
  PredictiveController,
  ReactivePoolController,
  StaticController,
} from './controllers.js';
import type { ScalingController } from './controllers.js';
import { combineMetrics, ElasticityAccumulator } from './elasticity-metrics.js';
import { runScenario } from './scenario.js';
import { simulate } from './simulator.js';
import type { Trace } from './trace.js';

const constant = (n: number, v: number): Float64Array => new Float64Array(n).fill(v);

function wave(steps: number): Trace {
  const times = new Float64Array(steps);
  const values = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    times[i] = i * 60_000;
    values[i] = 50 + 40 * Math.sin((2 * Math.PI * i) / 240) + ((i * 7919) % 13);
  }
  return { source: 'wave', times, values, stepMs: 60_000 };
}

function square(steps: number): Trace {
  const times = new Float64Array(steps);
  const values = new Float64Array(steps);
  for (let i = 0; i < steps; i++) {
    times[i] = i * 60_000;
    values[i] = (Math.floor(i / 60) % 2 === 0 ? 30 : 100) + ((i * 7919) % 7);
  }
  return { source: 'square', times, values, stepMs: 60_000 };
}

/** Short bursts of varying height at irregular times (a hash of the step), which no forecast sees coming. */
function bursts(steps: number): Trace {
  const times = new Float64Array(steps);
  const values = new Float64Array(steps);
  let left = 0;
  for (let i = 0; i < steps; i++) {
    times[i] = i * 60_000;
    if (left === 0 && (i * 2654435761) % 97 < 3) left = 4 + (i % 5);
    values[i] = (left > 0 ? 150 + ((i * 31) % 50) : 30) + ((i * 7919) % 5);
    if (left > 0) left--;
  }
  return { source: 'bursts', times, values, stepMs: 60_000 };
}

describe('ElasticityAccumulator', () => {
  it('computes θ, τ, instability, SLO minutes and cost on a hand-worked case', () => {
    // 4 minutes: (d, s) = (2, 2), (4, 2), (4, 5), (2, 5); cost = s.
    const a = new ElasticityAccumulator();
    for (const [d, s] of [
      [2, 2],
      [4, 2],
      [4, 5],
      [2, 5],
    ] as const)
      a.add(60_000, d, s, s);
    const m = a.result();
    expect(m.thetaU).toBeCloseTo((100 * (2 / 4)) / 4); // 12.5 %
    expect(m.thetaO).toBeCloseTo((100 * (1 / 4 + 3 / 2)) / 4); // 43.75 %
    expect(m.tauU).toBeCloseTo(25);
    expect(m.tauO).toBeCloseTo(50);
    // Steps 2–4: (Δd, Δs) = (+, 0) mismatch, (0, +) mismatch, (−, 0) mismatch → 100 %.
    expect(m.instability).toBeCloseTo(100);
    expect(m.sloViolationMin).toBeCloseTo(1);
    expect(m.instanceHours).toBeCloseTo(14 / 60);
  });
  it('combines per-trace metrics by summing counts and time-weighting percentages', () => {
    const a = new ElasticityAccumulator();
    a.add(3_600_000, 2, 1, 1);
    const b = new ElasticityAccumulator();
    b.add(3 * 3_600_000, 1, 1, 1);
    const c = combineMetrics([a.result(), b.result()]);
    expect(c.tauU).toBeCloseTo(25);
    expect(c.sloViolationMin).toBeCloseTo(60);
    expect(c.instanceHours).toBeCloseTo(4);
  });
});

describe('simulate', () => {
  it('turns overload into queueing delay and then dropped requests', () => {
    // 2 instances of 100 req/s, 300 req/s arriving: 100 req/s too many, queue bound 30 s.
    const [r] = simulate(
      [{ name: 's', load: constant(40, 300), controller: new StaticController(2), initial: 2 }],
      { capacityPerInstance: 100, tickMs: 15_000 },
    );
    expect(r!.metrics.droppedPct).toBeGreaterThan(20);
    expect(r!.metrics.meanQueueDelayMs).toBeGreaterThan(10_000);
    expect(r!.metrics.sloViolationMin).toBeCloseTo(10);
    const [ok] = simulate(
      [{ name: 's', load: constant(40, 150), controller: new StaticController(2), initial: 2 }],
      { capacityPerInstance: 100 },
    );
    expect(ok!.metrics.droppedPct).toBe(0);
    expect(ok!.metrics.sloViolationMin).toBe(0);
  });
  it('gives the same result for the same seed, including random failures', () => {
    const trace = wave(600);
    const once = (seed: number) => runScenario(trace, { failureRatePerHour: 0.05, seed, meanInstances: 20 });
    const a = once(7);
    const b = once(7);
    expect(JSON.stringify(a.results)).toBe(JSON.stringify(b.results));
    expect(a.results.hpa!.failures).toBeGreaterThan(0);
    expect(JSON.stringify(once(8).results.hpa!.metrics)).not.toBe(JSON.stringify(a.results.hpa!.metrics));
  });
  it('starts cold instances after the cold start and promotes warm echoes after the warm start', () => {
    const load = new Float64Array(40).fill(100);
    for (let i = 10; i < 40; i++) load[i] = 1000;
    const hpa = simulate(
      [{ name: 's', load, controller: new HpaController(100, { target: 0.7 }), initial: 2 }],
      { capacityPerInstance: 100, coldStartMs: 120_000, record: true },
    )[0]!;
    // The rise at tick 10 is seen then; cold instances serve from tick 10 + 8 = 18.
    expect(hpa.series!.capacity[17]).toBe(200);
    expect(hpa.series!.capacity[18]).toBeGreaterThan(200);
  });
  it('moves serving instances released by a scale-in into the warm pool while it wants more echoes', () => {
    // A scripted controller: 6 serving and no pool, then 3 serving and a pool of 2.
    const script: ScalingController = {
      name: 'script',
      decide: (_now, v) => (v.tick < 5 ? { serving: 6, pool: 0 } : { serving: 3, pool: 2 }),
    };
    const [r] = simulate([{ name: 's', load: constant(12, 100), controller: script, initial: 6 }], {
      capacityPerInstance: 100,
      coldStartMs: 120_000,
      record: true,
    });
    // Two of the three released join the pool at once (no cold start); the third is stopped.
    expect(r!.demotions).toBe(2);
    expect(r!.series!.pool[6]).toBe(2);
    expect(r!.series!.capacity[6]).toBe(300);
  });
  it('runs reactive-pool after the load: a warm echo serves a warm start after the rise, the rest a cold start', () => {
    // 100 req/s, then 1000 from tick 20; warm promotion 30 s (2 ticks), cold start 120 s (8 ticks).
    const load = constant(40, 100);
    for (let i = 20; i < 40; i++) load[i] = 1000;
    const controller = new ReactivePoolController({
      capacityPerInstance: 100,
      targetUtilization: 0.7,
      stepMs: 60_000,
      coldLeadMs: 120_000,
      warmLeadMs: 30_000,
    });
    const [r] = simulate([{ name: 's', load, controller }], {
      capacityPerInstance: 100,
      coldStartMs: 120_000,
      warmStartMs: 30_000,
      record: true,
    });
    const cap = r!.series!.capacity;
    // Nothing before the rise (it does not anticipate); the pool holds its echoes warm.
    for (let i = 0; i <= 21; i++) expect(cap[i]).toBe(200);
    const echoes = r!.series!.pool[19]!;
    expect(echoes).toBeGreaterThan(0);
    expect(echoes).toBeLessThan(13);
    // The echoes promoted at tick 20 serve from tick 22; the cold starts for the rest from tick 28.
    expect(cap[22]).toBe(200 + 100 * echoes);
    expect(cap[27]).toBe(200 + 100 * echoes);
    expect(cap[28]).toBe(1500);
    expect(r!.promotions).toBe(echoes);
    expect(r!.controller).toBe('reactive-pool');
  });
  it('lets the oracle serve every tick at the target utilisation with the same lead time', () => {
    const trace = wave(1000);
    const r = runScenario(trace, { policies: ['oracle', 'hpa'], meanInstances: 15 });
    expect(r.results.oracle!.metrics.sloViolationMin).toBe(0);
    expect(r.results.oracle!.metrics.instanceHours).toBeLessThan(r.results.hpa!.metrics.instanceHours * 1.2);
  });
  it('runs the predictive scaler with fewer SLO-violation minutes than the HPA on a recurring pattern', () => {
    const r = runScenario(square(3000), { policies: ['predictive', 'hpa'], meanInstances: 20 });
    expect(r.results.hpa!.metrics.sloViolationMin).toBeGreaterThan(0);
    expect(r.results.predictive!.metrics.sloViolationMin).toBeLessThan(
      r.results.hpa!.metrics.sloViolationMin,
    );
    expect(r.results.predictive!.promotions).toBeGreaterThan(0);
  });
  it("keeps reactive-pool's scale-in the window's whatever the predictive scale-in options (it never uses the forecast)", () => {
    const run = (on: boolean) =>
      runScenario(wave(1500), {
        policies: ['reactive-pool', 'predictive'],
        meanInstances: 15,
        predictive: { warmHold: on, unconfidentHold: on, warmWindow: on },
      }).results;
    const on = run(true);
    const off = run(false);
    expect(on['reactive-pool']!.metrics).toEqual(off['reactive-pool']!.metrics);
    // …while the same options do change what predictive runs.
    expect(on.predictive!.metrics.instanceHours).not.toBe(off.predictive!.metrics.instanceHours);
  });
  it('with the warm window, serving instances held after a burst wait in the warm pool instead of serving', () => {
    const run = (warmWindow: boolean) =>
      runScenario(bursts(2000), { policies: ['predictive'], meanInstances: 10, predictive: { warmWindow } })
        .results.predictive!;
    const on = run(true);
    const off = run(false);
    // More instances go back into the pool after a burst…
    expect(on.demotions).toBeGreaterThan(off.demotions);
    // …which costs fewer instance-hours than keeping them serving through the window.
    expect(on.metrics.instanceHours).toBeLessThan(off.metrics.instanceHours);
  });
  it('exposes the controllers used by the simulator by name', () => {
    expect(new PredictiveController({ capacityPerInstance: 1 }).name).toBe('predictive');
    expect(new OracleController(constant(3, 1), 1, 1, 1).name).toBe('oracle');
  });
});
