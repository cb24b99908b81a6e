import { describe, expect, it } from 'vitest';
import { createRandom, randomNormal } from './prng.js';
import { ResonanceNovelty } from './resonance-novelty.js';

/** A noisy sine of period 96 around 50; optionally flat at its mean over [from, to). */
function sine(seed: number, n = 3000, flat?: readonly [number, number]): number[] {
  const rnd = createRandom(seed);
  return Array.from({ length: n }, (_, t) => {
    const inFlat = flat !== undefined && t >= flat[0] && t < flat[1];
    return (inFlat ? 50 : 50 + 20 * Math.sin((2 * Math.PI * t) / 96)) + randomNormal(rnd);
  });
}

const scores = (xs: readonly number[], learn = 400, maxCategories?: number): number[] => {
  const r = new ResonanceNovelty(learn, maxCategories === undefined ? {} : { maxCategories });
  return xs.map((x) => r.update(x));
};

describe('ResonanceNovelty', () => {
  it('scores 0 while learning, then scores in [0, 1]', () => {
    const xs = sine(1);
    xs[2000] = Number.NaN;
    const out = scores(xs);
    expect(out.slice(0, 400).every((s) => s === 0)).toBe(true);
    for (const s of out) {
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
    }
  });

  it('is deterministic and never looks ahead', () => {
    const xs = sine(2, 3000, [2400, 2500]);
    const full = scores(xs);
    expect(scores(xs)).toEqual(full);
    for (const cut of [450, 1700, 2450]) expect(scores(xs.slice(0, cut))).toEqual(full.slice(0, cut));
  });

  it('scores a change of shape within the usual range above everything on the learnt pattern', () => {
    for (const seed of [3, 4, 5, 6]) {
      const out = scores(sine(seed, 3000, [2400, 2500]));
      const change = Math.max(...out.slice(2400, 2500));
      expect(change).toBeGreaterThan(0.6);
      expect(change).toBeGreaterThan(Math.max(...out.slice(400, 2400)));
    }
  });

  it('fires when the series leaves the range seen, and still knows the pattern in the wider range', () => {
    // The spike widens the normalisation range 4-fold; the categories learnt are mapped along, so
    // the familiar sine rarely founds a new cluster afterwards (without the mapping: 13 fires over the 8 runs).
    let later = 0;
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const xs = sine(seed);
      xs[1500] = 250;
      const out = scores(xs);
      expect(Math.max(...out.slice(1500, 1520))).toBeGreaterThan(0.9);
      later += out.slice(1520).filter((s) => s > 0).length;
    }
    expect(later).toBeLessThanOrEqual(3);
  });

  it('bounds its memory: never more categories than maxCategories', () => {
    const rnd = createRandom(7);
    const r = new ResonanceNovelty(300, { maxCategories: 8 });
    for (let i = 0; i < 5000; i++) r.update(randomNormal(rnd) * (1 + (i % 7)));
    expect(r.categories).toBe(8);
  });
});
