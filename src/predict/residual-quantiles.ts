/**
 * Error-tracking horizons of the forecasters: 1, 4, 16, 64, … (the ensemble's and the intervals'
 * buckets coincide, so the ensemble's cached forecasts serve both).
 */
export const HORIZON_RATIO = 4;
/** Forecast origins sampled per horizon length: h = 64 records a forecast every 16 steps. */
export const ORIGINS_PER_HORIZON = 4;

/**
 * Empirical forecast errors per horizon bucket (1, r, r², … steps with ratio r, 2 by default):
 * the forecast made `hb` steps ago for now is compared with the actual value (every step, or at
 * sampled origins for long horizons). Keeps,
 * per bucket, an exponentially weighted MSE and (when `window` > 1) the signed errors of the last
 * `window` resolutions, whose quantiles give intervals. Sorted copies are refreshed lazily (every
 * `window / 2` new errors, more often while the window fills), so quantile look-ups are O(1)
 * amortised and no step allocates. Memory: Σ hb + 2 × buckets × window floats.
 */
export class ResidualQuantiles {
  readonly horizons: readonly number[];
  readonly #hs: Int32Array;
  /** Forecast origins are sampled every stride[b] steps for bucket b (h[b] is a multiple). */
  readonly #stride: Int32Array;
  /** Pending slots of bucket b: h[b] / stride[b]. */
  readonly #slots: Int32Array;
  readonly #bucketOf: Int8Array;
  readonly #pending: Float32Array;
  readonly #offset: Int32Array;
  readonly #w: number;
  /** Ring of signed errors per bucket: bucket b at [b·w, (b+1)·w). */
  readonly #errors: Float32Array;
  /** Sorted copy per bucket (first `#sortedN[b]` entries valid). */
  readonly #sorted: Float32Array;
  readonly #sortedN: Int32Array;
  /** The 5 % and 95 % quantiles of the sorted copy (unscaled), for the online calibration. */
  readonly #q05: Float64Array;
  readonly #q95: Float64Array;
  readonly #stale: Int32Array;
  readonly #count: Int32Array;
  readonly #head: Int32Array;
  readonly #total: Float64Array;
  readonly #mse: Float64Array;
  readonly #alpha: number;
  readonly #calibrate: boolean;
  readonly #refreshEvery: number;
  /** Adaptive interval scale per bucket (adaptive conformal inference on the 90 % interval). */
  readonly #scale: Float64Array;
  #t = 0;

  /**
   * @param maxHorizon the longest horizon tracked; buckets are powers of `ratio` up to it
   * @param window signed errors kept per bucket (1 keeps only the MSE)
   * @param ewmaAlpha weight of the newest squared error in the MSE
   * @param calibrate adapt each bucket's interval scale online so that 90 % intervals miss 10 %
   * @param ratio ratio of successive bucket horizons (an integer ≥ 2)
   * @param originsPerHorizon forecast origins sampled per horizon length at each bucket: bucket h
   *   records a forecast every max(1, h / originsPerHorizon) steps (Infinity: every step). Errors
   *   of overlapping long-horizon forecasts are strongly correlated, so sampling loses little
   *   information and saves most of the work.
   */
  constructor(
    maxHorizon: number,
    window = 128,
    ewmaAlpha = 0.02,
    calibrate = false,
    ratio = 2,
    originsPerHorizon = Number.POSITIVE_INFINITY,
  ) {
    const r = Math.max(2, Math.floor(ratio));
    const hs: number[] = [];
    for (let h = 1; ; h *= r) {
      hs.push(h);
      if (h >= maxHorizon) break;
    }
    this.horizons = hs;
    this.#hs = Int32Array.from(hs);
    this.#stride = Int32Array.from(hs, (h) => originStride(h, originsPerHorizon));
    this.#slots = Int32Array.from(hs, (h, b) => h / this.#stride[b]!);
    // Nearest bucket on a log scale for every integer horizon up to twice the longest.
    const top = 2 * hs[hs.length - 1]! + 1;
    this.#bucketOf = new Int8Array(top);
    for (let h = 1; h < top; h++) {
      let best = 0;
      for (let b = 1; b < hs.length; b++)
        if (Math.abs(Math.log(h / hs[b]!)) < Math.abs(Math.log(h / hs[best]!)) - 1e-12) best = b;
      this.#bucketOf[h] = best;
    }
    const w = Math.max(1, Math.floor(window));
    this.#w = w;
    const nb = hs.length;
    // One pending buffer for all buckets (bucket b at offset Σ_{k<b} h_k): fewer small objects.
    this.#offset = new Int32Array(nb);
    let total = 0;
    hs.forEach((_, b) => {
      this.#offset[b] = total;
      total += this.#slots[b]!;
    });
    this.#pending = new Float32Array(total).fill(Number.NaN);
    this.#errors = new Float32Array(w > 1 ? nb * w : 0);
    this.#sorted = new Float32Array(w > 1 ? nb * w : 0);
    this.#sortedN = new Int32Array(nb);
    this.#q05 = new Float64Array(nb);
    this.#q95 = new Float64Array(nb);
    this.#stale = new Int32Array(nb);
    this.#count = new Int32Array(nb);
    this.#head = new Int32Array(nb);
    this.#total = new Float64Array(nb);
    this.#mse = new Float64Array(nb);
    this.#alpha = ewmaAlpha;
    this.#calibrate = calibrate && w > 1;
    this.#refreshEvery = Math.max(1, Math.floor(w / 2));
    this.#scale = new Float64Array(nb).fill(1);
  }

