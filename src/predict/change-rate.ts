/**
 * Rate of a monotonically increasing counter (bytes synced, mutations logged) in units per second,
 * smoothed with an exponentially weighted mean over `halfLifeSeconds`. A counter that goes
 * backwards is treated as a reset (the sample restarts the rate, it never goes negative).
 * Time is an argument, in milliseconds.
 */
export class CounterRate {
  readonly #halfLife: number;
  #lastT = Number.NaN;
  #lastCount = Number.NaN;
  #rate = 0;
  #samples = 0;

  /** @param halfLifeSeconds smoothing half-life; 0 reports the raw rate of the last interval. @default 10 */
  constructor(halfLifeSeconds = 10) {
    this.#halfLife = Math.max(0, halfLifeSeconds);
  }

  /** Current smoothed rate per second (0 before two samples). */
  get rate(): number {
    return this.#rate;
  }

  /** Feeds the counter's value at time `t` (ms); returns the updated rate per second. */
  update(t: number, count: number): number {
    if (!Number.isFinite(t) || !Number.isFinite(count)) return this.#rate;
    if (Number.isNaN(this.#lastT) || t <= this.#lastT) {
      if (Number.isNaN(this.#lastT)) {
        this.#lastT = t;
        this.#lastCount = count;
      }
      return this.#rate;
    }
    const dt = (t - this.#lastT) / 1000;
    const delta = count >= this.#lastCount ? count - this.#lastCount : count;
    const inst = delta / dt;
    this.#samples++;
    if (this.#halfLife === 0 || this.#samples === 1) this.#rate = inst;
    else {
      const a = 1 - Math.pow(0.5, dt / this.#halfLife);
      this.#rate += a * (inst - this.#rate);
    }
    this.#lastT = t;
    this.#lastCount = count;
    return this.#rate;
  }
}

/** The live–shadow mutation-rate delta and whether it crossed the threshold (seed 002). */
export interface MutationRateDelta {
  /** live − shadow, per second. */
  delta: number;
  /** delta / max(shadow, floor): the widening relative to what the shadow sees. */
  relative: number;
  /** True when `relative` ≥ the threshold. */
  exceeded: boolean;
}

/** Options of {@link MutationDeltaMonitor}. */
export interface MutationDeltaOptions {
  /** Relative delta that triggers (0.25 = live writes 25 % faster than the shadow). @default 0.25 */
  threshold?: number;
  /** Smallest shadow rate used as denominator, so idle shadows do not divide by zero. @default 1 */
  floor?: number;
}

/**
 * Seed 002's predictive signal: a widening gap between the live instance's mutation rate and its
 * shadow's suggests load is rising faster than the shadow keeps up with. The threshold can be
 * adjusted at run time (e.g. by {@link SpikeOutcomeTracker}).
 */
export class MutationDeltaMonitor {
  #threshold: number;
  readonly #floor: number;

  constructor(options: MutationDeltaOptions = {}) {
    this.#threshold = options.threshold ?? 0.25;
    this.#floor = options.floor ?? 1;
  }

  get threshold(): number {
    return this.#threshold;
  }

  /** Changes the threshold; non-finite or negative values are ignored. */
  setThreshold(threshold: number): void {
    if (Number.isFinite(threshold) && threshold >= 0) this.#threshold = threshold;
  }

  /** Evaluates the delta between the live and shadow mutation rates (per second). */
  evaluate(liveRate: number, shadowRate: number): MutationRateDelta {
    const live = Number.isFinite(liveRate) ? liveRate : 0;
    const shadow = Number.isFinite(shadowRate) ? shadowRate : 0;
    const delta = live - shadow;
    const relative = delta / Math.max(Math.abs(shadow), this.#floor);
    return { delta, relative, exceeded: relative >= this.#threshold };
  }
}
