import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decideHorizontal,
  initialHorizontalState,
  reactiveCount,
  resolveHorizontalPolicyOptions,
} from './horizontal-policy.js';
import type { HorizontalSignals, HorizontalState } from './horizontal-policy.js';

// 100 req/s per instance at 70 % → 70 req/s per instance for the reactive rule.
const o = resolveHorizontalPolicyOptions({
  capacityPerInstance: 100,
  targetUtilization: 0.7,
  guards: { scaleInCooldownMs: 0 },
});
const fc90 = (upper: number, mean = upper * 0.8) => ({ horizonMs: 120_000, mean, lower: mean * 0.8, upper });

describe('decideHorizontal', () => {
  it('scales out ahead of the load to what the forecast upper bound needs', () => {
    const r = decideHorizontal(
      o,
      initialHorizontalState(),
      { current: 5, load: 350, confidence: 0.9, forecast: fc90(900, 700) },
      0,
    );
    // upper 900 at 100 % → 9; mean 700 at 70 % → 10; reactive 350/70 = 5 (within tolerance).
    expect(r.desired).toBe(10);
    expect(r.decisions[0]).toMatchObject({
      kind: 'scale-out',
      from: 5,
      to: 10,
      applied: true,
      inputs: { reactive: 5, predictive: 10, confidence: 0.9 },
    });
    expect(r.decisions[0]!.reason).toMatch(/forecast/);
  });
  it("holds a scale-in at the seasonal profile's count, and ignores it for a scale-out", () => {
    const noWindow = resolveHorizontalPolicyOptions({
      capacityPerInstance: 100,
      targetUtilization: 0.7,
      scaleInStabilizationMs: 0,
      guards: { scaleInCooldownMs: 0 },
    });
    // 140 req/s on 10: reactive 2; the profile needs 6 within the horizon → 6, not 2.
    const held = decideHorizontal(
      noWindow,
      initialHorizontalState(),
      { current: 10, load: 140, confidence: 0, seasonalHold: 6 },
      0,
    );
    expect(held.desired).toBe(6);
    const free = decideHorizontal(
      noWindow,
      initialHorizontalState(),
      { current: 10, load: 140, confidence: 0 },
      0,
    );
    expect(free.desired).toBe(2);
    // A profile of 20 does not scale a set of 10 out: it stays at 10.
    const out = decideHorizontal(
      noWindow,
      initialHorizontalState(),
      { current: 10, load: 140, confidence: 0, seasonalHold: 20 },
      0,
    );
    expect(out.desired).toBe(10);
  });
  it('never goes below the reactive rule when the forecast is low', () => {
    const r = decideHorizontal(
      o,
      initialHorizontalState(),
      { current: 5, load: 1400, confidence: 0.9, forecast: fc90(100) },
      0,
    );
    expect(r.desired).toBe(20);
    expect(r.decisions[0]!.inputs.predictive).toBe(2);
  });
  it('ignores a forecast with low confidence and acts on the reactive rule only', () => {
    const r = decideHorizontal(
      o,
      initialHorizontalState(),
      { current: 5, load: 350, confidence: 0.1, forecast: fc90(5000) },
      0,
    );
    expect(r.desired).toBe(5);
    const up = decideHorizontal(
      o,
      initialHorizontalState(),
      { current: 5, load: 700, confidence: 0.1, forecast: fc90(5000) },
      0,
    );
    expect(up.desired).toBe(10);
    expect(up.decisions[0]!.reason).toMatch(/reactive only/);
    expect(up.decisions[0]!.inputs.predictive).toBeUndefined();
  });
  it('scales in only after the stabilisation window has passed', () => {
    let s: HorizontalState = initialHorizontalState();
    const sig = (load: number): HorizontalSignals => ({ current: 10, load, confidence: 0 });
    s = decideHorizontal(o, s, sig(700), 0).state; // recommendation 10
    for (let t = 15_000; t < 300_000; t += 15_000) {
      const r = decideHorizontal(o, s, sig(140), t); // wants 2
      expect(r.desired).toBe(10);
      s = r.state;
    }
    const r = decideHorizontal(o, s, sig(140), 300_000);
    expect(r.desired).toBe(2);
    expect(r.decisions[0]).toMatchObject({ kind: 'scale-in', applied: true });
  });
  it('while confident, scales in as soon as the forecast over the re-provisioning horizon allows', () => {
    let s: HorizontalState = initialHorizontalState();
    const low = { horizonMs: 135_000, mean: 140, lower: 120, upper: 180 };
    const sig = (load: number): HorizontalSignals => ({
      current: 10,
      load,
      confidence: 0.9,
      forecast: low,
      holdForecast: low,
    });
    s = decideHorizontal(o, s, sig(700), 0).state; // reactive recommendation 10 in the window
    const r = decideHorizontal(o, s, sig(140), 15_000);
    // No 300 s wait: reactive 2, predictive max(⌈140/70⌉, ⌈180/100⌉) = 2.
    expect(r.desired).toBe(2);
    expect(r.hold).toBe(2);
    expect(r.decisions[0]).toMatchObject({ kind: 'scale-in', applied: true, inputs: { hold: 2 } });
    expect(r.decisions[0]!.reason).toMatch(/forecast upper 180/);
  });
  it('while confident, holds a scale-in at what the forecast upper bound over the re-provisioning horizon needs', () => {
    const r = decideHorizontal(
      o,
      initialHorizontalState(),
      {
        current: 10,
        load: 140,
        confidence: 0.9,
        forecast: { horizonMs: 20_000, mean: 140, lower: 120, upper: 180 },
        // A rise within a cold start: releasing now would leave it short before it could come back.
        holdForecast: { horizonMs: 135_000, mean: 500, lower: 400, upper: 600 },
      },
      0,
    );
    expect(r.desired).toBe(8); // max(⌈500/70⌉, ⌈600/100⌉) = 8
    expect(r.decisions[0]!.reason).toMatch(/held at 8/);
  });
  it('falls back to the stabilisation window when confidence drops (unconfidentHold off)', () => {
    const windowOnly = resolveHorizontalPolicyOptions({
      capacityPerInstance: 100,
      targetUtilization: 0.7,
      unconfidentHold: false,
      guards: { scaleInCooldownMs: 0 },
    });
    let s: HorizontalState = initialHorizontalState();
    const low = { horizonMs: 135_000, mean: 140, lower: 120, upper: 180 };
    s = decideHorizontal(windowOnly, s, { current: 10, load: 700, confidence: 0.9, forecast: low }, 0).state;
    const r = decideHorizontal(
      windowOnly,
      s,
      { current: 10, load: 140, confidence: 0.2, forecast: low, holdForecast: low },
      15_000,
    );
    expect(r.desired).toBe(10);
    expect(r.predictive).toBeUndefined();
  });
  it('without confidence, scales in below the window only as far as the forecast upper bound over the horizon allows', () => {
    let s: HorizontalState = initialHorizontalState();
    s = decideHorizontal(o, s, { current: 10, load: 700, confidence: 0.2 }, 0).state;
    // The window still holds 10; the unconfident forecast's upper bound 450 needs 5 at 100 %, its
    // mean 300 needs 5 at 70 %: the scale-in goes to 5, not to the reactive 2.
    const wide = { horizonMs: 135_000, mean: 300, lower: 50, upper: 450 };
    const r = decideHorizontal(
      o,
      s,
      { current: 10, load: 140, confidence: 0.2, forecast: wide, holdForecast: wide },
      15_000,
    );
    expect(r.desired).toBe(5);
    expect(r.predictive).toBeUndefined();
    expect(r.decisions[0]).toMatchObject({ kind: 'scale-in', applied: true, inputs: { hold: 5 } });
    // A forecast asking for more than the window keeps the window's count: the hold only lowers it.
    const high = { horizonMs: 135_000, mean: 1400, lower: 700, upper: 2000 };
    const h = decideHorizontal(
      o,
      s,
      { current: 10, load: 140, confidence: 0.2, forecast: high, holdForecast: high },
      15_000,
    );
    expect(h.desired).toBe(10);
  });
  it('with windowAsEchoes, scales in to the reactive count at once and reports what the window held as echoes to keep', () => {
    let s: HorizontalState = initialHorizontalState();
    s = decideHorizontal(o, s, { current: 10, load: 700, confidence: 0.2 }, 0).state; // window holds 10
    const wide = { horizonMs: 20_000, mean: 300, lower: 50, upper: 450 };
    const sig = { current: 10, load: 140, confidence: 0.2, forecast: wide, holdForecast: wide };
    // Without it the window (capped by the unconfident hold) keeps 5 serving.
    expect(decideHorizontal(o, s, sig, 15_000).desired).toBe(5);
    const r = decideHorizontal(o, s, { ...sig, windowAsEchoes: true }, 15_000);
    // With it: the reactive 2 serve, the window's other 8 are kept warm.
    expect(r.desired).toBe(2);
    expect(r.reserve).toBe(8);
    expect(r.decisions[0]).toMatchObject({ kind: 'scale-in', applied: true });
    expect(r.decisions[0]!.reason).toMatch(/8 more kept warm/);
    // Once the window has passed, nothing more is kept.
    const later = decideHorizontal(o, r.state, { ...sig, current: 2, windowAsEchoes: true }, 400_000);
    expect(later.reserve).toBe(0);
  });
  it("with windowAsEchoes, leaves a confident forecast's hold as it is", () => {
    const warm = { horizonMs: 20_000, mean: 140, lower: 120, upper: 180 };
    const cold = { horizonMs: 135_000, mean: 500, lower: 400, upper: 600 };
    const sig = {
      current: 10,
      load: 140,
      confidence: 0.9,
      forecast: warm,
      holdForecast: warm,
      reserveForecast: cold,
    };
    const a = decideHorizontal(o, initialHorizontalState(), sig, 0);
    const b = decideHorizontal(o, initialHorizontalState(), { ...sig, windowAsEchoes: true }, 0);
    expect({ desired: b.desired, reserve: b.reserve }).toEqual({ desired: a.desired, reserve: a.reserve });
  });
  it('reports as reserve what the forecast over a cold start needs beyond a scale-in held at the warm lead', () => {
    const warm = { horizonMs: 20_000, mean: 140, lower: 120, upper: 180 };
    const cold = { horizonMs: 135_000, mean: 500, lower: 400, upper: 600 };
    const r = decideHorizontal(
      o,
      initialHorizontalState(),
      { current: 10, load: 140, confidence: 0.9, forecast: warm, holdForecast: warm, reserveForecast: cold },
      0,
    );
    // Held at the warm lead: ⌈180/100⌉ = 2 (the reactive 2); the cold horizon needs 8: 6 kept warm.
    expect(r.desired).toBe(2);
    expect(r.reserve).toBe(6);
    expect(r.decisions[0]!.reason).toMatch(/6 kept warm/);
  });
  it('applies the reactive tolerance to the forecast mean: no scale-out for a mean within it', () => {
    // 10 instances at 70 req/s each serve 700 at target; a mean of 750 is 7 % above: within 10 %.
    const r = decideHorizontal(
      o,
      initialHorizontalState(),
      {
        current: 10,
        load: 700,
        confidence: 0.9,
        forecast: { horizonMs: 20_000, mean: 750, lower: 700, upper: 800 },
      },
      0,
    );
    expect(r.desired).toBe(10);
    expect(r.predictive).toBe(10);
    const up = decideHorizontal(
      o,
      initialHorizontalState(),
      {
        current: 10,
        load: 700,
        confidence: 0.9,
        forecast: { horizonMs: 20_000, mean: 800, lower: 700, upper: 900 },
      },
      0,
    );
    expect(up.desired).toBe(12); // ⌈800/70⌉ = 12
  });
  it('records the decision without acting in forecast-only mode', () => {
    const dry = resolveHorizontalPolicyOptions({ capacityPerInstance: 100, mode: 'forecast-only' });
    const r = decideHorizontal(
      dry,
      initialHorizontalState(),
      { current: 5, load: 350, confidence: 0.9, forecast: fc90(900, 700) },
      0,
    );
    expect(r.desired).toBe(5);
    expect(r.decisions).toHaveLength(1);
    expect(r.decisions[0]).toMatchObject({ kind: 'scale-out', to: 10, applied: false });
    expect(r.decisions[0]!.reason).toMatch(/^forecast-only/);
    expect(r.state.guards.actionTimes).toEqual([]);
  });
  it('holds a scale-out back during the cooldown and says so', () => {
    const g = resolveHorizontalPolicyOptions({
      capacityPerInstance: 100,
      guards: { scaleOutCooldownMs: 60_000 },
    });
    const r1 = decideHorizontal(g, initialHorizontalState(), { current: 2, load: 700, confidence: 0 }, 0);
    expect(r1.desired).toBe(10);
    const r2 = decideHorizontal(g, r1.state, { current: 10, load: 1400, confidence: 0 }, 30_000);
    expect(r2.desired).toBe(10);
    expect(r2.decisions[0]).toMatchObject({ applied: false, to: 20 });
    expect(r2.decisions[0]!.reason).toMatch(/cooldown/);
    expect(decideHorizontal(g, r2.state, { current: 10, load: 1400, confidence: 0 }, 60_000).desired).toBe(
      20,
    );
  });
  it('allows at most maxActionsPerWindow actions per window', () => {
    const g = resolveHorizontalPolicyOptions({
      capacityPerInstance: 100,
      guards: { maxActionsPerWindow: 2, actionWindowMs: 600_000 },
    });
    let s = initialHorizontalState();
    let current = 1;
    const outcomes: boolean[] = [];
    for (let i = 1; i <= 3; i++) {
      const r = decideHorizontal(g, s, { current, load: 70 * current * 2, confidence: 0 }, i * 1000);
      outcomes.push(r.decisions[0]!.applied);
      s = r.state;
      current = r.desired;
    }
    expect(outcomes).toEqual([true, true, false]);
    expect(
      decideHorizontal(g, s, { current, load: 70 * current * 2, confidence: 0 }, 601_001).decisions[0]!
        .applied,
    ).toBe(true);
  });
  it('keeps within min and max bounds', () => {
    const g = resolveHorizontalPolicyOptions({
      capacityPerInstance: 100,
      guards: { minCount: 3, maxCount: 8 },
    });
    expect(
      decideHorizontal(g, initialHorizontalState(), { current: 5, load: 10_000, confidence: 0 }, 0).desired,
    ).toBe(8);
    expect(
      decideHorizontal(g, initialHorizontalState(), { current: 1, load: 0, confidence: 0 }, 0).desired,
    ).toBe(3);
  });
  it('serving plus reserve never falls below what the cold-horizon forecast needs while confident (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.double({ min: 0, max: 10_000, noNaN: true }),
        fc.integer({ min: 0, max: 300_000 }),
        (current, load, warmUpper, coldExtra, cooldown) => {
          const p = resolveHorizontalPolicyOptions({
            capacityPerInstance: 100,
            guards: { maxCount: 150, scaleInCooldownMs: cooldown },
          });
          const warm = { horizonMs: 20_000, mean: warmUpper * 0.8, lower: 0, upper: warmUpper };
          const coldUpper = warmUpper + coldExtra;
          const cold = { horizonMs: 135_000, mean: coldUpper * 0.8, lower: 0, upper: coldUpper };
          const r = decideHorizontal(
            p,
            initialHorizontalState(),
            { current, load, confidence: 0.9, forecast: warm, holdForecast: warm, reserveForecast: cold },
            0,
          );
          const need = Math.min(150, Math.max(1, Math.ceil(coldUpper / 100 - 1e-9)));
          expect(r.desired + r.reserve).toBeGreaterThanOrEqual(Math.min(need, Math.max(current, r.desired)));
          expect(r.reserve).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 300 },
    );
  });
  it('never asks for fewer instances than the reactive rule and stays within bounds (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.double({ min: 0, max: 30_000, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.option(
          fc.tuple(
            fc.double({ min: 0, max: 30_000, noNaN: true }),
            fc.double({ min: 0, max: 30_000, noNaN: true }),
          ),
        ),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 10, max: 150 }),
        (current, load, confidence, f, minCount, maxCount) => {
          const p = resolveHorizontalPolicyOptions({
            capacityPerInstance: 100,
            guards: { minCount, maxCount, scaleInCooldownMs: 0 },
          });
          const forecast = f
            ? { horizonMs: 60_000, mean: Math.min(f[0], f[1]), lower: 0, upper: Math.max(f[0], f[1]) }
            : undefined;
          const r = decideHorizontal(
            p,
            initialHorizontalState(),
            { current, load, confidence, ...(forecast ? { forecast } : {}) },
            0,
          );
          expect(r.desired).toBeGreaterThanOrEqual(
            Math.min(p.guards.maxCount, Math.max(p.guards.minCount, reactiveCount(p, load, current))),
          );
          expect(r.desired).toBeGreaterThanOrEqual(minCount);
          expect(r.desired).toBeLessThanOrEqual(maxCount);
        },
      ),
      { numRuns: 500 },
    );
  });
});
