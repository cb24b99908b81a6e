import { describe, expect, it } from 'vitest';
import { derivedGuards } from './derived-guards.js';
import { resolveGuardOptions } from './guards.js';

describe('derivedGuards', () => {
  it('bounds the count by min and max, cools scale-in for 60 % of the window and budgets actions over 60 steps', () => {
    expect(derivedGuards({ min: 2, max: 10, step: 2000, stabilization: 20_000 })).toEqual({
      minCount: 2,
      maxCount: 10,
      scaleInCooldownMs: 12_000,
      actionWindowMs: 120_000,
    });
  });

  it('keeps the guards’ default action count', () => {
    const g = resolveGuardOptions(derivedGuards({ min: 1, max: 3, step: 1000, stabilization: 1000 }));
    expect(g.maxActionsPerWindow).toBe(resolveGuardOptions().maxActionsPerWindow);
  });
});
