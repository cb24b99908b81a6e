import { describe, expect, it } from 'vitest';
import { PredictiveScaler } from './predictive-scaler.js';

// A daily-like square wave with period 20 steps of 1 minute: 10 steps at 700 req/s, 10 at 2100.
const loadAt = (step: number): number => (Math.floor(step / 10) % 2 === 0 ? 700 : 2100);

function run(mode: 'act' | 'forecast-only'): {
  scaledBeforeRise: number;
  decisions: number;
  applied: number;
} {
  const s = new PredictiveScaler({
    capacityPerInstance: 100,
    targetUtilization: 0.7,
    stepMs: 60_000,
    coldLeadMs: 120_000,
    decisionIntervalMs: 60_000,
    warmPool: false,
    mode,
  });
  let serving = 10;
  let scaledBeforeRise = 0;
  let decisions = 0;
  let applied = 0;
  for (let step = 0; step < 400; step++) {
    const now = step * 60_000;
    const load = loadAt(step);
    s.observe(now, load);
    const d = s.decide(now, { serving, pool: 0, poolReady: 0, load });
    decisions += d.decisions.length;
    applied += d.decisions.filter((x) => x.applied).length;
    // In the last cycles: is the serving set already large before a rise (steps 8, 9 of each 20)?
    if (step > 300 && step % 20 === 9 && d.serving >= 30) scaledBeforeRise++;
    serving = d.serving;
  }
  return { scaledBeforeRise, decisions, applied };
}

describe('PredictiveScaler', () => {
  it('scales out before a recurring rise once it has learnt the pattern', () => {
    const r = run('act');
    expect(r.scaledBeforeRise).toBeGreaterThanOrEqual(4);
  });
  it('records decisions without acting in forecast-only mode', () => {
    const r = run('forecast-only');
    expect(r.decisions).toBeGreaterThan(0);
    expect(r.applied).toBe(0);
  });
  it('is deterministic: the same inputs give the same decisions', () => {
    expect(run('act')).toEqual(run('act'));
  });
  it('explains every decision: the reason and the forecast, confidence and counts it rested on', () => {
    const s = new PredictiveScaler({ capacityPerInstance: 100, stepMs: 60_000, warmPool: false });
    let d = s.decide(0, { serving: 2, pool: 0, poolReady: 0, load: 100 });
    expect(d.reason).toMatch(/no forecast yet/);
    expect(d.inputs).toMatchObject({ load: 100, capacityPerInstance: 100, reactive: 2, confident: false });
    for (let step = 0; step < 200; step++) {
      const now = step * 60_000;
      s.observe(now, loadAt(step));
      d = s.decide(now, { serving: d.serving, pool: 0, poolReady: 0, load: loadAt(step) });
    }
    const f = d.inputs.forecast!;
    expect(f.lower).toBeLessThanOrEqual(f.mean);
    expect(f.mean).toBeLessThanOrEqual(f.upper);
    expect(f.horizonMs).toBe(120_000 + 15_000);
    expect(d.inputs.confidence).toBe(d.confidence);
    expect(d.reason.length).toBeGreaterThan(0);
    if (d.inputs.confident) expect(d.inputs.predictive).toBeGreaterThanOrEqual(1);
  });
  it('takes a new capacity estimate per decision without losing what it learnt', () => {
    const s = new PredictiveScaler({ capacityPerInstance: 100, stepMs: 60_000, warmPool: false });
    for (let step = 0; step < 100; step++) s.observe(step * 60_000, 700);
    const now = 100 * 60_000;
    const at100 = s.decide(now, { serving: 10, pool: 0, poolReady: 0, load: 700 });
    expect(at100.serving).toBe(10);
    const at50 = s.decide(now + 15_000, {
      serving: 10,
      pool: 0,
      poolReady: 0,
      load: 700,
      capacityPerInstance: 50,
    });
    expect(at50.serving).toBe(20); // 700 / (50 × 0.7)
    expect(at50.inputs.capacityPerInstance).toBe(50);
    expect(at50.inputs.forecast).toBeDefined();
  });
  it('is more confident of a forecast rise when the shadow runs hotter than live, less when cooler', () => {
    const make = (): PredictiveScaler => {
      const s = new PredictiveScaler({ capacityPerInstance: 100, stepMs: 60_000, warmPool: false });
      // A steady climb: the forecast mean is above the current load (a rise).
      for (let step = 0; step < 60; step++) s.observe(step * 60_000, 500 + step * 10);
      return s;
    };
    const now = 60 * 60_000;
    const obs = { serving: 10, pool: 0, poolReady: 0, load: 1090 };
    const none = make().decide(now, obs).confidence;
    const hotter = make().decide(now, { ...obs, shadowLoad: 1400 }).confidence;
    const cooler = make().decide(now, { ...obs, shadowLoad: 800 }).confidence;
    expect(hotter).toBeGreaterThan(none);
    expect(cooler).toBeLessThan(none);
  });

  it('asks for a warm pool sized to the predicted growth', () => {
    const s = new PredictiveScaler({ capacityPerInstance: 100, stepMs: 60_000, minConfidence: 0 });
    let last = { serving: 0, pool: 0 };
    for (let step = 0; step < 200; step++) {
      const now = step * 60_000;
      s.observe(now, loadAt(step));
      last = s.decide(now, { serving: 10, pool: 0, poolReady: 0, load: loadAt(step) });
    }
    expect(last.pool).toBeGreaterThanOrEqual(1);
  });
});

