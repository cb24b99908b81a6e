import { describe, expect, it } from 'vitest';
import { RangeBreach } from './range-breach.js';

describe('RangeBreach', () => {
  it('flags a value beyond the range seen by more than the tolerance, on either side', () => {
    const r = new RangeBreach(0.05);
    for (const v of [0, 10, 5]) r.observe(v);
    expect(r.update(10.4)).toBe(false); // within 5 % of the range (0.5) above the maximum
    expect(r.update(11.2)).toBe(true);
    expect(r.update(-0.8)).toBe(true); // the range is now [0, 11.2]: margin 0.56
    expect(r.update(-1.2)).toBe(false); // range now [-0.8, 11.2]: margin 0.6, -0.8 - 0.6 = -1.4
  });

  it('widens its range with every value, so a repeated level is no longer a breach', () => {
    const r = new RangeBreach(0.05);
    for (const v of [0, 1]) r.observe(v);
    expect(r.update(5)).toBe(true);
    expect(r.update(5)).toBe(false);
  });

  it('judges nothing before it has seen a range', () => {
    const r = new RangeBreach(0.05);
    expect(r.update(3)).toBe(false);
    expect(r.update(3)).toBe(false);
    expect(r.update(100)).toBe(false); // still no range: min = max = 3
    expect(r.update(200)).toBe(true); // range [3, 100]
  });
});
