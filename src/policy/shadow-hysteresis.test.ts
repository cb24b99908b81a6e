import { describe, expect, it } from 'vitest';
import { initialShadowAlarmState, smoothShadowSignal, stepShadowAlarm } from './shadow-hysteresis.js';
import type { ShadowAlarmState, ShadowSignal } from './shadow-hysteresis.js';

const signal = (delta: number, extra: Partial<ShadowSignal> = {}): ShadowSignal => ({
  liveLoad: 0.5,
  shadowLoad: 0.5 * (1 + delta),
  delta,
  shadowUtilisation: 0.4,
  shadows: 1,
  ...extra,
});

const o = { threshold: 0.25, clearFraction: 0.8, streak: 3 };

/** Runs the alarm over a series of deltas; returns the changes, as `[index, raised]`. */
function run(
  deltas: readonly number[],
  from: ShadowAlarmState = initialShadowAlarmState(),
): Array<[number, boolean]> {
  let s = from;
  const changes: Array<[number, boolean]> = [];
  deltas.forEach((d, i) => {
    const r = stepShadowAlarm(o, s, signal(d));
    s = r.state;
    if (r.changed !== undefined) changes.push([i, r.changed]);
  });
  return changes;
}

describe('shadow alarm hysteresis', () => {
  it('rises only after three samples in a row above the threshold', () => {
    expect(run([0.3, 0.3])).toEqual([]);
    expect(run([0.3, 0.3, 0.3])).toEqual([[2, true]]);
  });

  it('counts a negative delta by its size', () => {
    expect(run([-0.3, -0.3, -0.3])).toEqual([[2, true]]);
  });

  it('does not rise at exactly the threshold', () => {
    expect(run([0.25, 0.25, 0.25, 0.25])).toEqual([]);
  });

  it('restarts the streak when a sample comes back below the threshold', () => {
    expect(run([0.3, 0.3, 0.1, 0.3, 0.3])).toEqual([]);
  });

  it('once raised, stays up between 80 % of the threshold and the threshold, and clears below', () => {
    const raised: ShadowAlarmState = { alarm: true, streak: 0 };
    // 0.21 > 0.8 × 0.25 = 0.2: still diverging.
    expect(run([0.21, 0.21, 0.21, 0.21], raised)).toEqual([]);
    // 0.2 is not above 0.2: agreeing, three in a row clear it.
    expect(run([0.2, 0.2, 0.2], raised)).toEqual([[2, false]]);
  });

  it('rises on the rate delta too', () => {
    let s = initialShadowAlarmState();
    let changed: boolean | undefined;
    for (let i = 0; i < 3; i++) {
      const r = stepShadowAlarm(o, s, signal(0, { rate: { live: 100, shadow: 50, relative: 1 } }));
      s = r.state;
      changed = r.changed;
    }
    expect(changed).toBe(true);
    expect(s).toEqual({ alarm: true, streak: 0 });
  });
});

describe('smoothShadowSignal', () => {
  it('mixes a new sample in with weight alpha and recomputes the delta from the smoothed loads', () => {
    const prev = signal(0, { liveLoad: 0.5, shadowLoad: 0.5, shadowUtilisation: 0.2 });
    const next = signal(1, { liveLoad: 0.5, shadowLoad: 1.5, shadowUtilisation: 0.6 });
    const s = smoothShadowSignal(prev, next, 0.3);
    expect(s?.shadowLoad).toBeCloseTo(0.8);
    expect(s?.liveLoad).toBeCloseTo(0.5);
    expect(s?.delta).toBeCloseTo(0.6);
    expect(s?.shadowUtilisation).toBeCloseTo(0.32);
  });

  it('restarts from the new sample when the number of shadows changes, and ends without one', () => {
    const prev = signal(0);
    const next = signal(1, { shadows: 2 });
    expect(smoothShadowSignal(prev, next, 0.3)).toBe(next);
    expect(smoothShadowSignal(undefined, next, 0.3)).toBe(next);
    expect(smoothShadowSignal(prev, undefined, 0.3)).toBeUndefined();
  });
});
