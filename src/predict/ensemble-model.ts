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
  /** Re-run period detection every this many values once warmed up. @default 1440 */
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
  readonly #o: {
    period: number | undefined;
    maxPeriod: number | undefined;
    maxHorizon: number;
    power: number;
    detectEvery: number;
  };
  readonly #members: Member[] = [];
  #period = 0;
  #candidates: PeriodCandidate[] = [];
  #nextDetect = 32;
  #preds = new Float64Array(0);
  #bw = new Float64Array(0);
  #weightsAt = -1;
  #cache = new Float64Array(0);
  #cacheAt = -1;
  #cacheMember = 0;
  readonly #cachedPredict = (h: number): number =>
    this.#cache[this.#members[0]!.errors.bucketFor(h) * this.#members.length + this.#cacheMember]!;
  #w = new Float64Array(0);
  #seen = 0;

  constructor(options: EnsembleOptions = {}) {
    this.#o = {
      period: options.period,
      maxPeriod: options.maxPeriod,
      maxHorizon: options.maxHorizon ?? 64,
      power: options.power ?? 4,
      detectEvery: options.detectEvery ?? 1440,
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
    this.#fill(h, history);
    return this.#members.map((m, i) => ({ name: m.model.name, weight: this.#w[i] ?? 0 }));
  }

  #add(model: PointModel, rank: number): void {
    this.#members.push({ model, errors: new ResidualQuantiles(this.#o.maxHorizon, 1, 0.02), rank });
    this.#preds = new Float64Array(this.#members.length);
    this.#w = new Float64Array(this.#members.length);
    this.#weightsAt = -1;
  }

  #setPeriod(p: number): void {
    this.#period = p;
    for (let i = this.#members.length - 1; i >= 0; i--)
      if (this.#members[i]!.rank < 2) this.#members.splice(i, 1);
    this.#preds = new Float64Array(this.#members.length);
    this.#w = new Float64Array(this.#members.length);
    this.#weightsAt = -1;
    if (p > 1) {
      this.#add(new SeasonalNaiveModel(p), 1);
      this.#add(new SeasonalNaiveModel(p, 3), 1);
      this.#add(new HoltWintersModel({ period: p, damped: true }), 0);
    }
  }

  observe(x: number, history: HistoryView): void {
    this.#seen++;
    if (this.#o.period !== undefined && this.#period === 0 && this.#o.period > 1)
      this.#setPeriod(this.#o.period);
    if (this.#o.period === undefined && this.#seen >= this.#nextDetect) {
      const values = history.toArray();
      const cap = this.#o.maxPeriod ?? Math.floor(values.length / 2);
      this.#candidates = detectPeriods(values, { maxPeriod: cap });
      const best = this.#candidates[0]?.period ?? 0;
      if (best !== this.#period) this.#setPeriod(best);
      this.#nextDetect = this.#seen < this.#o.detectEvery ? this.#seen * 2 : this.#seen + this.#o.detectEvery;
    }
    const ms = this.#members;
    const hs = ms[0]!.errors.horizons;
    if (this.#cache.length !== hs.length * ms.length) this.#cache = new Float64Array(hs.length * ms.length);
    for (let i = 0; i < ms.length; i++) {
      const m = ms[i]!;
      m.errors.resolve(x);
      m.model.observe(x, history);
      // Predictions at the bucket horizons, shared by the member's error record and by the
      // ensemble's own forecasts at those horizons until the next value arrives.
      for (let b = 0; b < hs.length; b++) this.#cache[b * ms.length + i] = m.model.predict(hs[b]!, history);
      this.#cacheMember = i;
      m.errors.record(this.#cachedPredict);
    }
    this.#cacheAt = this.#seen;
  }

  /** Recomputes every bucket's normalised member weights (once per observed value). */
  #refreshWeights(): void {
    const ms = this.#members;
    const nb = ms[0]!.errors.horizons.length;
    if (this.#bw.length !== nb * ms.length) this.#bw = new Float64Array(nb * ms.length);
    const half = this.#o.power / 2;
    for (let b = 0; b < nb; b++) {
      let sum = 0;
      for (let i = 0; i < ms.length; i++) {
        const e = ms[i]!.errors;
        const v =
          e.resolved(b) < 10
            ? 0
            : half === 2
              ? 1 / ((e.mse(b) + 1e-12) * (e.mse(b) + 1e-12))
              : Math.pow(e.mse(b) + 1e-12, -half);
        this.#bw[b * ms.length + i] = Number.isFinite(v) ? v : 0;
        sum += Number.isFinite(v) ? v : 0;
      }
      for (let i = 0; i < ms.length; i++)
        this.#bw[b * ms.length + i] = sum > 0 ? this.#bw[b * ms.length + i]! / sum : 0;
    }
    this.#weightsAt = this.#seen;
  }

  /** Fills the scratch arrays with each member's prediction and normalised weight at `h`. */
  #fill(h: number, history: HistoryView): void {
    const ms = this.#members;
    if (this.#weightsAt !== this.#seen) this.#refreshWeights();
    const preds = this.#preds;
    const w = this.#w;
    const bucket = ms[0]!.errors.bucketFor(h);
    const base = bucket * ms.length;
    const cached =
      this.#cacheAt === this.#seen &&
      ms[0]!.errors.horizons[bucket] === h &&
      this.#cache.length === ms[0]!.errors.horizons.length * ms.length;
    let sum = 0;
    let best = -1;
    for (let i = 0; i < ms.length; i++) {
      const p = cached ? this.#cache[base + i]! : ms[i]!.model.predict(h, history);
      preds[i] = p;
      if (!Number.isFinite(p)) {
        w[i] = 0;
        continue;
      }
      if (best < 0 || ms[i]!.rank < ms[best]!.rank) best = i;
      w[i] = this.#bw[base + i]!;
      sum += w[i]!;
    }
    if (sum > 0) {
      if (Math.abs(sum - 1) > 1e-12) for (let i = 0; i < ms.length; i++) w[i] = w[i]! / sum;
    } else {
      // No track record yet: the most specific model that can predict.
      for (let i = 0; i < ms.length; i++) w[i] = i === best ? 1 : 0;
    }
  }

  predict(h: number, history: HistoryView): number {
    this.#fill(h, history);
    let s = 0;
    let any = false;
    for (let i = 0; i < this.#members.length; i++) {
      const w = this.#w[i]!;
      if (w > 0) {
        s += w * this.#preds[i]!;
        any = true;
      }
    }
    return any ? s : Number.NaN;
  }
}
