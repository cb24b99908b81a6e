import { describe, expect, it } from 'vitest';
import {
  createScalingPolicy,
  initialScalingState,
  resolveScalingOptions,
  scalingStep,
} from './scaling-step.js';
import type {
  ScalingCounts,
  ScalingObservation,
  ScalingOptions,
  ScalingRecord,
  ScalingState,
} from './scaling-step.js';

/** Reactive only (the forecast never counts): capacity 100 at target 0.5, i.e. 50 requests/s per instance. */
const reactive = (over: Partial<ScalingOptions> = {}): ScalingOptions => ({
  scaler: {
    capacityPerInstance: 100,
    targetUtilization: 0.5,
    stepMs: 1000,
    decisionIntervalMs: 1000,
    coldLeadMs: 2000,
    warmLeadMs: 500,
    scaleInStabilizationMs: 0,
    minConfidence: 2,
    guards: { minCount: 1, maxCount: 20, scaleInCooldownMs: 0 },
    // The pool too: the hedge on the load only.
    warmPool: { minSize: 0, maxSize: 10, peakFraction: 0.5, minConfidence: 2 },
    poolGrowthQuantile: false,
  },
  capacity: 100,
  ...over,
});

/** The same without a configured capacity: it has to be measured. */
function unmeasured(): ScalingOptions {
  const { capacity: _c, ...o } = reactive();
  return o;
}

/** A world that does what the step asks at once. */
function runner(options: ScalingOptions) {
  const policy = createScalingPolicy(resolveScalingOptions(options));
  let state: ScalingState = initialScalingState(policy.options);
  let desired: ScalingCounts = { serving: 1, echoes: 0, shadows: 0 };
  const records: ScalingRecord[] = [];
  return {
    step(now: number, load: number, extra: Partial<ScalingObservation> = {}) {
      const r = scalingStep(
        policy,
        state,
        {
          load,
          serving: desired.serving,
          pool: desired.echoes,
          poolReady: desired.echoes,
          desired,
          ...extra,
        },
        now,
      );
      state = r.state;
      records.push(...r.records);
      if (r.decision) desired = r.decision.counts;
      return r;
    },
    get state() {
      return state;
    },
    records,
  };
}

