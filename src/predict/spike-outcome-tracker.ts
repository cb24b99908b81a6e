/** A decision-like record of one sensitivity adjustment: what changed, why, from which inputs. */
export interface SensitivityDecision {
  what: string;
  why: string;
  inputs: Record<string, number | string | boolean>;
}

/** Options of {@link SpikeOutcomeTracker}. */
export interface SpikeOutcomeOptions {
  /** Initial alert threshold on the predictor's score. @default 0.5 */
  initialThreshold?: number;
  /** Lower bound of the threshold (most sensitive). @default 0.1 */
  minThreshold?: number;
  /** Upper bound of the threshold (least sensitive). @default 0.95 */
  maxThreshold?: number;
  /** Raise after a false alarm. @default 0.02 */
  raiseStep?: number;
  /** Lower after a missed spike (misses usually cost more than false alarms). @default 0.05 */
  lowerStep?: number;
}

interface Pending {
  id: string;
  t: number;
  deadline: number;
  level: number;
  score: number;
}

/** Counts of resolved outcomes. */
export interface OutcomeCounts {
  hits: number;
  falseAlarms: number;
  misses: number;
}

/**
 * Adaptive learning for spike prediction (seed 004): records each prediction "the value will reach
 * `level` by `deadline`", resolves it from observations (did the spike come?), counts spikes that
 * came unpredicted, and moves the alert threshold within bounds — up after a false alarm, down
 * after a miss — returning each adjustment as a decision record. Pure: time is an argument.
 */
export class SpikeOutcomeTracker {
  readonly #o: Required<SpikeOutcomeOptions>;
  readonly #pending: Pending[] = [];
  #threshold: number;
  readonly #counts: OutcomeCounts = { hits: 0, falseAlarms: 0, misses: 0 };

  constructor(options: SpikeOutcomeOptions = {}) {
    this.#o = {
      initialThreshold: options.initialThreshold ?? 0.5,
      minThreshold: options.minThreshold ?? 0.1,
      maxThreshold: options.maxThreshold ?? 0.95,
      raiseStep: options.raiseStep ?? 0.02,
      lowerStep: options.lowerStep ?? 0.05,
    };
    this.#threshold = Math.min(
      this.#o.maxThreshold,
      Math.max(this.#o.minThreshold, this.#o.initialThreshold),
    );
  }

  /** Current alert threshold: predict a spike when the predictor's score ≥ this. */
  get threshold(): number {
    return this.#threshold;
  }

  /** Outcome counts so far. */
  get counts(): Readonly<OutcomeCounts> {
    return this.#counts;
  }

  /** Fraction of resolved predictions that were right (hits / (hits + false alarms)); NaN before any. */
  get precision(): number {
    const d = this.#counts.hits + this.#counts.falseAlarms;
    return d > 0 ? this.#counts.hits / d : Number.NaN;
  }

  /** Whether `score` crosses the current threshold. */
  shouldAlert(score: number): boolean {
    return score >= this.#threshold;
  }

  /** Records a prediction that the value reaches `level` within `horizon` after `t`. */
  predict(id: string, t: number, horizon: number, level: number, score: number): void {
    this.#pending.push({ id, t, deadline: t + horizon, level, score });
  }

  /**
   * Observes the value at time `t`. `spikeLevel`, when given, defines a spike for counting misses
   * (a value ≥ it that no pending prediction covered). Returns the adjustments made.
   */
  observe(t: number, value: number, spikeLevel?: number): SensitivityDecision[] {
    const out: SensitivityDecision[] = [];
    let covered = false;
    for (let i = this.#pending.length - 1; i >= 0; i--) {
      const p = this.#pending[i]!;
      if (t <= p.t) continue;
      if (t <= p.deadline) covered = true;
      if (value >= p.level && t <= p.deadline) {
        this.#pending.splice(i, 1);
        this.#counts.hits++;
      } else if (t > p.deadline) {
        this.#pending.splice(i, 1);
        this.#counts.falseAlarms++;
        out.push(
          this.#adjust(
            +this.#o.raiseStep,
            'raise-threshold',
            `predicted spike ${p.id} to ${p.level} did not come by ${p.deadline}`,
            { prediction: p.id, level: p.level, score: p.score, deadline: p.deadline, observed: value },
          ),
        );
      }
    }
    if (spikeLevel !== undefined && value >= spikeLevel && !covered) {
      this.#counts.misses++;
      out.push(
        this.#adjust(
          -this.#o.lowerStep,
          'lower-threshold',
          `spike to ${value} (≥ ${spikeLevel}) at ${t} was not predicted`,
          { t, observed: value, spikeLevel },
        ),
      );
    }
    return out;
  }

  #adjust(
    delta: number,
    what: string,
    why: string,
    inputs: Record<string, number | string | boolean>,
  ): SensitivityDecision {
    const from = this.#threshold;
    const to = Math.min(this.#o.maxThreshold, Math.max(this.#o.minThreshold, from + delta));
    this.#threshold = to;
    const bounded = to !== from + delta;
    return {
      what: to === from ? `keep-threshold` : what,
      why: bounded ? `${why}; threshold held within [${this.#o.minThreshold}, ${this.#o.maxThreshold}]` : why,
      inputs: { ...inputs, from, to },
    };
  }
}
