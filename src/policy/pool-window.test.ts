import { describe, expect, it } from 'vitest';
import { stabilisePool } from './pool-window.js';
import type { PoolRecommendation } from './pool-window.js';

describe('stabilisePool', () => {
  it('grows the pool at once', () => {
    const r = stabilisePool([{ at: 0, size: 1 }], 1000, 4, 10_000);
    expect(r.size).toBe(4);
    expect(r.window).toEqual([
      { at: 0, size: 1 },
      { at: 1000, size: 4 },
    ]);
  });

  it('shrinks only to the largest recommendation still inside the window', () => {
    let w: PoolRecommendation[] = [];
    const sizes: number[] = [];
    for (const [at, size] of [
      [0, 5],
      [4000, 2],
      [9000, 1],
    ] as const) {
      const r = stabilisePool(w, at, size, 10_000);
      w = r.window;
      sizes.push(r.size);
    }
    expect(sizes).toEqual([5, 5, 5]);
  });

  it('drops a recommendation exactly the window old (the far edge is exclusive)', () => {
    const w: PoolRecommendation[] = [{ at: 0, size: 5 }];
    expect(stabilisePool(w, 9_999, 1, 10_000).size).toBe(5);
    const r = stabilisePool(w, 10_000, 1, 10_000);
    expect(r.size).toBe(1);
    expect(r.window).toEqual([{ at: 10_000, size: 1 }]);
  });

  it('with a window of 0 follows the newest recommendation', () => {
    const r = stabilisePool([{ at: 0, size: 5 }], 1, 2, 0);
    expect(r.size).toBe(2);
  });

  it('does not change the window it was given', () => {
    const w: PoolRecommendation[] = [{ at: 0, size: 5 }];
    stabilisePool(w, 20_000, 1, 10_000);
    expect(w).toEqual([{ at: 0, size: 5 }]);
  });
});