describe('scalingStep', () => {
  it('resolves its defaults from the scaler: the decision interval, the pool window = the scale-in window', () => {
    const o = resolveScalingOptions({ scaler: { capacityPerInstance: 1, scaleInStabilizationMs: 7000 } });
    expect(o).toMatchObject({
      decisionIntervalMs: 15_000,
      poolStabilizationMs: 7000,
      minPool: 0,
      minShadows: 0,
      spikeShadows: false,
      targetUtilization: 0.7,
      shadowDeltaThreshold: 0.25,
      shadowClearFraction: 0.8,
      shadowStreak: 3,
      shadowAlpha: 0.3,
      shadowSaturation: 0.9,
    });
  });

  it('decides once per interval: again at exactly the interval, not before', () => {
    const r = runner(reactive({ decisionIntervalMs: 1000 }));
    expect(r.step(0, 50).decision).toBeDefined();
    expect(r.step(999, 50).decision).toBeUndefined();
    expect(r.step(1000, 50).decision).toBeDefined();
  });

  it('scales out to the reactive count and asks to act; then holds still without acting', () => {
    const r = runner(reactive());
    const out = r.step(0, 300);
    expect(out.decision?.counts.serving).toBe(6);
    expect(out.decision?.act).toBe(true);
    expect(r.records[0]).toMatchObject({ type: 'decision', decision: { kind: 'scale-out', from: 1, to: 6 } });
    const still = r.step(1000, 300);
    expect(still.decision?.act).toBe(false);
  });

  it('decides nothing while busy (a failover), and nothing before a capacity is known', () => {
    expect(runner(reactive()).step(0, 300, { busy: true }).decision).toBeUndefined();
    expect(runner(unmeasured()).step(0, 300).decision).toBeUndefined();
  });

  it('measures an unset capacity from CPU samples, records it, and decides from then on', () => {
    const r = runner(unmeasured());
    const cpu = { servingUtilisation: 0.5 };
    for (let i = 0; i < 4; i++) expect(r.step(i * 1000, 100, { cpu }).decision).toBeUndefined();
    const fifth = r.step(4000, 100, { cpu });
    expect(fifth.records[0]).toMatchObject({ type: 'capacity', perInstance: 200 });
    // 100 requests/s on 200 per instance at 0.5 → 1 instance.
    expect(fifth.decision?.counts.serving).toBe(1);
  });

  it('holds the warm pool up for the pool window after the recommendation drops', () => {
    const r = runner(reactive({ poolStabilizationMs: 3000 }));
    const pools = [400, 400, 50, 50, 50, 50, 50].map(
      (load, i) => r.step(i * 1000, load).decision?.counts.echoes,
    );
    // At 400 the hedge is half of 8 instances; at 50, half of one. It falls at t=4000, when the last
    // recommendation of 4 (t=1000) is exactly the window old.
    expect(pools).toEqual([4, 4, 4, 4, 1, 1, 1]);
    const resizes = r.records.flatMap((x) =>
      x.type === 'decision' && x.decision.kind === 'pool-resize' ? [[x.decision.from, x.decision.to]] : [],
    );
    expect(resizes).toEqual([
      [0, 4],
      [4, 1],
    ]);
  });

  it('keeps at least minPool echoes and minShadows shadows', () => {
    const r = runner(reactive({ minPool: 3, minShadows: 2 }));
    expect(r.step(0, 10).decision?.counts).toEqual({ serving: 1, echoes: 3, shadows: 2 });
  });

  it('reports a decision held back by a guard once, not at every step it stays held', () => {
    const o = reactive();
    const r = runner({
      ...o,
      scaler: {
        ...o.scaler,
        warmPool: false,
        guards: { minCount: 1, maxCount: 20, scaleInCooldownMs: 60_000 },
      },
    });
    r.step(0, 300);
    for (let i = 1; i <= 5; i++) r.step(i * 1000, 50);
    const scaleIns = r.records.filter((x) => x.type === 'decision' && x.decision.kind === 'scale-in');
    expect(scaleIns).toHaveLength(1);
    expect(scaleIns[0]).toMatchObject({ decision: { applied: false, from: 6, to: 1 } });
    expect(r.state.lastDecision).toMatchObject({ kind: 'scale-in', applied: false });
  });

  it('smooths the shadow signal and raises its alarm after three samples beyond the threshold', () => {
    const r = runner(reactive());
    const shadow = { liveLoad: 0.5, shadowLoad: 1, delta: 1, shadowUtilisation: 0.3, shadows: 1 };
    const alarms: number[] = [];
    for (let i = 0; i < 4; i++) {
      const out = r.step(i * 1000, 50, { cpu: { servingUtilisation: 0.5, shadow } });
      if (out.records.some((x) => x.type === 'shadow-alarm' && x.alarm)) alarms.push(i);
    }
    expect(alarms).toEqual([2]);
    expect(r.state.shadow?.delta).toBeCloseTo(1);
  });

  it('wants a spike shadow while the forecast exceeds the serving set at target, and records each change', () => {
    const o = reactive({ spikeShadows: true });
    // Three instances at least: 150 requests/s at target, well above the steady 30.
    const r = runner({
      ...o,
      scaler: { ...o.scaler, guards: { minCount: 3, maxCount: 20, scaleInCooldownMs: 0 } },
    });
    const shadows: number[] = [];
    // A steady 30 requests/s, a ramp the forecast extrapolates, then steady again until it has passed.
    const loads = [
      ...Array<number>(20).fill(30),
      ...Array.from({ length: 10 }, (_, i) => 30 + 40 * i),
      ...Array<number>(60).fill(30),
    ];
    loads.forEach((load, i) => shadows.push(r.step(i * 1000, load).decision?.counts.shadows ?? -1));
    const changes = r.records.flatMap((x) => (x.type === 'spike-shadow' ? [x.change] : []));
    expect(shadows.slice(20, 30)).toContain(1);
    expect(shadows.at(-1)).toBe(0);
    expect(changes.length).toBeGreaterThanOrEqual(2);
    // Each change is recorded exactly where the wanted count changes.
    const flips = shadows.flatMap((n, i) =>
      i > 0 && n !== shadows[i - 1] ? [n === 1 ? 'shadow-create' : 'shadow-retire'] : [],
    );
    expect(flips).toEqual(changes);
  });
});
