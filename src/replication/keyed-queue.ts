/**
 * FIFO mutual exclusion per key: `acquire(key)` resolves when every earlier holder of the same key has
 * released. Different keys proceed concurrently. The empty key is one total order.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Waits for the key; resolves to the release function (idempotent). */
  async acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
  }

  /** Keys with a holder or waiters. */
  get activeKeys(): number {
    return this.#tails.size;
  }
}