describe('PredictiveScaler warm pool from history', () => {
  // About 630 req/s (10 instances at 70 req/s each) with a rise to 1890 for 3 steps every 40 steps:
  // growth within a cold start is about 0 most of the time and +200 % before a rise.
  const spiky = (step: number): number => (step % 40 >= 37 ? 1890 : 630 + (step % 3));
  function poolAfter(
    extra: { poolGrowthQuantile?: number | false; burstPool?: boolean },
    steps: number,
  ): number {
    const s = new PredictiveScaler({
      capacityPerInstance: 100,
      targetUtilization: 0.7,
      stepMs: 60_000,
      coldLeadMs: 120_000,
      decisionIntervalMs: 60_000,
      minConfidence: 2,
      warmPool: { minConfidence: 2, peakFraction: 0, minSize: 0 },
      ...extra,
    });
    let pool = 0;
    for (let step = 0; step < steps; step++) {
      const now = step * 60_000;
      s.observe(now, spiky(step));
      pool = s.decide(now, { serving: 10, pool, poolReady: pool, load: spiky(step) }).pool;
    }
    return pool;
  }
  it('sizes the pool to the growth quantile of the history, without a forecast', () => {
    // At a flat step the 10 serving cover the load, and no forecast counts: no pool.
    expect(poolAfter({ poolGrowthQuantile: false }, 396)).toBe(0);
    // The 0.99-quantile of growth is about +200 %: ≈ 3 × 632 → 28 instances, 18 beyond the serving set.
    const pool = poolAfter({ poolGrowthQuantile: 0.99 }, 396);
    expect(pool).toBeGreaterThanOrEqual(17);
    expect(pool).toBeLessThanOrEqual(18);
    // The 0.7-quantile is a flat step's growth (≈ 0): no pool.
    expect(poolAfter({ poolGrowthQuantile: 0.7 }, 396)).toBe(0);
  });
});

describe('PredictiveScaler warm hold', () => {
  // The square wave of `loadAt`, learnt for 300 steps; then, two steps before a rise (step 308, load
  // 700, the rise at 310), an over-provisioned serving set of 30 with 5 echoes ready.
  function at308(warmHold: boolean): { serving: number; pool: number; reason: string } {
    const s = new PredictiveScaler({
      capacityPerInstance: 100,
      targetUtilization: 0.7,
      stepMs: 60_000,
      coldLeadMs: 120_000,
      warmLeadMs: 5_000,
      decisionIntervalMs: 60_000,
      warmHold,
      guards: { scaleInCooldownMs: 0 },
    });
    let serving = 10;
    let pool = 1;
    for (let step = 0; step < 308; step++) {
      const now = step * 60_000;
      s.observe(now, loadAt(step));
      const d = s.decide(now, { serving, pool, poolReady: pool, load: loadAt(step) });
      serving = d.serving;
      pool = d.pool;
    }
    s.observe(308 * 60_000, 700);
    const d = s.decide(308 * 60_000, { serving: 30, pool: 5, poolReady: 5, load: 700 });
    return { serving: d.serving, pool: d.pool, reason: d.decisions.map((x) => x.reason).join(' | ') };
  }
  it('releases what the warm lead does not need into the pool, keeping what a cold start would', () => {
    const cold = at308(false);
    const warm = at308(true);
    // Without it, the rise within a cold start holds the serving set.
    expect(cold.serving).toBe(30);
    // With it, the serving set drops to what the next promotion's horizon needs…
    expect(warm.serving).toBeLessThan(20);
    // …and the released instances the rise needs stay warm: serving plus pool still cover it.
    expect(warm.serving + warm.pool).toBeGreaterThanOrEqual(30);
    expect(warm.reason).toMatch(/kept warm/);
  });
});

describe('PredictiveScaler warm window', () => {
  // Irregular load (pseudo-random noise) the forecast cannot be confident of, then a burst to 2800
  // and, one step later, a fall back to 140.
  let x = 12345;
  const noisy = (): number => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return 50 + (x / 2147483648) * 1200;
  };
  function afterBurst(warmWindow: boolean): {
    serving: number;
    pool: number;
    confidence: number;
    reason: string;
  } {
    const s = new PredictiveScaler({
      capacityPerInstance: 100,
      targetUtilization: 0.7,
      stepMs: 60_000,
      coldLeadMs: 120_000,
      warmLeadMs: 5_000,
      decisionIntervalMs: 60_000,
      warmWindow,
      guards: { scaleInCooldownMs: 0, maxActionsPerWindow: 1000 },
    });
    let serving = 5;
    let pool = 2;
    const step = (i: number, load: number) => {
      s.observe(i * 60_000, load);
      const d = s.decide(i * 60_000, { serving, pool, poolReady: pool, load });
      serving = d.serving;
      pool = d.pool;
      return d;
    };
    x = 12345;
    for (let i = 0; i < 200; i++) step(i, noisy());
    step(200, 2800);
    const d = step(201, 140);
    return { serving, pool, confidence: d.confidence, reason: d.decisions.map((r) => r.reason).join(' | ') };
  }
  it('with a ready echo and an unconfident forecast, lets a burst go from the serving set at once and keeps it warm', () => {
    const held = afterBurst(false);
    const warm = afterBurst(true);
    expect(warm.confidence).toBeLessThan(0.5); // below minConfidence: the forecast does not count
    // With it the serving set follows the load down to what the reactive rule asks for…
    expect(warm.serving).toBe(2); // ⌈140 / 70⌉
    expect(held.serving).toBeGreaterThan(warm.serving);
    // …and the burst's serving set (⌈2800 / 70⌉ = 40) that the window held waits in the pool.
    expect(warm.serving + warm.pool).toBeGreaterThanOrEqual(40);
    expect(held.serving + held.pool).toBeLessThan(40);
    expect(warm.reason).toMatch(/kept warm/);
  });
});
