/**
 * The upper quantile of *growth* within a lead time, learned from history: for every step `i` of
 * the series with a positive value, the relative growth to the highest value of the next
 * `leadSteps` steps, `max(v[i+1..i+leadSteps]) / v[i] − 1`; the `q`-quantile of those (nearest
 * rank), floored at 0. It answers "by how much may the load rise before capacity started now is
 * ready", a quantile forecast of the peak over the lead time that needs no model: bursts that a
 * mean forecast smooths away are in it as often as they happened. Only full windows count. Pure;
 * O(n · leadSteps + n log n).
 *
 * @param values the series, oldest first (e.g. one value per forecast step)
 * @param leadSteps steps of the lead time (at least 1)
 * @param q the quantile in [0, 1]
 * @returns the relative growth (0.5 = +50 %); 0 without a full window
 */
export function growthQuantile(values: ArrayLike<number>, leadSteps: number, q: number): number {
  const L = Math.max(1, Math.floor(leadSteps));
  const n = values.length;
  const growth: number[] = [];
  for (let i = 0; i + L < n; i++) {
    const base = values[i]!;
    if (!(base > 0)) continue;
    let peak = values[i + 1]!;
    for (let j = i + 2; j <= i + L; j++) if (values[j]! > peak) peak = values[j]!;
    growth.push(peak / base - 1);
  }
  if (growth.length === 0) return 0;
  growth.sort((a, b) => a - b);
  const qq = Math.min(1, Math.max(0, q));
  const k = Math.min(growth.length - 1, Math.max(0, Math.ceil(qq * growth.length) - 1));
  return Math.max(0, growth[k]!);
}

/**
 * The `q`-quantile of the peak load within the lead time, from the current load and the growth
 * history: `load × (1 + growthQuantile(history, leadSteps, q))`.
 */
export function quantilePeak(load: number, history: ArrayLike<number>, leadSteps: number, q: number): number {
  return Math.max(0, load) * (1 + growthQuantile(history, leadSteps, q));
}

/** Options of {@link GrowthQuantileTracker}. */
export interface GrowthQuantileOptions {
  /** Steps of the lead time. Required. */
  leadSteps: number;
  /** The quantile. @default 0.99 */
  q?: number;
  /** Growth samples remembered (the most recent). @default 2880 */
  window?: number;
  /** The quantile is recomputed every this many new samples (amortises the sort). @default 16 */
  refreshEvery?: number;
}

/**
 * {@link growthQuantile} online, one value per step: each step whose lead has passed adds its growth
 * sample; the quantile is over the last `window` samples, refreshed every `refreshEvery` samples.
 * O(leadSteps) per update plus the amortised sort.
 */
export class GrowthQuantileTracker {
  readonly #lead: number;
  readonly #q: number;
  readonly #refresh: number;
  readonly #recent: number[] = [];
  readonly #samples: Float64Array;
  #head = 0;
  #size = 0;
  #sinceRefresh = 0;
  #quantile = 0;

  constructor(options: GrowthQuantileOptions) {
    this.#lead = Math.max(1, Math.floor(options.leadSteps));
    this.#q = Math.min(1, Math.max(0, options.q ?? 0.99));
    this.#refresh = Math.max(1, Math.floor(options.refreshEvery ?? 16));
    this.#samples = new Float64Array(Math.max(1, Math.floor(options.window ?? 2880)));
  }

  /** Adds the value of the next step. */
  update(value: number): void {
    if (!Number.isFinite(value)) return;
    this.#recent.push(value);
    if (this.#recent.length <= this.#lead) return;
    if (this.#recent.length > this.#lead + 1) this.#recent.shift();
    const base = this.#recent[0]!;
    if (!(base > 0)) return;
    let peak = this.#recent[1]!;
    for (let j = 2; j <= this.#lead; j++) if (this.#recent[j]! > peak) peak = this.#recent[j]!;
    this.#samples[this.#head] = peak / base - 1;
    this.#head = (this.#head + 1) % this.#samples.length;
    if (this.#size < this.#samples.length) this.#size++;
    if (++this.#sinceRefresh >= this.#refresh || this.#size <= this.#refresh) this.#recompute();
  }

  #recompute(): void {
    this.#sinceRefresh = 0;
    const s = Float64Array.from(this.#samples.subarray(0, this.#size)).sort();
    const k = Math.min(s.length - 1, Math.max(0, Math.ceil(this.#q * s.length) - 1));
    this.#quantile = Math.max(0, s[k]!);
  }

  /** Growth samples held. */
  get samples(): number {
    return this.#size;
  }

  /** The current quantile of relative growth (0 before the first sample). */
  get quantile(): number {
    return this.#quantile;
  }
}
