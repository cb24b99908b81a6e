import { describe, expect, it } from 'vitest';
import { phaseBin, SeasonalProfile, seasonalProfile } from './seasonal-profile.js';

const H = 3_600_000;
const DAY = 24 * H;

describe('seasonalProfile', () => {
  it('averages the values of each phase bin across periods', () => {
    // Bins of 6 h: day 1 has 10 at 01:00 and 30 at 07:00; day 2 has 20 at 02:00.
    const p = seasonalProfile([1 * H, 7 * H, DAY + 2 * H], [10, 30, 20], DAY, 4);
    expect(p[0]).toBe(15);
    expect(p[1]).toBe(30);
    expect(Number.isNaN(p[2]!)).toBe(true);
  });
  it('puts negative times in the right bin', () => {
    expect(phaseBin(-1 * H, DAY, 24)).toBe(23);
    expect(phaseBin(0, DAY, 24)).toBe(0);
  });
});

describe('SeasonalProfile', () => {
  it('knows nothing before a whole period, then the peak of the bins over a window', () => {
    const s = new SeasonalProfile({ bins: 24, alpha: 1 });
    // Load 100 except 500 between 09:00 and 10:00.
    for (let t = 0; t <= DAY; t += 15 * 60_000) s.update(t, t % DAY >= 9 * H && t % DAY < 10 * H ? 500 : 100);
    expect(s.ready).toBe(true);
    expect(s.peak(DAY + 8 * H, DAY + 8.5 * H)).toBe(100);
    // From 08:30, a window of an hour reaches the 09:00 bin.
    expect(s.peak(DAY + 8.5 * H, DAY + 9.5 * H)).toBe(500);
    const young = new SeasonalProfile();
    young.update(0, 100);
    young.update(H, 100);
    expect(Number.isNaN(young.peak(0, H))).toBe(true);
  });
  it('weights a new period by alpha', () => {
    const s = new SeasonalProfile({ bins: 1, periodMs: H, alpha: 0.5 });
    s.update(0, 100);
    s.update(H, 200); // closes the first period's bin at 100
    s.update(2 * H, 0); // closes the second's at 200: 100 + 0.5 × 100
    expect(s.peak(2 * H, 2 * H)).toBe(150);
  });
});