  /** Resolves the forecasts made for this step against the actual `x`. Call before `record`. */
  resolve(x: number): void {
    const hs = this.#hs;
    const w = this.#w;
    const t = this.#t;
    for (let b = 0; b < hs.length; b++) {
      const st = this.#stride[b]!;
      if (t % st !== 0) continue;
      const p = this.#pending[this.#offset[b]! + (((t / st) | 0) % this.#slots[b]!)]!;
      if (p !== p) continue; // NaN: no forecast was recorded
      const err = x - p;
      const total = this.#total[b]!;
      const a = Math.max(this.#alpha, 1 / (total + 1));
      const m = this.#mse[b]!;
      this.#mse[b] = m + a * (err * err - m);
      this.#total[b] = total + 1;
      if (w === 1) continue;
      if (this.#calibrate) this.#calibrateStep(b, err);
      const head = this.#head[b]!;
      this.#errors[b * w + head] = err;
      this.#head[b] = head + 1 === w ? 0 : head + 1;
      if (this.#count[b]! < w) this.#count[b] = this.#count[b]! + 1;
      this.#stale[b] = this.#stale[b]! + 1;
    }
  }

  /** Records this step's forecasts for each bucket horizon (`predict(h)`), then advances time. */
  record(predict: (h: number) => number): void {
    const hs = this.#hs;
    const t = this.#t;
    for (let b = 0; b < hs.length; b++) {
      const st = this.#stride[b]!;
      if (t % st !== 0) continue;
      const p = predict(hs[b]!);
      this.#pending[this.#offset[b]! + (((t / st) | 0) % this.#slots[b]!)] = Number.isFinite(p)
        ? p
        : Number.NaN;
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
    if (!(h >= 1)) return 0;
    const i = Math.floor(h);
    if (i < this.#bucketOf.length) return this.#bucketOf[i]!;
    return this.horizons.length - 1;
  }

  /** Number of errors held for bucket `b`. */
  count(b: number): number {
    return this.#count[b] ?? 0;
  }

  /** Adaptive scale applied to bucket `b`'s quantiles (1 without calibration). */
  scale(b: number): number {
    return this.#scale[b] ?? 1;
  }

  /** Refreshes bucket `b`'s sorted copy when it is stale; returns the number of sorted errors. */
  #refresh(b: number): number {
    const n = this.#count[b]!;
    const sn = this.#sortedN[b]!;
    const stale = this.#stale[b]!;
    // While the window fills, re-sort once the count grew by an eighth; then every window / 2.
    if (sn === 0 ? n > 0 : stale >= (n < this.#w ? Math.max(1, sn >> 3) : this.#refreshEvery)) {
      const w = this.#w;
      const s = this.#sorted.subarray(b * w, b * w + n);
      s.set(this.#errors.subarray(b * w, b * w + n));
      s.sort();
      this.#sortedN[b] = n;
      this.#stale[b] = 0;
      this.#q05[b] = quantileAt(s, 0, n, 0.05);
      this.#q95[b] = quantileAt(s, 0, n, 0.95);
      return n;
    }
    return sn;
  }

  /**
   * Online calibration: did the actual fall inside the current (scaled) 90 % interval? Nudge the
   * scale so that the miss rate tracks 10 % — adaptive conformal inference (Gibbs & Candès 2021)
   * on a log scale, bounded to [0.5, 4].
   */
  #calibrateStep(b: number, err: number): void {
    if (this.#count[b]! < 30) return;
    this.#refresh(b);
    const k = this.#scale[b]!;
    const lo = Math.min(0, this.#q05[b]!) * k;
    const hi = Math.max(0, this.#q95[b]!) * k;
    const miss = err < lo || err > hi ? 1 : 0;
    this.#scale[b] = Math.min(4, Math.max(0.5, k * Math.exp(0.03 * (miss - 0.1))));
  }

  /** Signed-error quantiles [lo, hi] of bucket `b` (scaled), or undefined with fewer than `minCount`. */
  bucketQuantiles(b: number, pLo: number, pHi: number, minCount: number): [number, number] | undefined {
    const n = this.#count[b] ?? 0;
    if (n < minCount || n === 0) return undefined;
    const sn = this.#refresh(b);
    const k = this.#scale[b]!;
    const at = b * this.#w;
    return [quantileAt(this.#sorted, at, sn, pLo) * k, quantileAt(this.#sorted, at, sn, pHi) * k];
  }
}

/** Origin stride of a bucket of horizon `h`: max(1, h / originsPerHorizon), a divisor of h. */
export function originStride(h: number, originsPerHorizon: number): number {
  if (!Number.isFinite(originsPerHorizon) || originsPerHorizon <= 0) return 1;
  let s = Math.max(1, Math.floor(h / originsPerHorizon));
  while (h % s !== 0) s--;
  return s;
}

/** Linear-interpolated quantile (type 7) of the sorted run `sorted[start … start + n)`. */
function quantileAt(sorted: ArrayLike<number>, start: number, n: number, p: number): number {
  if (n === 0) return Number.NaN;
  const pos = Math.min(n - 1, Math.max(0, p * (n - 1)));
  const i = Math.floor(pos);
  const f = pos - i;
  const a = sorted[start + i]!;
  return i + 1 < n ? a + f * (sorted[start + i + 1]! - a) : a;
}

/** Linear-interpolated quantile of a sorted array (type 7). */
export function quantileSorted(sorted: ArrayLike<number>, p: number): number {
  return quantileAt(sorted, 0, sorted.length, p);
}
