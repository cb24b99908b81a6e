import { describe, expect, it } from 'vitest';
import { decideWarmPool, resolveWarmPoolOptions } from './warm-pool-policy.js';

// 100 requests/s per instance at 100 %, target 0.5: 50 requests/s per serving instance.
const o = resolveWarmPoolOptions({ capacityPerInstance: 100, targetUtilization: 0.5, peakFraction: 0.1 });

describe('decideWarmPool with a growth quantile', () => {
  it('covers the growth-quantile peak beyond the serving set, plus the hedge of that peak', () => {
    // Load 200 on 4 serving; the growth quantile says up to 500 within a cold start: 10 instances,
    // 6 for growth + ⌈0.1 × 10⌉ = 1 hedge.
    const r = decideWarmPool(o, { serving: 4, pool: 1, load: 200, confidence: 0, growthPeak: 500 }, 0);
    expect(r.desired).toBe(7);
    expect(r.decisions[0]!.reason).toContain('from the growth quantile');
  });
  it('counts the growth peak whatever the confidence, and the forecast only when confident', () => {
    const peak = { horizonMs: 1, mean: 300, lower: 200, upper: 800 };
    // Not confident: the forecast's 800 is ignored, the growth peak's 300 counts (6 instances: 2 + 1).
    expect(
      decideWarmPool(o, { serving: 4, pool: 0, load: 200, confidence: 0, peak, growthPeak: 300 }, 0).desired,
    ).toBe(3);
    // Confident: the larger of the two, the forecast's 800 (16 instances: 12 + 2).
    expect(
      decideWarmPool(o, { serving: 4, pool: 0, load: 200, confidence: 0.9, peak, growthPeak: 300 }, 0)
        .desired,
    ).toBe(14);
  });
  it('keeps the hedge of the current load when the growth peak is below it', () => {
    // Load 200: 4 instances, no growth, ⌈0.4⌉ = 1 hedge.
    expect(
      decideWarmPool(o, { serving: 4, pool: 0, load: 200, confidence: 0, growthPeak: 100 }, 0).desired,
    ).toBe(1);
  });
  it('keeps the reserve of released instances the forecast still needs, and says so', () => {
    // Load 200 on 4: no growth, 1 hedge; 5 released instances are still needed within a cold start.
    const r = decideWarmPool(o, { serving: 4, pool: 0, load: 200, confidence: 0, reserve: 5 }, 0);
    expect(r.desired).toBe(5);
    expect(r.decisions[0]!.reason).toContain('5 released but needed within a cold start');
    // A reserve below growth + hedge changes nothing.
    expect(decideWarmPool(o, { serving: 4, pool: 0, load: 200, confidence: 0, reserve: 1 }, 0).desired).toBe(
      1,
    );
  });
});
