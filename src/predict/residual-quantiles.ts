/**
 * Empirical forecast errors per horizon bucket (1, 2, 4, … steps): each step, the forecast made
 * `hb` steps ago for now is compared with the actual value; the signed errors of the last
 * `window` resolutions per bucket give interval quantiles. Memory: Σ hb + buckets × window floats.
 */
export class ResidualQuantiles {
  readonly horizons: readonly number[];
  readonly #pending: Float64Array[];
  readonly #errors: Float32Array[];
  readonly #count: number[];
  readonly #head: number[];
  readonly #mse: Float64Array;
  readonly #total: number[];
  readonly #alpha: number;
  readonly #calibrate: boolean;
  /** Adaptive interval scale per bucket (adaptive conformal inference on the 90 % interval). */
  readonly #scale: Float64Array;
  readonly #cachedQ: Float64Array;
  readonly #sinceCache: number[];
  #t = 0;

  /** @param maxHorizon the longest horizon tracked; buckets are powers of two up to it. */
  constructor(maxHorizon: number, window = 256, ewmaAlpha = 0.02, calibrate = false) {
    const hs: number[] = [];
    for (let h = 1; ; h *= 2) {
      hs.push(h);
      if (h >= maxHorizon) break;
    }
    this.horizons = hs;
    this.#pending = hs.map((h) => new Float64Array(h).fill(Number.NaN));
    this.#errors = hs.map(() => new Float32Array(window));
    this.#count = hs.map(() => 0);
    this.#head = hs.map(() => 0);
    this.#mse = new Float64Array(hs.length);
    this.#total = hs.map(() => 0);
    this.#alpha = ewmaAlpha;
    this.#calibrate = calibrate;
    this.#scale = new Float64Array(hs.length).fill(1);
    this.#cachedQ = new Float64Array(hs.length * 2).fill(Number.NaN);
    this.#sinceCache = hs.map(() => 0);
  }

  /** Adaptive scale applied to bucket `b`'s quantiles (1 without calibration). */
  scale(b: number): number {
    return this.#scale[b] ?? 1;
  }

  /**
   * Online calibration: did the actual fall inside the current 90 % interval (scaled)? Nudge the
   * scale so that the miss rate tracks 10 % (Gibbs & Candès' adaptive conformal inference, on a
   * log scale).
   */
  #calibrateStep(b: number, err: number): void {
    if (this.#count[b]! < 30) return;
    if (this.#sinceCache[b]! <= 0 || Number.isNaN(this.#cachedQ[2 * b]!)) {
      const q = this.bucketQuantiles(b, 0.05, 0.95, 30, true);
      if (q === undefined) return;
      this.#cachedQ[2 * b] = q[0];
      this.#cachedQ[2 * b + 1] = q[1];
      this.#sinceCache[b] = 16;
    }
    this.#sinceCache[b] = this.#sinceCache[b]! - 1;
    const k = this.#scale[b]!;
    const miss = err < Math.min(0, this.#cachedQ[2 * b]!) * k || err > Math.max(0, this.#cachedQ[2 * b + 1]!) * k ? 1 : 0;
    this.#scale[b] = Math.min(4, Math.max(0.5, k * Math.exp(0.03 * (miss - 0.1))));
  }

  /** Resolves the forecasts made for this step against the actual `x`. Call before `record`. */
  resolve(x: number): void {
    for (let b = 0; b < this.horizons.length; b++) {
      const h = this.horizons[b]!;
      const slot = this.#t % h;
      const p = this.#pending[b]![slot]!;
      if (!Number.isNaN(p)) {
        const e = this.#errors[b]!;
        const err = x - p;
        const a = Math.max(this.#alpha, 1 / (this.#total[b]! + 1));
        this.#mse[b] = this.#mse[b]! + a * (err * err - this.#mse[b]!);
        this.#total[b] = this.#total[b]! + 1;
        if (this.#calibrate) this.#calibrateStep(b, err);
        e[this.#head[b]!] = err;
        this.#head[b] = (this.#head[b]! + 1) % e.length;
        this.#count[b] = Math.min(e.length, this.#count[b]! + 1);
      }
    }
  }

  /** Records this step's forecasts for each bucket horizon (`predict(h)`), then advances time. */
  record(predict: (h: number) => number): void {
    for (let b = 0; b < this.horizons.length; b++) {
      const h = this.horizons[b]!;
      const p = predict(h);
      this.#pending[b]![this.#t % h] = Number.isFinite(p) ? p : Number.NaN;
    }
    this.#t++;
  }

  /** Exponentially weighted mean squared error of bucket `b` (0 before any error). */
  mse(b: number): number {
    return this.#mse[b] ?? 0;
  }

  /** Errors ever resolved for bucket `b`. */
  resolved(b: number): number {
    return this.#total[b] ?? 0;
  }

  /** Bucket index whose horizon is nearest to `h` on a log scale. */
  bucketFor(h: number): number {
    const b = Math.round(Math.log2(Math.max(1, h)));
    return Math.min(this.horizons.length - 1, b);
  }

  /** Number of errors held for bucket `b`. */
  count(b: number): number {
    return this.#count[b] ?? 0;
  }

  /** Signed-error quantiles [lo, hi] of bucket `b`, or undefined with fewer than `minCount`. */
  bucketQuantiles(b: number, pLo: number, pHi: number, minCount: number, raw = false): [number, number] | undefined {
    const n = this.#count[b] ?? 0;
    if (n < minCount) return undefined;
    const sorted = Float64Array.from(this.#errors[b]!.subarray(0, n)).sort();
    const k = raw ? 1 : this.#scale[b]!;
    return [quantileSorted(sorted, pLo) * k, quantileSorted(sorted, pHi) * k];
  }

  /** Root mean square error of bucket `b` (NaN when empty). */
  rmse(b: number): number {
    const n = this.#count[b] ?? 0;
    if (n === 0) return Number.NaN;
    let s = 0;
    const e = this.#errors[b]!;
    for (let i = 0; i < n; i++) s += e[i]! * e[i]!;
    return Math.sqrt(s / n);
  }
}

/** Linear-interpolated quantile of a sorted array (type 7). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = Math.min(n - 1, Math.max(0, p * (n - 1)));
  const i = Math.floor(pos);
  const f = pos - i;
  const a = sorted[i]!;
  return i + 1 < n ? a + f * (sorted[i + 1]! - a) : a;
}
