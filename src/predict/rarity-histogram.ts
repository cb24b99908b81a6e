/**
 * How rare a score in [0, 1] is among the last `window` scores: the share of them at least as
 * high (20 bins, O(1) per update). Recording and ranking are one call.
 */
export class RarityHistogram {
  readonly #bins: Int32Array;
  readonly #ring: Uint8Array;
  readonly #window: number;
  #size = 0;
  #head = 0;

  constructor(window: number, bins = 20) {
    this.#window = Math.max(1, Math.floor(window));
    this.#bins = new Int32Array(bins);
    this.#ring = new Uint8Array(this.#window);
  }

  /** Share of the held scores ≥ `c`'s bin (0 when empty), then records `c`. */
  rankAndRecord(c: number): number {
    const nb = this.#bins.length;
    const bin = Math.min(nb - 1, Math.max(0, Math.floor((Number.isFinite(c) ? c : 0) * nb)));
    let ge = 0;
    for (let i = bin; i < nb; i++) ge += this.#bins[i]!;
    const frac = this.#size > 0 ? ge / this.#size : 0;
    if (this.#size === this.#window) this.#bins[this.#ring[this.#head]!]!--;
    else this.#size++;
    this.#ring[this.#head] = bin;
    this.#head = (this.#head + 1) % this.#window;
    this.#bins[bin]!++;
    return frac;
  }
}
