import { describe, expect, it } from 'vitest';
import { estimateCapacity, resolveCapacityEstimateOptions } from './capacity-estimate.js';
import type { CapacityEstimateState } from './capacity-estimate.js';

const o = resolveCapacityEstimateOptions();

/** Feeds `[load, utilisation]` samples; returns the final state and the reports. */
function feed(
  samples: ReadonlyArray<readonly [number, number]>,
  from: CapacityEstimateState = { samples: [] },
) {
  let s = from;
  const reports: Array<{ perInstance: number; before?: number }> = [];
  for (const [load, u] of samples) {
    const r = estimateCapacity(o, s, load, u);
    s = r.state;
    if (r.report)
      reports.push({
        perInstance: r.report.perInstance,
        ...(r.report.before !== undefined ? { before: r.report.before } : {}),
      });
  }
  return { state: s, reports };
}

describe('estimateCapacity', () => {
  it('has the defaults 5 samples, a window of 30, 5 % utilisation and a 25 % change', () => {
    expect(o).toEqual({ minUtilisation: 0.05, minSamples: 5, window: 30, reportChange: 0.25 });
  });

  it('knows nothing before five loaded samples, then reports their median of load ÷ utilisation', () => {
    const four = feed([
      [100, 1],
      [300, 1],
      [200, 1],
      [50, 0.5],
    ]);
    expect(four.state.estimate).toBeUndefined();
    const five = feed([[500, 1]], four.state);
    // 100, 300, 200, 100, 500 → median 200.
    expect(five.state.estimate).toEqual({ perInstance: 200, source: 'measured' });
    expect(five.reports).toEqual([{ perInstance: 200 }]);
  });

  it('skips samples with no load or below the utilisation floor (the floor itself counts)', () => {
    const r = feed([
      [100, 0.049],
      [0, 1],
      [10, 0.05],
    ]);
    expect(r.state.samples).toEqual([200]);
  });

  it('reports a new estimate only when it moves by more than a quarter', () => {
    const start: CapacityEstimateState = {
      samples: [100, 100, 100, 100, 100],
      estimate: { perInstance: 100, source: 'measured' },
    };
    const six = (load: number) => Array.from({ length: 6 }, () => [load, 1] as const);
    // 100×5, 125×6 → median 125: a move of exactly 25 %, not reported (but the estimate follows).
    const small = feed(six(125), start);
    expect(small.state.estimate?.perInstance).toBe(125);
    expect(small.reports).toEqual([]);
    // 100×5, 200×6 → median 200: reported, with the figure it replaces.
    const big = feed(six(200), start);
    expect(big.reports.at(-1)).toEqual({ perInstance: 200, before: 100 });
  });

  it('keeps only the last 30 samples', () => {
    const r = feed(Array.from({ length: 40 }, (_, i) => [i + 1, 1] as const));
    expect(r.state.samples).toHaveLength(30);
    expect(r.state.samples[0]).toBe(11);
  });

  it('never replaces a configured capacity', () => {
    const spec: CapacityEstimateState = { samples: [], estimate: { perInstance: 400, source: 'spec' } };
    const r = feed(
      Array.from({ length: 10 }, () => [100, 1] as const),
      spec,
    );
    expect(r.state).toBe(spec);
    expect(r.reports).toEqual([]);
  });
});
