/**
 * Error-tracking horizons of the forecasters: 1, 4, 16, 64, … (the ensemble's and the intervals'
 * buckets coincide, so the ensemble's cached forecasts serve both).
 */
export const HORIZON_RATIO = 4;
/** Forecast origins sampled per horizon length: h = 64 records a forecast every 16 steps. */
export const ORIGINS_PER_HORIZON = 4;

const SORTED_N = 0;
const Q05 = 1;
const Q95 = 2;
const STALE = 3;
const COUNT = 4;
const HEAD = 5;
const TOTAL = 6;
const MSE = 7;
const SCALE = 8;
const STATS = 9;

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
  /** Pending forecasts at [0, eo), the error rings at [eo, so), their sorted copies from so. */
  readonly #buf: Float32Array;
  readonly #eo: number;
  readonly #so: number;
  readonly #offset: Int32Array;
  readonly #w: number;
  readonly #alpha: number;
  readonly #calibrate: boolean;
  readonly #refreshEvery: number;
  /**
   * Per-bucket statistics in one array, [k · buckets + b] for statistic k: sorted count, 5 % and
   * 95 % quantiles of the sorted copy (unscaled, for the online calibration), errors since the last
   * sort, errors held, ring head, errors ever resolved, EW MSE, adaptive interval scale (adaptive
   * conformal inference on the 90 % interval).
   */
  readonly #st: Float64Array;
  readonly #nb: number;
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
    const l = bucketLayout(maxHorizon, ratio, originsPerHorizon);
    this.horizons = l.horizons;
    this.#hs = l.hs;
    this.#stride = l.stride;
    this.#slots = l.slots;
    this.#bucketOf = l.bucketOf;
    this.#offset = l.offset;
    const hs = l.horizons;
    const total = l.pendingSize;
    const w = Math.max(1, Math.floor(window));
    this.#w = w;
    const nb = hs.length;
    const ring = w > 1 ? nb * w : 0;
    this.#eo = total;
    this.#so = total + ring;
    this.#buf = new Float32Array(total + 2 * ring);
    this.#buf.fill(Number.NaN, 0, total);
    this.#nb = nb;
    this.#st = new Float64Array(STATS * nb);
    this.#st.fill(1, SCALE * nb, (SCALE + 1) * nb);
    this.#alpha = ewmaAlpha;
    this.#calibrate = calibrate && w > 1;
    this.#refreshEvery = Math.max(1, Math.floor(w / 2));
  }

  /** Resolves the forecasts made for this step against the actual `x`. Call before `record`. */
  resolve(x: number): void {
    const hs = this.#hs;
    const w = this.#w;
    const t = this.#t;
    for (let b = 0; b < hs.length; b++) {
      const st = this.#stride[b]!;
      if (t % st !== 0) continue;
      const p = this.#buf[this.#offset[b]! + (((t / st) | 0) % this.#slots[b]!)]!;
      if (p !== p) continue; // NaN: no forecast was recorded
      const err = x - p;
      const total = this.#st[TOTAL * this.#nb + b]!;
      const a = Math.max(this.#alpha, 1 / (total + 1));
      const m = this.#st[MSE * this.#nb + b]!;
      this.#st[MSE * this.#nb + b] = m + a * (err * err - m);
      this.#st[TOTAL * this.#nb + b] = total + 1;
      if (w === 1) continue;
      if (this.#calibrate) this.#calibrateStep(b, err);
      const head = this.#st[HEAD * this.#nb + b]!;
      this.#buf[this.#eo + b * w + head] = err;
      this.#st[HEAD * this.#nb + b] = head + 1 === w ? 0 : head + 1;
      if (this.#st[COUNT * this.#nb + b]! < w)
        this.#st[COUNT * this.#nb + b] = this.#st[COUNT * this.#nb + b]! + 1;
      this.#st[STALE * this.#nb + b] = this.#st[STALE * this.#nb + b]! + 1;
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
      this.#buf[this.#offset[b]! + (((t / st) | 0) % this.#slots[b]!)] = Number.isFinite(p) ? p : Number.NaN;
    }
    this.#t++;
  }

  /** Exponentially weighted mean squared error of bucket `b` (0 before any error). */
  mse(b: number): number {
    return this.#st[MSE * this.#nb + b] ?? 0;
  }

  /** Errors ever resolved for bucket `b`. */
  resolved(b: number): number {
    return this.#st[TOTAL * this.#nb + b] ?? 0;
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
    return this.#st[COUNT * this.#nb + b] ?? 0;
  }

  /** Adaptive scale applied to bucket `b`'s quantiles (1 without calibration). */
  scale(b: number): number {
    return this.#st[SCALE * this.#nb + b] ?? 1;
  }

  /** Refreshes bucket `b`'s sorted copy when it is stale; returns the number of sorted errors. */
  #refresh(b: number): number {
    const n = this.#st[COUNT * this.#nb + b]!;
    const sn = this.#st[SORTED_N * this.#nb + b]!;
    const stale = this.#st[STALE * this.#nb + b]!;
    // While the window fills, re-sort once the count grew by an eighth; then every window / 2.
    if (sn === 0 ? n > 0 : stale >= (n < this.#w ? Math.max(1, sn >> 3) : this.#refreshEvery)) {
      const w = this.#w;
      const s = this.#buf.subarray(this.#so + b * w, this.#so + b * w + n);
      s.set(this.#buf.subarray(this.#eo + b * w, this.#eo + b * w + n));
      s.sort();
      this.#st[SORTED_N * this.#nb + b] = n;
      this.#st[STALE * this.#nb + b] = 0;
      this.#st[Q05 * this.#nb + b] = quantileAt(s, 0, n, 0.05);
      this.#st[Q95 * this.#nb + b] = quantileAt(s, 0, n, 0.95);
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
    if (this.#st[COUNT * this.#nb + b]! < 30) return;
    this.#refresh(b);
    const k = this.#st[SCALE * this.#nb + b]!;
    const lo = Math.min(0, this.#st[Q05 * this.#nb + b]!) * k;
    const hi = Math.max(0, this.#st[Q95 * this.#nb + b]!) * k;
    const miss = err < lo || err > hi ? 1 : 0;
    this.#st[SCALE * this.#nb + b] = Math.min(4, Math.max(0.5, k * Math.exp(0.03 * (miss - 0.1))));
  }

  /** Signed-error quantiles [lo, hi] of bucket `b` (scaled), or undefined with fewer than `minCount`. */
  bucketQuantiles(b: number, pLo: number, pHi: number, minCount: number): [number, number] | undefined {
    const n = this.#st[COUNT * this.#nb + b] ?? 0;
    if (n < minCount || n === 0) return undefined;
    const sn = this.#refresh(b);
    const k = this.#st[SCALE * this.#nb + b]!;
    const at = this.#so + b * this.#w;
    return [quantileAt(this.#buf, at, sn, pLo) * k, quantileAt(this.#buf, at, sn, pHi) * k];
  }
}

interface BucketLayout {
  horizons: readonly number[];
  hs: Int32Array;
  stride: Int32Array;
  slots: Int32Array;
  bucketOf: Int8Array;
  offset: Int32Array;
  pendingSize: number;
}

const bucketLayouts = new Map<string, BucketLayout>();

/** Buckets, strides and slots for the settings; shared by every instance with the same ones. */
function bucketLayout(maxHorizon: number, ratio: number, originsPerHorizon: number): BucketLayout {
  const r = Math.max(2, Math.floor(ratio));
  const key = `${maxHorizon}/${r}/${originsPerHorizon}`;
  const cached = bucketLayouts.get(key);
  if (cached) return cached;
  const hs: number[] = [];
  for (let h = 1; ; h *= r) {
    hs.push(h);
    if (h >= maxHorizon) break;
  }
  const stride = Int32Array.from(hs, (h) => originStride(h, originsPerHorizon));
  const slots = Int32Array.from(hs, (h, b) => h / stride[b]!);
  // Nearest bucket on a log scale for every integer horizon up to twice the longest.
  const top = 2 * hs[hs.length - 1]! + 1;
  const bucketOf = new Int8Array(top);
  for (let h = 1; h < top; h++) {
    let best = 0;
    for (let b = 1; b < hs.length; b++)
      if (Math.abs(Math.log(h / hs[b]!)) < Math.abs(Math.log(h / hs[best]!)) - 1e-12) best = b;
    bucketOf[h] = best;
  }
  // One pending buffer for all buckets (bucket b at offset Σ_{k<b} slots_k).
  const offset = new Int32Array(hs.length);
  let total = 0;
  hs.forEach((_, b) => {
    offset[b] = total;
    total += slots[b]!;
  });
  const l: BucketLayout = {
    horizons: hs,
    hs: Int32Array.from(hs),
    stride,
    slots,
    bucketOf,
    offset,
    pendingSize: total,
  };
  bucketLayouts.set(key, l);
  return l;
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
