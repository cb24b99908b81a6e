/**
 * Empirical forecast errors per horizon bucket (1, 2, 4, … steps): each step, the forecast made
 * `hb` steps ago for now is compared with the actual value. Keeps, per bucket, an exponentially
 * weighted MSE and (when `window` > 1) the signed errors of the last `window` resolutions, whose
 * quantiles give intervals. Sorted copies are refreshed lazily (at most every `window / 2` new
 * errors), so quantile look-ups are O(1) amortised. Memory: Σ hb + 2 × buckets × window floats.
 */
export class ResidualQuantiles {
  readonly horizons: readonly number[];
  readonly #pending: Float32Array;
  readonly #offset: Int32Array;
  readonly #errors: Float32Array[];
  readonly #sorted: Float32Array[];
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
   * @param maxHorizon the longest horizon tracked; buckets are powers of two up to it
   * @param window signed errors kept per bucket (1 keeps only the MSE)
   * @param ewmaAlpha weight of the newest squared error in the MSE
   * @param calibrate adapt each bucket's interval scale online so that 90 % intervals miss 10 %
   */
  constructor(maxHorizon: number, window = 128, ewmaAlpha = 0.02, calibrate = false) {
    const hs: number[] = [];
    for (let h = 1; ; h *= 2) {
      hs.push(h);
      if (h >= maxHorizon) break;
    }
    this.horizons = hs;
    const w = Math.max(1, Math.floor(window));
    // One pending buffer for all buckets (bucket b at offset Σ_{k<b} h_k): fewer small objects.
    this.#offset = new Int32Array(hs.length);
    let total = 0;
    hs.forEach((h, b) => {
      this.#offset[b] = total;
      total += h;
    });
    this.#pending = new Float32Array(total).fill(Number.NaN);
    this.#errors = w > 1 ? hs.map(() => new Float32Array(w)) : [];
    this.#sorted = w > 1 ? hs.map(() => EMPTY) : [];
    this.#stale = new Int32Array(hs.length);
    this.#count = new Int32Array(hs.length);
    this.#head = new Int32Array(hs.length);
    this.#total = new Float64Array(hs.length);
    this.#mse = new Float64Array(hs.length);
    this.#alpha = ewmaAlpha;
    this.#calibrate = calibrate && w > 1;
    this.#refreshEvery = Math.max(1, Math.floor(w / 2));
    this.#scale = new Float64Array(hs.length).fill(1);
  }

  /** Resolves the forecasts made for this step against the actual `x`. Call before `record`. */
  resolve(x: number): void {
    const hs = this.horizons;
    for (let b = 0; b < hs.length; b++) {
      const p = this.#pending[this.#offset[b]! + (this.#t % hs[b]!)]!;
      if (Number.isNaN(p)) continue;
      const err = x - p;
      const total = this.#total[b]!;
      const a = Math.max(this.#alpha, 1 / (total + 1));
      const m = this.#mse[b]!;
      this.#mse[b] = m + a * (err * err - m);
      this.#total[b] = total + 1;
      const e = this.#errors[b];
      if (e === undefined) continue;
      if (this.#calibrate) this.#calibrateStep(b, err);
      e[this.#head[b]!] = err;
      this.#head[b] = (this.#head[b]! + 1) % e.length;
      if (this.#count[b]! < e.length) this.#count[b] = this.#count[b]! + 1;
      this.#stale[b] = this.#stale[b]! + 1;
    }
  }

  /** Records this step's forecasts for each bucket horizon (`predict(h)`), then advances time. */
  record(predict: (h: number) => number): void {
    const hs = this.horizons;
    for (let b = 0; b < hs.length; b++) {
      const p = predict(hs[b]!);
      this.#pending[this.#offset[b]! + (this.#t % hs[b]!)] = Number.isFinite(p) ? p : Number.NaN;
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
    if (h < 1) return 0;
    const i = Math.floor(h);
    if (i < BUCKET_OF.length) return Math.min(this.horizons.length - 1, BUCKET_OF[i]!);
    return Math.min(this.horizons.length - 1, Math.round(Math.log2(h)));
  }

  /** Number of errors held for bucket `b`. */
  count(b: number): number {
    return this.#count[b] ?? 0;
  }

  /** Adaptive scale applied to bucket `b`'s quantiles (1 without calibration). */
  scale(b: number): number {
    return this.#scale[b] ?? 1;
  }

  #sortedErrors(b: number): Float32Array {
    const n = this.#count[b]!;
    let s = this.#sorted[b]!;
    if (s.length !== n || this.#stale[b]! >= this.#refreshEvery) {
      s = this.#errors[b]!.slice(0, n).sort();
      this.#sorted[b] = s;
      this.#stale[b] = 0;
    }
    return s;
  }

  /**
   * Online calibration: did the actual fall inside the current (scaled) 90 % interval? Nudge the
   * scale so that the miss rate tracks 10 % — adaptive conformal inference (Gibbs & Candès 2021)
   * on a log scale, bounded to [0.5, 4].
   */
  #calibrateStep(b: number, err: number): void {
    if (this.#count[b]! < 30) return;
    const s = this.#sortedErrors(b);
    const k = this.#scale[b]!;
    const lo = Math.min(0, quantileSorted(s, 0.05)) * k;
    const hi = Math.max(0, quantileSorted(s, 0.95)) * k;
    const miss = err < lo || err > hi ? 1 : 0;
    this.#scale[b] = Math.min(4, Math.max(0.5, k * Math.exp(0.03 * (miss - 0.1))));
  }

  /** Signed-error quantiles [lo, hi] of bucket `b` (scaled), or undefined with fewer than `minCount`. */
  bucketQuantiles(b: number, pLo: number, pHi: number, minCount: number): [number, number] | undefined {
    const n = this.#count[b] ?? 0;
    if (n < minCount || n === 0) return undefined;
    const s = this.#sortedErrors(b);
    const k = this.#scale[b]!;
    return [quantileSorted(s, pLo) * k, quantileSorted(s, pHi) * k];
  }
}

const EMPTY = new Float32Array(0);

const BUCKET_OF = Int8Array.from({ length: 1025 }, (_, h) => (h < 1 ? 0 : Math.round(Math.log2(h))));

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
