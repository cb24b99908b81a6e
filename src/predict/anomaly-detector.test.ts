import { describe, expect, it } from 'vitest';
import { AnomalyDetector } from './anomaly-detector.js';
import { createRandom, randomNormal } from './prng.js';

function daily(n: number, seed: number): number[] {
  const rnd = createRandom(seed);
  return Array.from({ length: n }, (_, t) => 50 + 20 * Math.sin((2 * Math.PI * t) / 96) + randomNormal(rnd));
}

const run = (xs: readonly number[]): number[] => {
  const d = new AnomalyDetector({ learningPoints: 300 });
  return xs.map((x, t) => d.update(t, x).score);
};

describe('AnomalyDetector', () => {
  it('is deterministic: the same input gives the same scores', () => {
    const xs = daily(1500, 1);
    expect(run(xs)).toEqual(run(xs));
  });

  it('never looks ahead: the scores of a prefix do not change when more data follows', () => {
    const xs = daily(1500, 2);
    xs[1200] = 400;
    const full = run(xs);
    for (const cut of [400, 900, 1201]) expect(run(xs.slice(0, cut))).toEqual(full.slice(0, cut));
  });

  it('scores in [0, 1], learns quietly first, and fires on a spike far outside the pattern', () => {
    const xs = daily(2000, 3);
    xs[1500] = 300;
    const scores = run(xs);
    for (const s of scores) {
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
    }
    expect(scores.slice(0, 300).every((s) => s === 0)).toBe(true);
    const peak = Math.max(...scores.slice(1400));
    expect(scores[1500]).toBe(peak);
    expect(scores[1500]).toBeGreaterThan(0.75);
  });

  it('reports the same event once: scores right after an alarm are suppressed', () => {
    const xs = daily(2000, 4);
    xs[1500] = 300;
    xs[1502] = 320;
    const d = new AnomalyDetector({ learningPoints: 300 });
    const out = xs.map((x, t) => d.update(t, x));
    expect(out[1500]!.score).toBeGreaterThan(0.75);
    expect(out[1502]!.suppressed).toBe(true);
    expect(out[1502]!.score).toBe(0);
  });

  it('counts the quiet period from the reported alarm: a suppressed spike does not extend it', () => {
    const xs = daily(2000, 7);
    for (const [i, v] of [
      [1500, 300],
      [1506, 400],
      [1512, 500],
    ] as const)
      xs[i] = v;
    // Fast cue only: the slow scale would (rightly) report the block holding 1506 at 1511.
    const d = new AnomalyDetector({ learningPoints: 300, suppressPoints: 10, slowBlocks: 0 });
    const out = xs.map((x, t) => d.update(t, x));
    expect(out[1500]!.score).toBeGreaterThan(0.75);
    expect(out[1506]!.suppressed).toBe(true);
    expect(out[1506]!.raw).toBeGreaterThan(0.75);
    // 12 points after the reported alarm: reported again, although 1506 was high while suppressed.
    expect(out[1512]!.suppressed).toBe(false);
    expect(out[1512]!.score).toBeGreaterThan(0.75);
  });

  it('scores a regular series low once it has learnt it', () => {
    const scores = run(daily(3000, 5));
    const high = scores.slice(1000).filter((s) => s >= 0.75).length;
    expect(high).toBeLessThan(10);
  });

  it('lets sensitivity scale the scores', () => {
    const xs = daily(1200, 6);
    xs[1000] = 200;
    const lo = new AnomalyDetector({ learningPoints: 300, sensitivity: 0.5 });
    const hi = new AnomalyDetector({ learningPoints: 300, sensitivity: 2 });
    let a = 0;
    let b = 0;
    xs.forEach((x, t) => {
      a += lo.update(t, x).raw;
      b += hi.update(t, x).raw;
    });
    expect(b).toBeGreaterThan(a);
  });

  it('catches a small sustained level shift through its slow scale that the fast cue alone misses', () => {
    // A 1-sd shift of white noise: no single point is unusual, the block means are.
    for (const seed of [1, 2, 3]) {
      const rnd = createRandom(seed);
      const xs = Array.from(
        { length: 3000 },
        (_, t) => 50 + 3 * randomNormal(rnd) + (t >= 2000 && t < 2300 ? 3 : 0),
      );
      const peaks = (slowBlocks: number): [number, number] => {
        const d = new AnomalyDetector({ learningPoints: 450, slowBlocks });
        const raw = xs.map((x, t) => d.update(t, x).raw);
        return [Math.max(...raw.slice(2000, 2300)), Math.max(...raw.slice(900, 2000))];
      };
      const [withSlow, beforeWithSlow] = peaks(50);
      expect(withSlow).toBeGreaterThan(beforeWithSlow);
      const [fastOnly, beforeFastOnly] = peaks(0);
      expect(fastOnly).toBeLessThan(beforeFastOnly);
    }
  });

  it('scores a value far beyond the range seen 1 through its spatial cue', () => {
    const xs = daily(1500, 8);
    xs[1200] = 75; // above the daily peak (≈ 70 + noise) by more than 5 % of the range
    const d = new AnomalyDetector({ learningPoints: 300, slowBlocks: 0 });
    const raw = xs.map((x, t) => d.update(t, x).raw);
    expect(raw[1200]).toBe(1);
    const off = new AnomalyDetector({ learningPoints: 300, slowBlocks: 0, spatialTolerance: 0 });
    const rawOff = xs.map((x, t) => off.update(t, x).raw);
    expect(rawOff[1200]).toBeLessThan(1);
  });

  it('catches a change of shape within the usual range through its resonance cue', () => {
    // A daily sine that goes flat at its mean for 100 points: no value is unusual, and the
    // quantised pattern model finds the flat run familiar (it passes the mean twice a period).
    for (const seed of [1, 2, 3]) {
      const rnd = createRandom(seed);
      const xs = Array.from(
        { length: 3000 },
        (_, t) =>
          (t >= 2400 && t < 2500 ? 50 : 50 + 20 * Math.sin((2 * Math.PI * t) / 96)) + randomNormal(rnd),
      );
      const peaks = (resonanceWeight: number): [number, number] => {
        const d = new AnomalyDetector({ learningPoints: 400, resonanceWeight });
        const out = xs.map((x, t) => d.update(t, x).score);
        return [Math.max(...out.slice(2400, 2500)), Math.max(...out.slice(600, 2400))];
      };
      const [withCue, beforeWithCue] = peaks(1.25);
      expect(withCue).toBeGreaterThan(0.75);
      expect(withCue).toBeGreaterThan(beforeWithCue);
      const [without] = peaks(0);
      expect(without).toBeLessThan(0.75);
    }
  });

  it('survives non-finite and huge values without NaN scores', () => {
    const d = new AnomalyDetector({ learningPoints: 20 });
    const xs = [1, 2, Number.NaN, 1e300, -1e300, Infinity, 3, 4];
    for (let i = 0; i < 100; i++) {
      const r = d.update(i, xs[i % xs.length]!);
      expect(Number.isFinite(r.score)).toBe(true);
    }
  });
});
