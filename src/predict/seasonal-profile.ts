/**
 * A daily (or any period's) load profile learned from history: the period is cut into `bins`
 * phase bins and each bin holds the mean of the values whose time falls in it. Pure; O(n).
 *
 * @param times sample times (ms)
 * @param values the samples
 * @param periodMs the period (86400000 for a day)
 * @param bins phase bins per period (24: hourly)
 * @returns the mean per bin, NaN for a bin without samples
 */
export function seasonalProfile(
  times: ArrayLike<number>,
  values: ArrayLike<number>,
  periodMs: number,
  bins: number,
): Float64Array {
  const n = Math.max(1, Math.floor(bins));
  const sum = new Float64Array(n);
  const count = new Float64Array(n);
  for (let i = 0; i < Math.min(times.length, values.length); i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) continue;
    const b = phaseBin(times[i]!, periodMs, n);
    sum[b] = sum[b]! + v;
    count[b] = count[b]! + 1;
  }
  const out = new Float64Array(n);
  for (let b = 0; b < n; b++) out[b] = count[b]! > 0 ? sum[b]! / count[b]! : Number.NaN;
  return out;
}

/** The phase bin of time `t` in a period of `periodMs` cut into `bins` (t may be negative). */
export function phaseBin(t: number, periodMs: number, bins: number): number {
  const phase = ((t % periodMs) + periodMs) % periodMs;
  return Math.min(bins - 1, Math.floor((phase / periodMs) * bins));
}

/** Options of {@link SeasonalProfile}. */
export interface SeasonalProfileOptions {
  /** The period (ms). @default 86400000 (a day) */
  periodMs?: number;
  /** Phase bins per period. @default 24 */
  bins?: number;
  /** Weight of a new period's mean in a bin (exponential average across periods). @default 0.3 */
  alpha?: number;
}

/**
 * {@link seasonalProfile} online: each bin's mean per period, averaged across periods
 * exponentially (recent days count more). A bin is known once a whole period has been seen (AWS
 * predictive scaling also wants 24 h of history first).
 */
export class SeasonalProfile {
  readonly #period: number;
  readonly #bins: number;
  readonly #alpha: number;
  readonly #mean: Float64Array;
  #first = Number.NaN;
  #bin = -1;
  #slot = Number.NaN;
  #sum = 0;
  #n = 0;
  #last = Number.NaN;

  constructor(options: SeasonalProfileOptions = {}) {
    this.#period = options.periodMs ?? 86_400_000;
    this.#bins = Math.max(1, Math.floor(options.bins ?? 24));
    this.#alpha = options.alpha ?? 0.3;
    this.#mean = new Float64Array(this.#bins).fill(Number.NaN);
  }

  /** Adds the value at time `t` (non-decreasing times). */
  update(t: number, value: number): void {
    if (!Number.isFinite(t) || !Number.isFinite(value)) return;
    if (Number.isNaN(this.#first)) this.#first = t;
    this.#last = t;
    // A new bin, or the same bin of a new period, closes the previous one.
    const slot = Math.floor(t / (this.#period / this.#bins));
    if (slot !== this.#slot) this.#close();
    this.#slot = slot;
    this.#bin = phaseBin(t, this.#period, this.#bins);
    this.#sum += value;
    this.#n++;
  }

  #close(): void {
    if (this.#n === 0 || this.#bin < 0) return;
    const m = this.#sum / this.#n;
    const old = this.#mean[this.#bin]!;
    this.#mean[this.#bin] = Number.isNaN(old) ? m : old + this.#alpha * (m - old);
    this.#sum = 0;
    this.#n = 0;
  }

  /** Whether a whole period has been seen. */
  get ready(): boolean {
    return this.#last - this.#first >= this.#period;
  }

  /** The profile's largest mean over `[from, to]` (ms); NaN before {@link ready} or with no bin known. */
  peak(from: number, to: number): number {
    if (!this.ready) return Number.NaN;
    const step = this.#period / this.#bins;
    let best = Number.NaN;
    for (let t = from; t <= to + step; t += step) {
      if (t > to && phaseBin(t, this.#period, this.#bins) !== phaseBin(to, this.#period, this.#bins)) break;
      const m = this.#mean[phaseBin(t, this.#period, this.#bins)]!;
      if (!Number.isNaN(m) && !(m <= best)) best = m;
    }
    return best;
  }
}
