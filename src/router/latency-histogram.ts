/** Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended. */
export const LATENCY_BUCKETS_MS: readonly number[] = [
  0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
];

/** Plain-data view of a {@link LatencyHistogram}. */
export interface LatencySnapshot {
  count: number;
  sumMs: number;
  /** Counts per bucket of {@link LATENCY_BUCKETS_MS}, plus one overflow bucket. */
  buckets: number[];
  /** Bucket-bound estimates of the median and the 99th percentile, ms (0 when empty). */
  p50Ms: number;
  p99Ms: number;
}

/** A fixed-bucket latency histogram: O(buckets) record, no allocation. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(LATENCY_BUCKETS_MS.length + 1);
  #count = 0;
  #sum = 0;

  record(ms: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS_MS.length && ms > (LATENCY_BUCKETS_MS[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#count++;
    this.#sum += ms;
  }

  #quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = q * this.#count;
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] as number;
      if (seen >= rank) return LATENCY_BUCKETS_MS[i] ?? Infinity;
    }
    return Infinity;
  }

  snapshot(): LatencySnapshot {
    return {
      count: this.#count,
      sumMs: this.#sum,
      buckets: Array.from(this.#counts),
      p50Ms: this.#quantile(0.5),
      p99Ms: this.#quantile(0.99),
    };
  }
}
