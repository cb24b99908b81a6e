import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accuracyOf, ForecastAccuracy, type AccuracyPair } from './forecast-accuracy.js';

const pair = (actual: number, forecast: number, naive: number, lower = 0, upper = 1000): AccuracyPair => ({
  at: 0,
  forecast,
  lower,
  upper,
  naive,
  actual,
});

describe('accuracyOf', () => {
  it('divides the mean absolute error by the last-value forecast’s (hand-computed)', () => {
    // errors |12-10|=2, |8-9|=1, |15-15|=0 → MAE 1; naive errors |12-10|=2, |8-12|=4, |15-8|=7 → 13/3.
    const s = accuracyOf([pair(12, 10, 10), pair(8, 9, 12), pair(15, 15, 8)], 60_000, 3);
    expect(s.enough).toBe(true);
    expect(s.mae).toBeCloseTo(1);
    expect(s.naiveMae).toBeCloseTo(13 / 3);
    expect(s.mase).toBeCloseTo(3 / 13);
    expect(s.note).toBe('beats the last-value forecast');
  });

  it('counts the share of actuals inside [lower, upper], bounds included', () => {
    const pairs = [
      pair(10, 10, 9, 8, 12), // inside
      pair(12, 10, 9, 8, 12), // on the upper bound: inside
      pair(13, 10, 9, 8, 12), // above
      pair(7, 10, 9, 8, 12), // below
    ];
    expect(accuracyOf(pairs, 60_000, 4).coverage).toBe(0.5);
  });

  it('says a forecaster worse than the last value is no better', () => {
    const s = accuracyOf([pair(10, 20, 10), pair(11, 1, 10)], 60_000, 2);
    expect(s.mase).toBeCloseTo(20 / 1);
    expect(s.note).toBe('no better than the last-value forecast');
  });

  it('gives no MASE or coverage, and says so, with fewer pairs than needed', () => {
    const s = accuracyOf([pair(1, 1, 1), pair(2, 2, 1)], 60_000, 10);
    expect(s.enough).toBe(false);
    expect(s.mase).toBeUndefined();
    expect(s.coverage).toBeUndefined();
    expect(s.note).toBe('not enough data yet (2 of 10 forecasts resolved)');
    expect(accuracyOf([], 60_000, 10).note).toMatch(/not enough data yet/);
  });

  it('leaves MASE undefined when the last-value forecast was exact every time', () => {
    const s = accuracyOf([pair(5, 6, 5), pair(5, 4, 5)], 60_000, 2);
    expect(s.mase).toBeUndefined();
    expect(s.coverage).toBe(1);
    expect(s.note).toMatch(/MASE undefined/);
  });
});

describe('ForecastAccuracy', () => {
  const f = (mean: number, horizonMs = 10_000) => ({ horizonMs, mean, lower: mean - 2, upper: mean + 2 });

  it('pairs a forecast made at t for horizon h with the first actual at or after t + h', () => {
    const acc = new ForecastAccuracy({ minPairs: 1 });
    acc.forecast(0, f(20), 10); // due at 10 s, naive 10
    acc.actual(9_999, 100); // too early: not paired
    expect(acc.report(9_999).pending).toBe(1);
    acc.actual(10_000, 21); // |21-20| = 1, naive |21-10| = 11
    const r = acc.report(10_000);
    expect(r.pending).toBe(0);
    expect(r.hour.pairs).toBe(1);
    expect(r.hour.mae).toBe(1);
    expect(r.hour.naiveMae).toBe(11);
    expect(r.hour.coverage).toBe(1);
  });

  it('keeps a pair in the day window after it has left the hour window', () => {
    const acc = new ForecastAccuracy({ minPairs: 1 });
    acc.forecast(0, f(5), 5);
    acc.actual(10_000, 6);
    const later = 2 * 3_600_000;
    acc.actual(later, 6);
    const r = acc.report(later);
    expect(r.hour.pairs).toBe(0);
    expect(r.day.pairs).toBe(1);
  });

  it('forgets pairs older than a day and holds a bounded number of buckets', () => {
    const acc = new ForecastAccuracy({ minPairs: 1, bucketMs: 60_000 });
    const day = 86_400_000;
    for (let t = 0; t < 2 * day; t += 30_000) {
      acc.forecast(t, f(1, 1000), 1);
      acc.actual(t + 1000, 1);
    }
    expect(acc.buckets).toBeLessThanOrEqual(day / 60_000 + 1);
    const r = acc.report(2 * day);
    expect(r.day.pairs).toBeLessThanOrEqual(day / 30_000 + 2);
    expect(r.day.pairs).toBeGreaterThan(day / 30_000 - 4);
  });

  it('matches accuracyOf over the same pairs (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 })), {
          minLength: 1,
          maxLength: 40,
        }),
        (values) => {
          const acc = new ForecastAccuracy({ minPairs: 1 });
          const pairs: AccuracyPair[] = [];
          let t = 0;
          for (const [forecast, actual] of values) {
            acc.forecast(
              t,
              { horizonMs: 1000, mean: forecast, lower: forecast - 5, upper: forecast + 5 },
              50,
            );
            t += 1000;
            acc.actual(t, actual);
            pairs.push({ at: t, forecast, lower: forecast - 5, upper: forecast + 5, naive: 50, actual });
          }
          const got = acc.summary(t, 3_600_000);
          const want = accuracyOf(pairs, 3_600_000, 1);
          expect(got.pairs).toBe(want.pairs);
          expect(got.coverage).toBeCloseTo(want.coverage ?? Number.NaN);
          expect(got.mae).toBeCloseTo(want.mae ?? Number.NaN);
        },
      ),
      { numRuns: 100 },
    );
  });
});
