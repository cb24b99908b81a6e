/** Options of {@link PhiAccrualDetector}. */
export interface PhiAccrualOptions {
  /** Inter-arrival samples kept. @default 200 */
  windowSize?: number;
  /** Floor of the standard deviation, ms, so a very regular heartbeat does not make phi explode on tiny jitter. @default 20 */
  minStdDevMs?: number;
  /** Pause tolerated on top of the mean before suspicion grows, ms (GC pauses, scheduling). @default 0 */
  acceptablePauseMs?: number;
  /** Expected interval used until enough samples arrived, ms. @default 100 */
  firstHeartbeatEstimateMs?: number;
}

/**
 * The phi-accrual failure detector (Hayashibara et al., 2004), as Akka and Cassandra use it:
 * instead of a yes/no timeout it gives a suspicion level phi = -log10(P(a heartbeat arrives later
 * than now)), from the distribution of recent heartbeat inter-arrival times (normal approximation,
 * via the logistic approximation of its CDF). phi 1 ≈ 10 % chance the process is alive and slow,
 * phi 3 ≈ 0.1 %, phi 8 ≈ 1e-8. Pure: time is an argument.
 */
export class PhiAccrualDetector {
  readonly #intervals: Float64Array;
  #count = 0;
  #next = 0;
  #sum = 0;
  #sumSquares = 0;
  #last: number | undefined;
  readonly #minStdDev: number;
  readonly #pause: number;

  constructor(options: PhiAccrualOptions = {}) {
    const size = options.windowSize ?? 200;
    this.#intervals = new Float64Array(size);
    this.#minStdDev = options.minStdDevMs ?? 20;
    this.#pause = options.acceptablePauseMs ?? 0;
    const first = options.firstHeartbeatEstimateMs ?? 100;
    // Seed with a plausible distribution (mean first, stddev first/4) as Akka does.
    this.#push(first - first / 4);
    this.#push(first + first / 4);
  }

  /** Records a heartbeat at time `at` (ms). */
  heartbeat(at: number): void {
    if (this.#last !== undefined && at > this.#last) this.#push(at - this.#last);
    if (this.#last === undefined || at > this.#last) this.#last = at;
  }

  /** Time of the last heartbeat, or undefined before the first. */
  get lastHeartbeat(): number | undefined {
    return this.#last;
  }

  /** Mean inter-arrival time, ms. */
  get meanIntervalMs(): number {
    return this.#sum / this.#count;
  }

  /** Suspicion level at time `now`; 0 before the first heartbeat. */
  phi(now: number): number {
    if (this.#last === undefined) return 0;
    const elapsed = Math.max(0, now - this.#last);
    const mean = this.#sum / this.#count + this.#pause;
    const variance = Math.max(0, this.#sumSquares / this.#count - (this.#sum / this.#count) ** 2);
    const std = Math.max(this.#minStdDev, Math.sqrt(variance));
    const y = (elapsed - mean) / std;
    // P(later than elapsed) ≈ 1 / (1 + e^k) with k = y(1.5976 + 0.070566 y²) (logistic approximation of
    // the normal CDF). phi = -log10 of it = softplus(k) / ln 10, computed without overflow or log(0).
    const k = y * (1.5976 + 0.070566 * y * y);
    return (Math.max(k, 0) + Math.log1p(Math.exp(-Math.abs(k)))) / Math.LN10;
  }

  #push(interval: number): void {
    if (this.#count === this.#intervals.length) {
      const old = this.#intervals[this.#next] ?? 0;
      this.#sum -= old;
      this.#sumSquares -= old * old;
    } else {
      this.#count++;
    }
    this.#intervals[this.#next] = interval;
    this.#next = (this.#next + 1) % this.#intervals.length;
    this.#sum += interval;
    this.#sumSquares += interval * interval;
  }
}
