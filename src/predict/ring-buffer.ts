/**
 * A bounded numeric ring buffer: O(1) push, O(1) random access from the newest value backwards.
 * Stores float32 by default (ample for metrics, half the memory of float64).
 */
export class RingBuffer {
  readonly #buf: Float32Array | Float64Array;
  #head = 0;
  #size = 0;

  /** @param capacity maximum number of values held; older values are evicted. */
  constructor(capacity: number, precision: 32 | 64 = 32) {
    const cap = Math.max(1, Math.floor(capacity));
    this.#buf = precision === 32 ? new Float32Array(cap) : new Float64Array(cap);
  }

  /** Maximum number of values held. */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Number of values held. */
  get size(): number {
    return this.#size;
  }

  /** Appends a value, evicting the oldest when full. */
  push(x: number): void {
    this.#buf[this.#head] = x;
    this.#head = (this.#head + 1) % this.#buf.length;
    if (this.#size < this.#buf.length) this.#size++;
  }

  /** The value `back` steps before the newest (0 = newest); NaN when out of range. */
  back(back: number): number {
    if (back < 0 || back >= this.#size) return Number.NaN;
    const cap = this.#buf.length;
    return this.#buf[(this.#head - 1 - back + cap) % cap]!;
  }

  /** The value at position `i` from the oldest held (0 = oldest); NaN when out of range. */
  at(i: number): number {
    return this.back(this.#size - 1 - i);
  }

  /** The newest `n` values (all when omitted), oldest first, as a new float64 array. */
  toArray(n = this.#size): Float64Array {
    const k = Math.min(n, this.#size);
    const out = new Float64Array(k);
    for (let i = 0; i < k; i++) out[i] = this.back(k - 1 - i);
    return out;
  }

  /** Drops every value. */
  clear(): void {
    this.#head = 0;
    this.#size = 0;
  }
}
