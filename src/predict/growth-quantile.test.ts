import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { growthQuantile, GrowthQuantileTracker, quantilePeak } from './growth-quantile.js';

describe('growthQuantile', () => {
  it('takes the nearest-rank quantile of the growth to the highest value within the lead', () => {
    // Lead 1: growths 100→200 = 1, 200→100 = −0.5, 100→150 = 0.5, 150→150 = 0.
    const v = [100, 200, 100, 150, 150];
    expect(growthQuantile(v, 1, 1)).toBeCloseTo(1);
    expect(growthQuantile(v, 1, 0.75)).toBeCloseTo(0.5); // sorted −0.5, 0, 0.5, 1: rank 3
    expect(growthQuantile(v, 1, 0.5)).toBeCloseTo(0); // rank 2
    expect(growthQuantile(v, 1, 0.25)).toBe(0); // rank 1 is −0.5, floored at 0
  });
  it('looks at the peak over the whole lead, not only its end', () => {
    // Lead 2 from 100: max(400, 100) = 400 → +3; from 400: max(100, 100) → −0.75.
    expect(growthQuantile([100, 400, 100, 100], 2, 1)).toBeCloseTo(3);
    expect(growthQuantile([100, 400, 100, 100], 1, 1)).toBeCloseTo(3);
    // The spike is two steps ahead: only a lead of 2 sees it from the first value.
    expect(growthQuantile([100, 100, 400], 2, 0.01)).toBeCloseTo(3);
    expect(growthQuantile([100, 100, 400], 1, 0.01)).toBeCloseTo(0);
  });
  it('skips non-positive bases and gives 0 without a full window', () => {
    expect(growthQuantile([0, 100, 100], 1, 1)).toBe(0);
    expect(growthQuantile([100], 1, 0.9)).toBe(0);
    expect(growthQuantile([100, 200], 3, 0.9)).toBe(0);
  });
});

describe('quantilePeak', () => {
  it('scales the current load by the growth quantile', () => {
    expect(quantilePeak(50, [100, 200, 100, 150, 150], 1, 1)).toBeCloseTo(100);
    expect(quantilePeak(50, [100, 100], 1, 1)).toBeCloseTo(50);
  });
});

describe('GrowthQuantileTracker', () => {
  it('agrees with growthQuantile on the same series when refreshed at every sample', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1000, noNaN: true }), { minLength: 0, maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (values, lead, q) => {
          const t = new GrowthQuantileTracker({ leadSteps: lead, q, refreshEvery: 1 });
          for (const v of values) t.update(v);
          expect(t.quantile).toBeCloseTo(growthQuantile(values, lead, q), 9);
        },
      ),
      { numRuns: 200 },
    );
  });
  it('forgets samples older than its window', () => {
    const t = new GrowthQuantileTracker({ leadSteps: 1, q: 1, window: 2, refreshEvery: 1 });
    for (const v of [100, 300, 300, 300]) t.update(v); // growths 2, 0, 0: the 2 has left the window
    expect(t.samples).toBe(2);
    expect(t.quantile).toBe(0);
  });
});
