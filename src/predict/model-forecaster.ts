import type { ForecastPoint, Forecaster, PointModel } from './forecaster.js';
import { HORIZON_RATIO, ORIGINS_PER_HORIZON, ResidualQuantiles } from './residual-quantiles.js';
import { RingBuffer } from './ring-buffer.js';

/** Options shared by every forecaster. */
export interface ForecasterOptions {
  /** Values kept in history (float32, 4 bytes each; two periods are needed to fit a season). @default 3072 */
  capacity?: number;
  /**
   * Longest horizon with tracked empirical errors (at horizons 1, 4, 16, …; between them the
   * quantiles are interpolated on a log scale, beyond the last they grow with √h). @default 64
   */
  maxHorizon?: number;
  /** Errors kept per horizon bucket for the interval quantiles. @default 128 */
  residualWindow?: number;
  /** Errors a bucket needs before its quantiles are trusted. @default 30 */
  minResiduals?: number;
  /**
   * Online interval calibration: scale each horizon's quantiles so that the realised miss rate of
   * the 90 % interval tracks 10 % (adaptive conformal inference). @default true
   */
  calibrate?: boolean;
}

/** Inverse standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9). */
export function normalQuantile(p: number): number {
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
    2.506628277459239,
  ];
  const b = [
    -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
  ];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const q0 = Math.min(1 - 1e-12, Math.max(1e-12, p));
  if (q0 < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(q0));
    return (
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
    );
  }
  if (q0 > 1 - 0.02425) return -normalQuantile(1 - q0);
  const q = q0 - 0.5;
  const r = q * q;
  return (
    ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
    (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  );
}

const finiteOr = (v: number, fallback: number): number => (Number.isFinite(v) ? v : fallback);

/**
 * Wraps a {@link PointModel} into a {@link Forecaster}: keeps a bounded history, tracks the
 * model's signed errors per horizon and builds intervals from their empirical quantiles
 * (conformal-style), falling back to a Gaussian on the step-to-step spread while errors are few.
 */
export class ModelForecaster implements Forecaster {
  readonly name: string;
  readonly #model: PointModel;
  readonly #history: RingBuffer;
  readonly #residuals: ResidualQuantiles;
  readonly #minResiduals: number;
  readonly #maxHorizon: number;
  #count = 0;
  #lastT = Number.NaN;
  #diffAbs = 0;
  readonly #meanFn = (h: number): number => this.#mean(h);

  constructor(model: PointModel, options: ForecasterOptions = {}) {
    this.#model = model;
    this.name = model.name;
    this.#history = new RingBuffer(options.capacity ?? 3072, 32);
    this.#maxHorizon = Math.max(1, Math.floor(options.maxHorizon ?? 64));
    this.#residuals = new ResidualQuantiles(
      this.#maxHorizon,
      options.residualWindow ?? 128,
      0.02,
      options.calibrate ?? true,
      HORIZON_RATIO,
      ORIGINS_PER_HORIZON,
    );
    this.#minResiduals = options.minResiduals ?? 30;
  }

  get count(): number {
    return this.#count;
  }

  /** Time of the newest value. */
  get lastTime(): number {
    return this.#lastT;
  }

  /** The wrapped model. */
  get model(): PointModel {
    return this.#model;
  }

  /** Read access to the history. */
  get history(): RingBuffer {
    return this.#history;
  }

  /** Recent root-mean-square error at horizon `h` (NaN before any). */
  recentRmse(h: number): number {
    return Math.sqrt(this.#residuals.mse(this.#residuals.bucketFor(h)));
  }

  update(t: number, x: number): void {
    if (!Number.isFinite(x)) return;
    // History is float32: values are clamped to ±1e36 (far beyond any metric) to stay finite.
    const v = Math.max(-1e36, Math.min(1e36, x));
    this.#residuals.resolve(v);
    if (this.#history.size > 0) {
      const d = Math.abs(v - this.#history.back(0));
      this.#diffAbs += (Number.isFinite(d) ? d - this.#diffAbs : 0) / Math.min(this.#count, 200);
    }
    this.#history.push(v);
    this.#count++;
    this.#lastT = t;
    this.#model.observe(v, this.#history);
    this.#residuals.record(this.#meanFn);
  }

  #mean(h: number): number {
    const last = this.#history.size > 0 ? this.#history.back(0) : 0;
    return finiteOr(this.#model.predict(h, this.#history), finiteOr(last, 0));
  }

  /** Scaled error quantiles of bucket `b` at the central coverage, with a finite-sample widening. */
  #bucketOffsets(b: number, pLo: number, pHi: number): [number, number] | undefined {
    const r = this.#residuals;
    const n = r.count(b);
    // Finite-sample (conformal) correction: widen the quantile levels slightly.
    const adj = n > 0 ? (n + 1) / n : 1;
    return r.bucketQuantiles(
      b,
      Math.max(0, 0.5 - (0.5 - pLo) * adj),
      Math.min(1, 0.5 + (pHi - 0.5) * adj),
      this.#minResiduals,
    );
  }

  /** Interval offsets (lo ≤ 0 ≤ hi) around the mean at horizon h. */
  #offsets(h: number, coverage: number): [number, number] {
    const hs = this.#residuals.horizons;
    const pLo = (1 - coverage) / 2;
    const pHi = 1 - pLo;
    let b = 0;
    while (b + 1 < hs.length && hs[b + 1]! <= h) b++;
    const q1 = this.#bucketOffsets(b, pLo, pHi);
    if (q1 !== undefined) {
      if (h > hs[b]! && b + 1 < hs.length) {
        const q2 = this.#bucketOffsets(b + 1, pLo, pHi);
        if (q2 !== undefined) {
          const f = (Math.log2(h) - Math.log2(hs[b]!)) / (Math.log2(hs[b + 1]!) - Math.log2(hs[b]!));
          return [Math.min(0, q1[0] + f * (q2[0] - q1[0])), Math.max(0, q1[1] + f * (q2[1] - q1[1]))];
        }
      }
      const grow = h > hs[b]! ? Math.sqrt(h / hs[b]!) : 1;
      return [Math.min(0, q1[0] * grow), Math.max(0, q1[1] * grow)];
    }
    // Few errors yet: the largest bucket with enough errors, scaled by √h; else the typical step.
    for (let k = b - 1; k >= 0; k--) {
      const q = this.#bucketOffsets(k, pLo, pHi);
      if (q !== undefined) {
        const grow = Math.sqrt(h / hs[k]!);
        return [Math.min(0, q[0] * grow), Math.max(0, q[1] * grow)];
      }
    }
    const last = this.#history.size > 0 ? Math.abs(this.#history.back(0)) : 0;
    const sd = this.#count >= 3 ? Math.max(this.#diffAbs * 1.25, 1e-9) : Math.max(0.5 * last, 1e-9);
    const w = normalQuantile(pHi) * sd * Math.sqrt(h) * 1.5;
    return [-w, w];
  }

  forecast(h: number, coverage = 0.9): ForecastPoint[] {
    const steps = Math.max(0, Math.floor(Number.isFinite(h) ? h : 0));
    const cov = Number.isFinite(coverage) ? Math.min(0.999, Math.max(0.001, coverage)) : 0.9;
    const out: ForecastPoint[] = [];
    for (let i = 1; i <= steps; i++) {
      const mean = this.#mean(i);
      const [lo, hi] = this.#offsets(i, cov);
      const lower = finiteOr(mean + lo, mean);
      const upper = finiteOr(mean + hi, mean);
      out.push({ mean, lower: Math.min(lower, mean), upper: Math.max(upper, mean) });
    }
    return out;
  }
}
