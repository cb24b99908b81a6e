// Unit tests of bench/lib/nab-scorer.ts (the NAB v1.1 scoring port) on tiny hand-made files.
import { describe, expect, it } from 'vitest';
import { probationaryLength, scaledSigmoid, scoreCorpus, sweepRows } from '../../bench/lib/nab-scorer.js';

const standard = { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 };
const ts = Array.from({ length: 100 }, (_, i) => i * 1000);
const win: [number, number][] = [[40_000, 49_000]];
const fire = (...at: number[]): number[] => ts.map((_, i) => (at.includes(i) ? 1 : 0));
const file = (scores: number[], windows = win) => ({ name: 'a/b.csv', timestamps: ts, scores, windows });

describe('NAB scorer port', () => {
  it('implements the scaled sigmoid and the probationary length', () => {
    expect(scaledSigmoid(0)).toBeCloseTo(0);
    expect(scaledSigmoid(-1)).toBeCloseTo(2 / (1 + Math.exp(-5)) - 1);
    expect(scaledSigmoid(3.5)).toBe(-1);
    expect(probationaryLength(100)).toBe(15);
    expect(probationaryLength(100_000)).toBe(750);
  });

  it('gives 100 to a detection at the left edge of the window and 0 to a detector that never fires', () => {
    expect(scoreCorpus([file(fire(40))], standard).normalised).toBeCloseTo(100);
    expect(scoreCorpus([file(fire())], standard).normalised).toBeCloseTo(0);
  });

  it('rewards a late detection less: at the right edge it earns the sigmoid of −1/width', () => {
    const tp = scaledSigmoid(-0.1) / scaledSigmoid(-1);
    expect(scoreCorpus([file(fire(49))], standard).normalised).toBeCloseTo((100 * (tp + 1)) / 2);
  });

  it('counts only the first detection in a window', () => {
    expect(scoreCorpus([file(fire(40, 45, 49))], standard).raw).toBeCloseTo(1);
  });

  it('charges a false positive after a window by its distance past the window, weighted by fpWeight', () => {
    const rows = sweepRows(file(fire(40, 60)), standard, 0).rows;
    const fp = rows.find((r) => r.window < 0 && r.score === 1)!;
    expect(fp.sweep).toBeCloseTo(scaledSigmoid(11 / 9) * 0.11);
    expect(scoreCorpus([file(fire(40, 60))], standard).raw).toBeCloseTo(1 + scaledSigmoid(11 / 9) * 0.11);
  });

  it('ignores detections in the probationary period and optimises the threshold (never firing beats only false alarms)', () => {
    expect(scoreCorpus([file(fire(10, 40))], standard).normalised).toBeCloseTo(100);
    const onlyFp = scoreCorpus([file(fire(20))], standard);
    expect(onlyFp.threshold).toBe(1.1);
    expect(onlyFp.normalised).toBeCloseTo(0);
  });

  it('picks the threshold over every distinct score across files', () => {
    const a = ts.map((_, i) => (i === 42 ? 0.9 : i === 70 ? 0.8 : 0.1));
    const r = scoreCorpus([file(a)], standard);
    expect(r.threshold).toBe(0.9);
    expect(r.perFile[0]).toMatchObject({ tp: 1, fp: 0, fn: 0 });
  });
});
