import { describe, expect, it } from 'vitest';
import { NoveltyScale } from './novelty-scale.js';
import { createRandom, randomNormal } from './prng.js';

function noise(n: number, seed: number): number[] {
  const rnd = createRandom(seed);
  return Array.from({ length: n }, () => 10 + randomNormal(rnd));
}

const scores = (xs: readonly number[], learn = 200, rarityPower = 1): number[] => {
  const s = new NoveltyScale(learn, { rarityPower });
  return xs.map((x) => s.update(x));
};

describe('NoveltyScale', () => {
  it('scores 0 while learning, then scores in [0, 1]', () => {
    const out = scores(noise(1000, 1));
    expect(out.slice(0, 200).every((s) => s === 0)).toBe(true);
    for (const s of out) {
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
    }
  });

  it('is deterministic: the same input gives the same scores', () => {
    const xs = noise(1500, 2);
    expect(scores(xs)).toEqual(scores(xs));
  });

  it('scores a planted spike near 1, above 99 % of the scores of the surrounding noise', () => {
    for (const seed of [3, 4, 5]) {
      const xs = noise(1500, seed);
      xs[1200] = 16;
      const out = scores(xs);
      const before = out.slice(600, 1200).sort((a, b) => a - b);
      expect(out[1200]).toBeGreaterThan(0.9);
      expect(out[1200]).toBeGreaterThan(before[Math.floor(before.length * 0.99)]!);
    }
  });

  it('scores the start of a planted level shift above the noise before it', () => {
    for (const seed of [6, 7, 8]) {
      const xs = noise(1500, seed).map((x, i) => (i >= 1200 ? x + 5 : x));
      const out = scores(xs);
      expect(Math.max(...out.slice(1200, 1210))).toBeGreaterThan(Math.max(...out.slice(600, 1200)));
    }
  });

  it('keeps fewer high scores on noise with a larger rarity power', () => {
    const xs = noise(3000, 9);
    const high = (o: number[]): number => o.filter((s) => s >= 0.5).length;
    expect(high(scores(xs, 200, 3))).toBeLessThan(high(scores(xs, 200, 1)));
  });
});
