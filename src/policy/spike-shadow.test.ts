import { describe, expect, it } from 'vitest';
import { spikeShadow } from './spike-shadow.js';

const forecast = (upper: number) => ({ horizonMs: 30_000, mean: upper * 0.8, lower: upper * 0.6, upper });

describe('spikeShadow', () => {
  // Two serving instances of 100 requests/s at target 0.5 carry 100 requests/s.
  it('asks for one shadow when the forecast upper bound exceeds what the serving set carries at target', () => {
    expect(spikeShadow(forecast(101), 2, 100, 0.5, false)).toEqual({
      shadows: 1,
      perInstanceAtTarget: 50,
      capacityAtTarget: 100,
      change: 'shadow-create',
    });
  });

  it('asks for none at exactly that capacity (strictly above is a spike)', () => {
    expect(spikeShadow(forecast(100), 2, 100, 0.5, false)).toEqual({
      shadows: 0,
      perInstanceAtTarget: 50,
      capacityAtTarget: 100,
    });
  });

  it('reports a change only when the answer changes', () => {
    expect(spikeShadow(forecast(150), 2, 100, 0.5, true).change).toBeUndefined();
    expect(spikeShadow(forecast(80), 2, 100, 0.5, true).change).toBe('shadow-retire');
  });

  it('without a forecast wants no shadow but reports no retirement', () => {
    const r = spikeShadow(undefined, 2, 100, 0.5, true);
    expect(r.shadows).toBe(0);
    expect(r.change).toBeUndefined();
  });

  it('without a known capacity never sees a spike', () => {
    expect(spikeShadow(forecast(1e9), 2, 0, 0.5, false).shadows).toBe(0);
  });
});
