import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../errors/index.js';
import { StreamingSeries } from './series.js';

describe('StreamingSeries', () => {
  it('averages the samples of each step and emits a step when the next one starts', () => {
    const s = new StreamingSeries({ step: 1000, clipDeviations: Infinity });
    expect(s.push(0, 1)).toBe(0);
    expect(s.push(500, 3)).toBe(0);
    expect(s.push(1000, 10)).toBe(1);
    expect(Array.from(s.values.toArray())).toEqual([2]);
    expect(s.flush()).toBe(1);
    expect(Array.from(s.values.toArray())).toEqual([2, 10]);
  });

  it('fills a short gap by linear interpolation between the steps either side', () => {
    const s = new StreamingSeries({ step: 1, clipDeviations: Infinity });
    s.push(0, 0);
    s.push(4, 8);
    s.push(5, 0);
    expect(Array.from(s.values.toArray())).toEqual([0, 2, 4, 6, 8]);
  });

  it('restarts after a gap longer than maxGapSteps instead of filling it', () => {
    const s = new StreamingSeries({ step: 1, maxGapSteps: 3, clipDeviations: Infinity });
    s.push(0, 1);
    s.push(1, 1);
    s.push(100, 5);
    s.flush();
    expect(Array.from(s.values.toArray())).toEqual([5]);
  });

  it('clips an outlier far from the running centre and counts it', () => {
    const s = new StreamingSeries({ step: 1, clipDeviations: 5 });
    for (let t = 0; t < 100; t++) s.push(t, 10 + (t % 2));
    s.push(100, 1e6);
    s.flush();
    expect(s.values.back(0)).toBeLessThan(20);
    expect(s.stats.clipped).toBe(1);
  });

  it('drops late and non-finite samples and keeps a bounded history', () => {
    const s = new StreamingSeries({ step: 1, capacity: 8, clipDeviations: Infinity });
    for (let t = 0; t < 100; t++) s.push(t, t);
    s.push(50, 1);
    s.push(101, Number.NaN);
    expect(s.stats.dropped).toBe(2);
    expect(s.values.size).toBe(8);
    expect(s.values.back(0)).toBe(98);
  });

  it('rejects a non-positive step with a typed error', () => {
    expect(() => new StreamingSeries({ step: 0 })).toThrow(
      expect.objectContaining({ code: ErrorCode.PredictInput }),
    );
  });
});
