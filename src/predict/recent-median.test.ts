import { describe, expect, it } from 'vitest';
import { RecentMedianModel } from './recent-median.js';

describe('RecentMedianModel', () => {
  it('forecasts the median of the last window values, ignoring a single spike', () => {
    const m = new RecentMedianModel(5);
    expect(Number.isNaN(m.predict())).toBe(true);
    for (const x of [3, 1, 2]) m.observe(x);
    expect(m.predict()).toBe(2);
    for (const x of [100, 2, 4, 5]) m.observe(x);
    // Window now [2, 100, 2, 4, 5] → sorted [2, 2, 4, 5, 100].
    expect(m.predict()).toBe(4);
  });

  it('evicts the oldest value once the window is full', () => {
    const m = new RecentMedianModel(3);
    for (const x of [9, 9, 9, 1, 1]) m.observe(x);
    expect(m.predict()).toBe(1);
  });
});
