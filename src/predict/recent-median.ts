import type { PointModel } from './forecaster.js';

/**
 * Robust level: every horizon forecasts the median of the last `window` values. On spiky series
 * (disk writes, request bursts) it beats the last value under absolute error, since the last
 * value repeats each spike once more. O(window) per value, no allocation.
 */
export class RecentMedianModel implements PointModel {
  readonly name: string;
  /** The window's values in arrival order (a ring) at [w, 2w), sorted (first `#n` valid) at [0, w). */
  readonly #buf: Float64Array;
  readonly #w: number;
  #head = 0;
  #n = 0;

  /** @param window values in the median. @default 15 */
  constructor(window = 15) {
    const w = Math.max(1, Math.floor(window));
    this.#buf = new Float64Array(2 * w);
    this.#w = w;
    this.name = `median-${w}`;
  }

  observe(x: number): void {
    const s = this.#buf;
    const w = this.#w;
    let n = this.#n;
    if (n === w) {
      // Drop the oldest value from the sorted copy.
      const old = s[w + this.#head]!;
      let i = 0;
      while (i < n - 1 && s[i] !== old) i++;
      for (; i < n - 1; i++) s[i] = s[i + 1]!;
      n--;
    }
    let j = n - 1;
    while (j >= 0 && s[j]! > x) {
      s[j + 1] = s[j]!;
      j--;
    }
    s[j + 1] = x;
    this.#n = n + 1;
    s[w + this.#head] = x;
    this.#head = this.#head + 1 === w ? 0 : this.#head + 1;
  }

  predict(): number {
    const n = this.#n;
    if (n === 0) return Number.NaN;
    const s = this.#buf;
    return n % 2 === 1 ? s[n >> 1]! : (s[(n >> 1) - 1]! + s[n >> 1]!) / 2;
  }
}
