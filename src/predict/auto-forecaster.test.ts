import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createAutoForecaster,
  createLastValueForecaster,
  createSeasonalNaiveForecaster,
} from './auto-forecaster.js';
import { createRandom, randomNormal } from './prng.js';

describe('createAutoForecaster', () => {
  it('covers about 90 % with its 90 % intervals on an AR(1) process', () => {
    const rnd = createRandom(42);
    const f = createAutoForecaster();
    let x = 0;
    const series: number[] = [];
    for (let t = 0; t < 4000; t++) {
      x = 0.7 * x + randomNormal(rnd);
      series.push(50 + x);
    }
    let hit1 = 0;
    let hit10 = 0;
    let n = 0;
    for (let t = 0; t < series.length - 10; t++) {
      f.update(t, series[t]!);
      if (t >= 1000 && t % 3 === 0) {
        const p = f.forecast(10, 0.9);
        const a1 = series[t + 1]!;
        const a10 = series[t + 10]!;
        if (a1 >= p[0]!.lower && a1 <= p[0]!.upper) hit1++;
        if (a10 >= p[9]!.lower && a10 <= p[9]!.upper) hit10++;
        n++;
      }
    }
    expect(hit1 / n).toBeGreaterThan(0.85);
    expect(hit1 / n).toBeLessThan(0.95);
    expect(hit10 / n).toBeGreaterThan(0.85);
    expect(hit10 / n).toBeLessThan(0.95);
  });

  it('detects the season and forecasts it better than the last value', () => {
    const rnd = createRandom(5);
    const period = 48;
    const val = (t: number): number => 100 + 30 * Math.sin((2 * Math.PI * t) / period);
    const f = createAutoForecaster();
    const lv = createLastValueForecaster();
    const n = period * 12;
    for (let t = 0; t < n; t++) {
      const x = val(t) + randomNormal(rnd);
      f.update(t, x);
      lv.update(t, x);
    }
    expect(f.period).toBe(period);
    const fa = f.forecast(period);
    const fl = lv.forecast(period);
    let ea = 0;
    let el = 0;
    for (let h = 1; h <= period; h++) {
      ea += Math.abs(fa[h - 1]!.mean - val(n - 1 + h));
      el += Math.abs(fl[h - 1]!.mean - val(n - 1 + h));
    }
    expect(ea).toBeLessThan(el / 4);
  });

  it('forecasts from the very first value and widens the interval with the horizon', () => {
    const f = createAutoForecaster();
    expect(f.forecast(3)).toHaveLength(3);
    f.update(0, 10);
    const one = f.forecast(5);
    expect(one[0]!.mean).toBe(10);
    for (const p of one) expect(p.lower).toBeLessThanOrEqual(p.upper);
    for (let t = 1; t < 20; t++) f.update(t, 10 + (t % 3));
    const p = f.forecast(30);
    expect(p[29]!.upper - p[29]!.lower).toBeGreaterThanOrEqual(p[0]!.upper - p[0]!.lower);
  });

  it('gives finite, ordered forecasts for any finite input (constants, short, huge values)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.double({ min: -1e12, max: 1e12, noNaN: true }),
            fc.constant(0),
            fc.constant(1e300),
            fc.constant(-1e300),
          ),
          { minLength: 0, maxLength: 120 },
        ),
        fc.integer({ min: 1, max: 70 }),
        (xs, h) => {
          const f = createAutoForecaster({ capacity: 256 });
          xs.forEach((x, t) => f.update(t, x));
          const out = f.forecast(h, 0.8);
          expect(out).toHaveLength(h);
          for (const p of out) {
            expect(Number.isFinite(p.mean) && Number.isFinite(p.lower) && Number.isFinite(p.upper)).toBe(
              true,
            );
            expect(p.lower).toBeLessThanOrEqual(p.mean);
            expect(p.upper).toBeGreaterThanOrEqual(p.mean);
          }
        },
      ),
      { numRuns: 60, seed: 1 },
    );
  });

  it('ignores non-finite samples instead of poisoning the state', () => {
    const f = createAutoForecaster();
    for (let t = 0; t < 50; t++) f.update(t, t % 2 === 0 ? 5 : Number.NaN);
    expect(f.count).toBe(25);
    expect(f.forecast(1)[0]!.mean).toBe(5);
  });

  it('is never much worse than the last value: on a random walk it converges to it at every horizon', () => {
    const rnd = createRandom(11);
    const f = createAutoForecaster();
    const lv = createLastValueForecaster();
    let x = 100;
    const ys: number[] = [];
    for (let t = 0; t < 4000; t++) {
      x += randomNormal(rnd);
      ys.push(x);
    }
    const hs = [1, 5, 15, 60];
    const ea = hs.map(() => 0);
    const el = hs.map(() => 0);
    for (let t = 0; t < ys.length - 60; t++) {
      f.update(t, ys[t]!);
      lv.update(t, ys[t]!);
      if (t < 2000 || t % 5 !== 0) continue;
      const pa = f.forecast(60);
      const pl = lv.forecast(60);
      hs.forEach((h, i) => {
        ea[i] = ea[i]! + Math.abs(ys[t + h]! - pa[h - 1]!.mean);
        el[i] = el[i]! + Math.abs(ys[t + h]! - pl[h - 1]!.mean);
      });
    }
    hs.forEach((_, i) => expect(ea[i]! / el[i]!).toBeLessThan(1.1));
  });

  it('beats the last value on a spiky series under absolute error (robust level member)', () => {
    const rnd = createRandom(12);
    const f = createAutoForecaster();
    const lv = createLastValueForecaster();
    let ea = 0;
    let el = 0;
    for (let t = 0; t < 3000; t++) {
      const y = 10 + 0.5 * randomNormal(rnd) + (rnd() < 0.05 ? 200 : 0);
      if (t >= 1500) {
        ea += Math.abs(y - f.forecast(1)[0]!.mean);
        el += Math.abs(y - lv.forecast(1)[0]!.mean);
      }
      f.update(t, y);
      lv.update(t, y);
    }
    expect(ea).toBeLessThan(0.8 * el);
  });

  it('seasonal naive repeats the last season', () => {
    const f = createSeasonalNaiveForecaster(4);
    [1, 2, 3, 4, 5, 6, 7, 8].forEach((x, t) => f.update(t, x));
    expect(f.forecast(6).map((p) => p.mean)).toEqual([5, 6, 7, 8, 5, 6]);
  });
});
