import { describe, expect, it } from 'vitest';
import { detectPeriods } from './period-detection.js';
import { createRandom, randomNormal } from './prng.js';

describe('detectPeriods', () => {
  it('finds a period of 37 in noisy data', () => {
    const rnd = createRandom(7);
    const xs = Array.from(
      { length: 600 },
      (_, t) => Math.sin((2 * Math.PI * t) / 37) + 0.8 * randomNormal(rnd),
    );
    const found = detectPeriods(xs);
    expect(found[0]?.period).toBe(37);
  });

  it('finds a non-sinusoidal period of any length (a weekly-like 7 with a spike shape)', () => {
    const rnd = createRandom(3);
    const xs = Array.from({ length: 400 }, (_, t) => (t % 7 === 0 ? 10 : 0) + randomNormal(rnd));
    expect(detectPeriods(xs)[0]?.period).toBe(7);
  });

  it('reports no period for white noise', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = createRandom(seed);
      const xs = Array.from({ length: 1000 }, () => randomNormal(rnd));
      expect(detectPeriods(xs)).toEqual([]);
    }
  });

  it('reports no period for a random walk or a trend', () => {
    const rnd = createRandom(11);
    let w = 0;
    const walk = Array.from({ length: 800 }, () => (w += randomNormal(rnd)));
    expect(detectPeriods(walk)).toEqual([]);
    expect(detectPeriods(Array.from({ length: 500 }, (_, t) => 3 * t + 1))).toEqual([]);
  });

  it('returns nothing for too-short or non-finite data', () => {
    expect(detectPeriods([1, 2, 3])).toEqual([]);
    expect(detectPeriods([1, 2, Number.NaN, 4, 5, 6, 7, 8, 9, 10])).toEqual([]);
  });
});
