import { describe, expect, it } from 'vitest';
import { HoltWintersModel } from './holt-winters.js';
import { createRandom, randomNormal } from './prng.js';
import { RingBuffer } from './ring-buffer.js';

function seasonal(n: number, period: number, noise: number, seed: number): number[] {
  const rnd = createRandom(seed);
  return Array.from(
    { length: n },
    (_, t) => 100 + 0.05 * t + 10 * Math.sin((2 * Math.PI * t) / period) + noise * randomNormal(rnd),
  );
}

describe('HoltWintersModel', () => {
  it('recovers a trending seasonal series within 3 % over the next season', () => {
    const period = 24;
    const data = seasonal(24 * 12, period, 0.5, 1);
    const truth = seasonal(24 * 13, period, 0, 1).slice(24 * 12);
    const hw = new HoltWintersModel({ period, damped: false });
    const hist = new RingBuffer(4096, 64);
    for (const x of data) {
      hist.push(x);
      hw.observe(x, hist);
    }
    for (let h = 1; h <= period; h++) {
      const f = hw.predict(h);
      expect(Math.abs(f - truth[h - 1]!) / truth[h - 1]!).toBeLessThan(0.03);
    }
    const p = hw.params!;
    expect(p.alpha).toBeGreaterThan(0);
    expect(p.alpha).toBeLessThan(1);
  });

  it('fits its parameters by itself and beats a flat forecast on a seasonal series', () => {
    const period = 30;
    const data = seasonal(30 * 8, period, 1, 2);
    const hw = new HoltWintersModel({ period });
    const hist = new RingBuffer(4096, 64);
    for (const x of data) {
      hist.push(x);
      hw.observe(x, hist);
    }
    const truth = seasonal(30 * 9, period, 0, 2).slice(30 * 8);
    let errHw = 0;
    let errFlat = 0;
    for (let h = 1; h <= period; h++) {
      errHw += Math.abs(hw.predict(h) - truth[h - 1]!);
      errFlat += Math.abs(data[data.length - 1]! - truth[h - 1]!);
    }
    expect(errHw).toBeLessThan(errFlat / 3);
  });

  it('says NaN until it has two seasons, instead of crashing', () => {
    const hw = new HoltWintersModel({ period: 50 });
    const hist = new RingBuffer(4096, 64);
    for (let i = 0; i < 60; i++) {
      hist.push(i);
      hw.observe(i, hist);
    }
    expect(hw.predict(1)).toBeNaN();
  });
});
