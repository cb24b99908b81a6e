/**
 * Rare-pattern cue. Values are quantised into equal-width levels and every subsequence of orders
 * 1…K ending at the current point is looked up in a table of subsequences seen before. Two
 * fractions make the score: how many of the subsequences are new, and how many of the contexts
 * that had a known continuation were *not* continued as before. Online and causal: the quantiser
 * comes from past values only; a value beyond the range seen so far widens the range and the
 * table is relearnt from the retained history (rare: the range only grows).
 */
export class ContextNovelty {
  readonly #maxOrder: number;
  readonly #levels: number;
  readonly #historyCap: number;
  readonly #maxContexts: number;
  readonly #counts = new Map<number, number>();
  readonly #follow = new Map<number, number>();
  readonly #recent: number[] = [];
  readonly #prevKeys: number[] = [];
  readonly #keys: number[] = [];
  readonly #history: number[] = [];
  #lo = 0;
  #hi = 1;
  #min = 0;
  #step = 1;
  #ready = false;

  /**
   * @param maxOrder longest subsequence (K)
   * @param levels quantisation levels over the range seen
   * @param historyCap values retained for relearning after the range widens
   * @param maxContexts table size bound; beyond it the table is relearnt from the history
   */
  constructor(maxOrder: number, levels: number, historyCap = 5000, maxContexts = 200_000) {
    this.#maxOrder = Math.max(1, Math.floor(maxOrder));
    this.#levels = Math.max(2, Math.floor(levels));
    this.#historyCap = historyCap;
    this.#maxContexts = maxContexts;
  }

  /** True once {@link calibrate} has run. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Sets the quantiser from the learning values and learns them; returns their scores. */
  calibrate(values: readonly number[]): number[] {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
      lo = 0;
      hi = 1;
    }
    this.#lo = lo;
    this.#hi = hi;
    this.#setQuantiser();
    this.#ready = true;
    const scores: number[] = [];
    for (const v of values) {
      this.#remember(v);
      scores.push(this.#step1(v));
    }
    return scores;
  }

  /** Scores `x` in [0, 1] against the past, then learns it. */
  update(x: number): number {
    const raw = this.#step1(x);
    this.#remember(x);
    if (x > this.#hi || x < this.#lo || this.#counts.size > this.#maxContexts) {
      this.#hi = Math.max(this.#hi, x);
      this.#lo = Math.min(this.#lo, x);
      this.#setQuantiser();
      this.#counts.clear();
      this.#follow.clear();
      this.#recent.length = 0;
      this.#prevKeys.length = 0;
      for (const v of this.#history) this.#step1(v);
    }
    return raw;
  }

  #remember(x: number): void {
    this.#history.push(x);
    if (this.#history.length > this.#historyCap) this.#history.shift();
  }

  #setQuantiser(): void {
    const range = this.#hi - this.#lo;
    this.#min = this.#lo;
    this.#step = range > 0 ? range / this.#levels : Math.max(Math.abs(this.#lo) * 0.01, 1e-9);
  }

  #step1(x: number): number {
    const level = Math.floor((x - this.#min) / this.#step);
    const r = this.#recent;
    r.push(Number.isFinite(level) ? Math.max(-1e6, Math.min(1e6, level)) : 0);
    if (r.length > this.#maxOrder) r.shift();
    let novel = 0;
    let selected = 0;
    let active = 0;
    const prev = this.#prevKeys;
    let h1 = 0x9e3779b9;
    let h2 = 0x85ebca6b;
    for (let k = 1; k <= r.length; k++) {
      const b = r[r.length - k]! + 1_000_003;
      h1 = Math.imul(h1 ^ b, 0x01000193) >>> 0;
      h2 = Math.imul(h2 + b, 0x5bd1e995) >>> 0;
      h2 ^= h2 >>> 13;
      const key = h1 * 2097152 + (h2 & 0x1fffff);
      const c = this.#counts.get(key) ?? 0;
      if (c === 0) novel++;
      // The order k−1 subsequence ending at the previous point is this one's prefix: if it has
      // been continued before, it "predicted" something; was this continuation among them?
      const prefixFollowed = k === 1 ? 1 : (this.#follow.get(prev[k - 2] ?? -1) ?? 0);
      if (prefixFollowed > 0) {
        selected++;
        if (c > 0) active++;
      }
      this.#counts.set(key, c + 1);
      this.#keys[k - 1] = key;
    }
    for (let k = 2; k <= r.length; k++) {
      const pk = prev[k - 2];
      if (pk !== undefined) this.#follow.set(pk, (this.#follow.get(pk) ?? 0) + 1);
    }
    for (let k = 0; k < r.length; k++) prev[k] = this.#keys[k]!;
    const pActive = selected > 0 ? active / selected : 0;
    return (1 - pActive + novel / r.length) / 2;
  }
}
