import { describe, expect, it } from 'vitest';
import { CounterRate, MutationDeltaMonitor } from './change-rate.js';
import { predictionConfidence } from './prediction-confidence.js';
import { SpikeOutcomeTracker } from './spike-outcome-tracker.js';

describe('predictionConfidence', () => {
  it('is higher for a narrow interval than a wide one, and stays in [0, 1]', () => {
    const narrow = predictionConfidence({ forecast: { mean: 100, lower: 95, upper: 105 } });
    const wide = predictionConfidence({ forecast: { mean: 100, lower: 20, upper: 180 } });
    expect(narrow.confidence).toBeGreaterThan(wide.confidence);
    for (const c of [narrow, wide]) {
      expect(c.confidence).toBeGreaterThanOrEqual(0);
      expect(c.confidence).toBeLessThanOrEqual(1);
    }
  });

  it('rises with recent accuracy and with a shadow that corroborates the forecast rise', () => {
    const f = { mean: 150, lower: 140, upper: 160 };
    expect(predictionConfidence({ forecast: f, recentAccuracy: 0.9 }).confidence).toBeGreaterThan(
      predictionConfidence({ forecast: f, recentAccuracy: 0.2 }).confidence,
    );
    const agree = predictionConfidence({ forecast: f, liveLoad: 100, shadowLoad: 130 });
    const disagree = predictionConfidence({ forecast: f, liveLoad: 100, shadowLoad: 70 });
    expect(agree.confidence).toBeGreaterThan(disagree.confidence);
    expect(agree.components.shadow).toBeGreaterThan(0.5);
  });

  it('never returns NaN, even for a zero forecast or infinite width', () => {
    const c = predictionConfidence({
      forecast: { mean: 0, lower: -Infinity, upper: Infinity },
      recentAccuracy: Number.NaN,
    });
    expect(Number.isFinite(c.confidence)).toBe(true);
  });
});

describe('SpikeOutcomeTracker', () => {
  it('raises the threshold after a false alarm and lowers it after a missed spike, with a decision record', () => {
    const t = new SpikeOutcomeTracker({ initialThreshold: 0.5, raiseStep: 0.1, lowerStep: 0.2 });
    t.predict('p1', 0, 10, 100, 0.6);
    expect(t.observe(5, 50)).toEqual([]);
    const [raise] = t.observe(11, 50);
    expect(raise?.what).toBe('raise-threshold');
    expect(raise?.inputs).toMatchObject({ prediction: 'p1', from: 0.5, to: 0.6 });
    expect(t.threshold).toBeCloseTo(0.6);
    const [lower] = t.observe(20, 500, 200);
    expect(lower?.what).toBe('lower-threshold');
    expect(t.threshold).toBeCloseTo(0.4);
    expect(t.counts).toEqual({ hits: 0, falseAlarms: 1, misses: 1 });
  });

  it('counts a spike that came as a hit and keeps the threshold', () => {
    const t = new SpikeOutcomeTracker();
    t.predict('p', 0, 10, 100, 0.9);
    expect(t.observe(3, 120, 100)).toEqual([]);
    expect(t.counts.hits).toBe(1);
    expect(t.threshold).toBe(0.5);
    expect(t.precision).toBe(1);
  });

  it('keeps the threshold within its bounds however many false alarms come', () => {
    const t = new SpikeOutcomeTracker({ maxThreshold: 0.7, raiseStep: 0.1 });
    for (let i = 0; i < 20; i++) {
      t.predict(`p${i}`, i * 10, 5, 1e9, 0.9);
      t.observe(i * 10 + 6, 0);
    }
    expect(t.threshold).toBe(0.7);
  });
});

describe('change-rate signals', () => {
  it('turns a byte counter into a rate per second and survives a counter reset', () => {
    const r = new CounterRate(0);
    r.update(0, 0);
    expect(r.update(1000, 500)).toBe(500);
    expect(r.update(3000, 1500)).toBe(500);
    expect(r.update(4000, 100)).toBe(100);
  });

  it('flags a live–shadow mutation-rate delta above an adjustable threshold', () => {
    const m = new MutationDeltaMonitor({ threshold: 0.25 });
    expect(m.evaluate(120, 100)).toEqual({ delta: 20, relative: 0.2, exceeded: false });
    m.setThreshold(0.1);
    expect(m.evaluate(120, 100).exceeded).toBe(true);
    expect(m.evaluate(5, 0).relative).toBe(5);
  });
});
