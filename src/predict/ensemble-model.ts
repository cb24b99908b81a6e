import type { HistoryView, PointModel } from './forecaster.js';
import { HoltWintersModel } from './holt-winters.js';
import { LastValueModel } from './last-value.js';
import { detectPeriods } from './period-detection.js';
import type { PeriodCandidate } from './period-detection.js';
import { ResidualQuantiles } from './residual-quantiles.js';
import { SeasonalNaiveModel } from './seasonal-naive.js';

/** Options of {@link EnsembleModel}. */
export interface EnsembleOptions {
  /** Fixed season length in steps; when omitted it is detected from the data. */
  period?: number;
  /** Longest period searched for. @default history capacity / 2 */
  maxPeriod?: number;
  /** Longest horizon whose errors weight the members. @default 64 */
  maxHorizon?: number;
  /** Weight exponent: member weight ∝ (recent RMSE)^−power. @default 2 */
  power?: number;
  /** Re-run period detection every this many values once history is full. @default 720 */
  detectEvery?: number;
}

interface Member {
  model: PointModel;
  errors: ResidualQuantiles;
  /** Preference when no member has a track record yet (lower first). */
  rank: number;
}

/**
 * An ensemble of point models weighted per horizon by their recent squared error: last value,
 * damped Holt, and — once a period is known (given or detected) and two seasons are held —
 * seasonal naive, a three-season seasonal mean and seasonal Holt–Winters. Degrades gracefully:
 * with one value it is the last value.
 */
export class EnsembleModel implements PointModel {
  readonly name = 'ensemble';
  readonly #o: { period: number | undefined; maxPeriod: number | undefined; maxHorizon: number; power: number; detectEvery: number };
  readonly #members: Member[] = [];
  #period = 0;
  #candidates: PeriodCandidate[] = [];
  #nextDetect = 32;
  #seen = 0;

  constructor(options: EnsembleOptions = {}) {
    this.#o = {
      period: options.period,
      maxPeriod: options.maxPeriod,
      maxHorizon: options.maxHorizon ?? 64,
      power: options.power ?? 4,
      detectEvery: options.detectEvery ?? 720,
    };
    this.#add(new LastValueModel(), 3);
    this.#add(new HoltWintersModel({ period: 0, damped: true }), 2);
  }

  /** The season length in use (0 = none yet). */
  get period(): number {
    return this.#period;
  }

  /** The latest period-detection candidates. */
  get candidates(): readonly PeriodCandidate[] {
    return this.#candidates;
  }

  /** Member names with their current weights at horizon `h`. */
  weights(h: number, history: HistoryView): { name: string; weight: number }[] {
    const w = this.#weights(h, history);
    return this.#members.map((m, i) => ({ name: m.model.name, weight: w[i] ?? 0 }));
  }

  #add(model: PointModel, rank: number): void {
    this.#members.push({ model, errors: new ResidualQuantiles(this.#o.maxHorizon, 1, 0.02), rank });
  }

  #setPeriod(p: number): void {
    this.#period = p;
    for (let i = this.#members.length - 1; i >= 0; i--) if (this.#members[i]!.rank < 2) this.#members.splice(i, 1);
    if (p > 1) {
      this.#add(new SeasonalNaiveModel(p), 1);
      this.#add(new SeasonalNaiveModel(p, 3), 1);
      this.#add(new HoltWintersModel({ period: p, damped: true }), 0);
    }
  }

  observe(x: number, history: HistoryView): void {
    this.#seen++;
    if (this.#o.period !== undefined && this.#period === 0 && this.#o.period > 1) this.#setPeriod(this.#o.period);
    if (this.#o.period === undefined && this.#seen >= this.#nextDetect) {
      const values = history.toArray();
      const cap = this.#o.maxPeriod ?? Math.floor(values.length / 2);
      this.#candidates = detectPeriods(values, { maxPeriod: cap });
      const best = this.#candidates[0]?.period ?? 0;
      if (best !== this.#period) this.#setPeriod(best);
      this.#nextDetect = this.#seen < this.#o.detectEvery ? this.#seen * 2 : this.#seen + this.#o.detectEvery;
    }
    for (const m of this.#members) {
      m.errors.resolve(x);
      m.model.observe(x, history);
      m.errors.record((h) => m.model.predict(h, history));
    }
  }

  #weights(h: number, history: HistoryView): number[] {
    const preds = this.#members.map((m) => m.model.predict(h, history));
    const b = this.#members[0]!.errors.bucketFor(h);
    const w = this.#members.map((m, i) => {
      if (!Number.isFinite(preds[i]!) || m.errors.resolved(b) < 10) return 0;
      return Math.pow(m.errors.mse(b) + 1e-12, -this.#o.power / 2) * 1;
    });
    const sum = w.reduce((a, c) => a + c, 0);
    if (sum > 0 && Number.isFinite(sum)) return w.map((v) => v / sum);
    // No track record yet: the most specific model that can predict.
    let best = -1;
    for (let i = 0; i < this.#members.length; i++) {
      if (Number.isFinite(preds[i]!) && (best < 0 || this.#members[i]!.rank < this.#members[best]!.rank)) best = i;
    }
    return this.#members.map((_, i) => (i === best ? 1 : 0));
  }

  predict(h: number, history: HistoryView): number {
    const w = this.#weights(h, history);
    let s = 0;
    let any = false;
    for (let i = 0; i < this.#members.length; i++) {
      if (w[i]! > 0) {
        s += w[i]! * this.#members[i]!.model.predict(h, history);
        any = true;
      }
    }
    return any ? s : Number.NaN;
  }
}
