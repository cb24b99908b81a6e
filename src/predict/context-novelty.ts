/**
 * Rare-pattern cue: values are quantised into levels and every subsequence (of orders 1…K) ending at
 * the current point is looked up in a table of subsequences seen before. The score is the weighted
 * fraction of orders whose subsequence is new — in the spirit of NAB's contextual detectors
 * (CAD-OSE), simplified. Online; the quantiser is fixed from the learning data only.
 */
export class ContextNovelty {
  readonly #maxOrder: number;
  readonly #counts = new Map<number, number>();
  readonly #recent: number[] = [];
  readonly #follow = new Map<number, number>();
  readonly #prevKeys: number[] = [];
  readonly #keys: number[] = [];
  readonly #mode: number;
  readonly #history: number[] = [];
  #historyCap = 5000;
  #levels = 8;
  #adaptive = true;
  #gate = false;
  #lo = 0;
  #hi = 1;
  #min = 0;
  #step = 1;
  #ready = false;

  constructor(maxOrder: number, mode = 1) {
    this.#maxOrder = maxOrder;
    this.#mode = mode;
  }

  /** Fixes the quantiser from learning values: `levels` equal bins over their range. */
  calibrate(values: readonly number[], levels: number, adaptive = true, historyCap = 5000, gate = false): void {
    this.#gate = gate;
    this.#levels = levels;
    this.#adaptive = adaptive;
    this.#historyCap = historyCap;
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of values) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo)) {
      lo = 0;
      hi = 1;
    }
    this.#lo = lo;
    this.#hi = hi;
    this.#setQuantiser();
    this.#ready = true;
    for (const v of values) this.#learn(v);
  }

  #setQuantiser(): void {
    const range = this.#hi - this.#lo;
    this.#min = this.#lo;
    this.#step = range > 0 ? range / this.#levels : Math.max(Math.abs(this.#lo) * 0.01, 1e-9);
  }

  #learn(x: number): void {
    this.#history.push(x);
    if (this.#history.length > this.#historyCap) this.#history.shift();
    this.#step1(x);
  }

  /** Scores the point, then learns it; widens the quantiser (and relearns history) on a new extreme. */
  update(x: number): number {
    const raw = this.#step1(x);
    this.#history.push(x);
    if (this.#history.length > this.#historyCap) this.#history.shift();
    if (this.#adaptive && (x > this.#hi || x < this.#lo)) {
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

  get ready(): boolean {
    return this.#ready;
  }

  #step1(x: number): number {
    const level = Math.floor((x - this.#min) / this.#step);
    const r = this.#recent;
    r.push(Number.isFinite(level) ? Math.max(-1e6, Math.min(1e6, level)) : 0);
    if (r.length > this.#maxOrder) r.shift();
    let novel = 0;
    let total = 0;
    let selected = 0;
    let active = 0;
    let longestSelectedSeen = false;
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
      total++;
      if (c === 0) novel++;
      // The prefix (order k-1 subsequence ending at the previous point) predicts continuations.
      const prefixFollowed = k === 1 ? 1 : (this.#follow.get(prev[k - 2] ?? -1) ?? 0);
      if (prefixFollowed > 0) {
        selected++;
        if (c > 0) active++;
        longestSelectedSeen = c > 0;
      }
      this.#counts.set(key, c + 1);
      this.#keys[k - 1] = key;
    }
    for (let k = 2; k <= r.length; k++) {
      const pk = prev[k - 2];
      if (pk !== undefined) this.#follow.set(pk, (this.#follow.get(pk) ?? 0) + 1);
    }
    for (let k = 0; k < r.length; k++) prev[k] = this.#keys[k]!;
    if (total === 0) return 0;
    const pActive = selected > 0 ? active / selected : 0;
    if (this.#gate && longestSelectedSeen) return 0;
    return this.#mode === 0 ? novel / total : (1 - pActive + novel / total) / 2;
  }
}
