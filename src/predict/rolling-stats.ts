/**
 * Mean and variance over the last `capacity` values in O(1) per update (ring buffer with running
 * sums, re-summed periodically to bound floating-point drift).
 */
export class RollingStats {
  readonly #buf: Float64Array;
  #head = 0;
  #size = 0;
  #sum = 0;
  #sumSq = 0;
  #sinceResum = 0;

  constructor(capacity: number) {
    this.#buf = new Float64Array(Math.max(1, Math.floor(capacity)));
  }

  /** Number of values held. */
  get size(): number {
    return this.#size;
  }

  /** Adds a value, evicting the oldest when full. */
  push(x: number): void {
    const cap = this.#buf.length;
    if (this.#size === cap) {
      const old = this.#buf[this.#head]!;
      this.#sum -= old;
      this.#sumSq -= old * old;
    } else this.#size++;
    this.#buf[this.#head] = x;
    this.#head = (this.#head + 1) % cap;
    this.#sum += x;
    this.#sumSq += x * x;
    if (++this.#sinceResum >= cap * 4) this.#resum();
  }

  #resum(): void {
    this.#sinceResum = 0;
    let s = 0;
    let q = 0;
    const cap = this.#buf.length;
    for (let i = 0; i < this.#size; i++) {
      const v = this.#buf[(this.#head - 1 - i + cap * 2) % cap]!;
      s += v;
      q += v * v;
    }
    this.#sum = s;
    this.#sumSq = q;
  }

  /** Mean of the held values (0 when empty). */
  get mean(): number {
    return this.#size > 0 ? this.#sum / this.#size : 0;
  }

  /** Population standard deviation of the held values (0 when fewer than two). */
  get std(): number {
    if (this.#size < 2) return 0;
    const m = this.#sum / this.#size;
    return Math.sqrt(Math.max(0, this.#sumSq / this.#size - m * m));
  }
}
