/**
 * Token bucket for the optional bandwidth cap: `take(n)` resolves when `n` bytes may be sent.
 * Requests larger than the burst are allowed and paid back as debt.
 */
export class TokenBucket {
  #tokens: number;
  #last = performance.now();
  constructor(
    readonly ratePerSec: number,
    readonly burst = Math.max(64 * 1024, ratePerSec / 10),
  ) {
    this.#tokens = burst;
  }
  #refill(): void {
    const now = performance.now();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) / 1000) * this.ratePerSec);
    this.#last = now;
  }
  async take(n: number, signal?: AbortSignal): Promise<void> {
    this.#refill();
    while (this.#tokens < Math.min(n, this.burst)) {
      const waitMs = ((Math.min(n, this.burst) - this.#tokens) / this.ratePerSec) * 1000;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, waitMs));
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
      if (signal?.aborted) return;
      this.#refill();
    }
    this.#tokens -= n;
  }
}
