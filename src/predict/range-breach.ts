/**
 * Spatial cue (as in Numenta's NAB detector): a value beyond the range of every value seen so
 * far, by more than `tolerance` times that range, is anomalous whatever its context. O(1) state.
 */
export class RangeBreach {
  readonly #tolerance: number;
  #min = Number.POSITIVE_INFINITY;
  #max = Number.NEGATIVE_INFINITY;

  /** @param tolerance share of the range seen a value must exceed it by (≥ 0) */
  constructor(tolerance: number) {
    this.#tolerance = Math.max(0, tolerance);
  }

  /** Widens the range seen with `v` without judging it (learning). */
  observe(v: number): void {
    if (v < this.#min) this.#min = v;
    if (v > this.#max) this.#max = v;
  }

  /** True when `v` lies beyond the range seen by more than the tolerance; then observes it. */
  update(v: number): boolean {
    let breach = false;
    if (this.#max > this.#min) {
      const margin = (this.#max - this.#min) * this.#tolerance;
      breach = v > this.#max + margin || v < this.#min - margin;
    }
    this.observe(v);
    return breach;
  }
}
