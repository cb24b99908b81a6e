import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addToDigest,
  ageDigest,
  bucketOf,
  bucketUpper,
  digestQuantile,
  DIGEST_FLOOR,
  DIGEST_RATIO,
  emptyDigest,
  mergeDigests,
} from './profile-digest.js';

const values = fc.array(fc.double({ min: 0, max: 1e9, noNaN: true }), { minLength: 1, maxLength: 300 });
const exact = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil(q * s.length) - 1)] ?? 0;
};
const digestOf = (xs: number[]) => xs.reduce((d, x) => addToDigest(d, x), emptyDigest());

describe('profile digest (log-bucketed percentiles)', () => {
  it('puts every value in the bucket whose bounds hold it', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e12, noNaN: true }), (v) => {
        const b = bucketOf(v);
        expect(v).toBeLessThanOrEqual(bucketUpper(b) * (1 + 1e-9));
        if (b > 0) expect(v).toBeGreaterThan(bucketUpper(b - 1) * (1 - 1e-9));
      }),
      { numRuns: 300 },
    );
  });

  it('reads a percentile never below the exact one and at most 10 % above it (above the floor)', () => {
    fc.assert(
      fc.property(values, fc.constantFrom(0.5, 0.95, 1), (xs, q) => {
        const est = digestQuantile(digestOf(xs), q) ?? NaN;
        const want = exact(xs, q);
        expect(est).toBeGreaterThanOrEqual(want * (1 - 1e-9));
        expect(est).toBeLessThanOrEqual(Math.max(want * DIGEST_RATIO, DIGEST_FLOOR) * (1 + 1e-9));
      }),
      { numRuns: 150 },
    );
  });

  it('orders its percentiles: p50 ≤ p95 ≤ max, and max is the largest value', () => {
    fc.assert(
      fc.property(values, (xs) => {
        const d = digestOf(xs);
        const p50 = digestQuantile(d, 0.5) ?? NaN;
        const p95 = digestQuantile(d, 0.95) ?? NaN;
        expect(p50).toBeLessThanOrEqual(p95);
        expect(p95).toBeLessThanOrEqual(d.max);
        expect(d.max).toBe(Math.max(...xs));
      }),
      { numRuns: 150 },
    );
  });

  it('ignores negative and non-finite values, and has no percentile when empty', () => {
    const d = addToDigest(addToDigest(addToDigest(emptyDigest(), -1), NaN), Infinity);
    expect(d.n).toBe(0);
    expect(digestQuantile(d, 0.5)).toBeUndefined();
  });

  it('stays bounded: ageing halves a full digest, keeps its percentiles in order and its count under the cap', () => {
    fc.assert(
      fc.property(values, fc.integer({ min: 10, max: 100 }), (xs, cap) => {
        const d = emptyDigest();
        for (const x of xs) ageDigest(addToDigest(d, x), cap);
        expect(d.n).toBeLessThanOrEqual(cap);
        expect(Object.values(d.counts).reduce((a, b) => a + b, 0)).toBe(d.n);
        if (d.n > 0) expect(digestQuantile(d, 0.5) ?? 0).toBeLessThanOrEqual(d.max);
      }),
      { numRuns: 100 },
    );
  });

  it('lets recent values dominate after ageing: a service that got busier shows it', () => {
    const d = emptyDigest();
    for (let i = 0; i < 1000; i++) ageDigest(addToDigest(d, 0.1), 500);
    for (let i = 0; i < 600; i++) ageDigest(addToDigest(d, 2), 500);
    expect(digestQuantile(d, 0.5)).toBeGreaterThan(1.5);
  });

  it('merges two digests into the digest of both streams', () => {
    fc.assert(
      fc.property(values, values, (a, b) => {
        expect(mergeDigests(digestOf(a), digestOf(b))).toEqual(digestOf([...a, ...b]));
      }),
      { numRuns: 60 },
    );
  });
});
