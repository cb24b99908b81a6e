/**
 * Forecast accuracy a person can judge before trusting a forecaster with real scaling: every forecast
 * made at `t` for horizon `h` is paired with the actual value observed at `t + h`, and the pairs are
 * summarised per window as
 * - **MASE** against the last-value forecast: the mean absolute error of the forecasts divided by the
 *   mean absolute error the naive forecast "the load stays what it was at `t`" made for the same
 *   targets. Below 1: the forecaster beats doing nothing clever; above 1: it does worse.
 * - **interval coverage**: the share of actuals inside the forecast interval `[lower, upper]`.
 *
 * Pure: no clock (time comes in as an argument), bounded memory (pairs are kept only as per-bucket sums).
 */

/** One forecast as the scaling policy makes it. */
export interface AccuracyForecast {
  /** Horizon after the time it was made, ms. */
  horizonMs: number;
  mean: number;
  lower: number;
  upper: number;
}

/** One forecast resolved against what happened. */
export interface AccuracyPair {
  /** When the actual was observed (the forecast's target time), ms. */
  at: number;
  forecast: number;
  lower: number;
  upper: number;
  /** The last-value forecast: the value observed when the forecast was made. */
  naive: number;
  actual: number;
}

/** Accuracy over one window. */
export interface AccuracySummary {
  /** Window length, ms. */
  windowMs: number;
  /** Forecasts resolved in the window. */
  pairs: number;
  /** Whether there are enough pairs to judge (at least `minPairs`). */
  enough: boolean;
  /** MASE against the last-value forecast; absent with too few pairs or when the naive error is 0. */
  mase?: number;
  /** Share of actuals inside the forecast interval, 0..1; absent with too few pairs. */
  coverage?: number;
  /** Mean absolute error of the forecasts; absent with no pairs. */
  mae?: number;
  /** Mean absolute error of the last-value forecast; absent with no pairs. */
  naiveMae?: number;
  /** What a person should know: "not enough data yet (3 of 10 forecasts resolved)", … */
  note: string;
}

/** Running sums of pairs (what a bucket keeps of them). */
interface Sums {
  pairs: number;
  absError: number;
  naiveAbsError: number;
  inside: number;
}

const zero = (): Sums => ({ pairs: 0, absError: 0, naiveAbsError: 0, inside: 0 });

function add(s: Sums, p: AccuracyPair): void {
  s.pairs++;
  s.absError += Math.abs(p.actual - p.forecast);
  s.naiveAbsError += Math.abs(p.actual - p.naive);
  if (p.actual >= p.lower && p.actual <= p.upper) s.inside++;
}

function summarise(s: Sums, windowMs: number, minPairs: number): AccuracySummary {
  const base = { windowMs, pairs: s.pairs, enough: s.pairs >= minPairs };
  if (s.pairs === 0)
    return { ...base, note: `not enough data yet (no forecast resolved; ${minPairs} needed)` };
  const mae = s.absError / s.pairs;
  const naiveMae = s.naiveAbsError / s.pairs;
  if (!base.enough)
    return {
      ...base,
      mae,
      naiveMae,
      note: `not enough data yet (${s.pairs} of ${minPairs} forecasts resolved)`,
    };
  const coverage = s.inside / s.pairs;
  if (naiveMae === 0)
    return {
      ...base,
      mae,
      naiveMae,
      coverage,
      note: 'MASE undefined: the load did not change over the horizon, so the last-value forecast was exact',
    };
  const mase = mae / naiveMae;
  return {
    ...base,
    mase,
    coverage,
    mae,
    naiveMae,
    note: mase < 1 ? 'beats the last-value forecast' : 'no better than the last-value forecast',
  };
}

/** Summarises `pairs` (all taken to be in the window): the hand-checkable core of the tracker. */
export function accuracyOf(
  pairs: readonly AccuracyPair[],
  windowMs: number,
  minPairs = DEFAULT_MIN_PAIRS,
): AccuracySummary {
  const s = zero();
  for (const p of pairs) add(s, p);
  return summarise(s, windowMs, minPairs);
}

/** Options of {@link ForecastAccuracy}. */
export interface ForecastAccuracyOptions {
  /** Pairs needed before a window's figures are shown. @default 10 */
  minPairs?: number;
  /** Width of a bucket of pairs, ms: the windows' resolution. @default 60000 */
  bucketMs?: number;
  /** Longest window kept, ms (older buckets are dropped). @default 86400000 (a day) */
  keepMs?: number;
  /** Forecasts waiting for their target time; older ones are dropped beyond this. @default 4096 */
  maxPending?: number;
}

const DEFAULT_MIN_PAIRS = 10;
/** The windows `report` gives. */
export const ACCURACY_WINDOWS = { hour: 3_600_000, day: 86_400_000 } as const;

/** The accuracy of one service's forecasts over the last hour and the last day. */
export interface AccuracyReport {
  /** When it was computed, ms. */
  at: number;
  /** Forecasts made but not yet due. */
  pending: number;
  hour: AccuracySummary;
  day: AccuracySummary;
}

interface Pending {
  due: number;
  forecast: AccuracyForecast;
  naive: number;
}

/**
 * Pairs forecasts with the actuals observed at their target times and keeps the pairs' sums in
 * buckets (`bucketMs` wide, `keepMs` long): memory is bounded whatever the rate of forecasts. A
 * forecast is resolved by the first actual observed at or after its target time.
 */
export class ForecastAccuracy {
  readonly #minPairs: number;
  readonly #bucketMs: number;
  readonly #keepMs: number;
  readonly #maxPending: number;
  /** Waiting forecasts, by due time (forecasts are made in time order, horizons may differ). */
  #pending: Pending[] = [];
  /** Bucket start (ms) → sums, oldest first. */
  readonly #buckets = new Map<number, Sums>();

  constructor(options: ForecastAccuracyOptions = {}) {
    this.#minPairs = options.minPairs ?? DEFAULT_MIN_PAIRS;
    this.#bucketMs = options.bucketMs ?? 60_000;
    this.#keepMs = options.keepMs ?? ACCURACY_WINDOWS.day;
    this.#maxPending = options.maxPending ?? 4096;
  }

  /** Records a forecast made at `at` when the observed value was `current` (the last-value forecast). */
  forecast(at: number, f: AccuracyForecast, current: number): void {
    if (![at, f.horizonMs, f.mean, f.lower, f.upper, current].every(Number.isFinite)) return;
    const p: Pending = { due: at + f.horizonMs, forecast: f, naive: current };
    let i = this.#pending.length;
    while (i > 0 && this.#pending[i - 1]!.due > p.due) i--;
    this.#pending.splice(i, 0, p);
    if (this.#pending.length > this.#maxPending) this.#pending.shift();
  }

  /** Records an observed value at `at`: resolves every forecast due by then. */
  actual(at: number, value: number): void {
    if (!Number.isFinite(at) || !Number.isFinite(value)) return;
    let n = 0;
    while (n < this.#pending.length && this.#pending[n]!.due <= at) n++;
    for (const p of this.#pending.splice(0, n)) {
      const f = p.forecast;
      this.#add({ at, forecast: f.mean, lower: f.lower, upper: f.upper, naive: p.naive, actual: value });
    }
    this.#prune(at);
  }

  #add(pair: AccuracyPair): void {
    const start = Math.floor(pair.at / this.#bucketMs) * this.#bucketMs;
    let b = this.#buckets.get(start);
    if (!b) {
      b = zero();
      this.#buckets.set(start, b);
    }
    add(b, pair);
  }

  #prune(now: number): void {
    for (const start of this.#buckets.keys()) {
      if (start + this.#bucketMs > now - this.#keepMs) break;
      this.#buckets.delete(start);
    }
  }

  /** Buckets held (at most `keepMs / bucketMs + 1`). */
  get buckets(): number {
    return this.#buckets.size;
  }

  /** Accuracy over the `windowMs` before `now` (to the bucket's resolution). */
  summary(now: number, windowMs: number): AccuracySummary {
    const s = zero();
    for (const [start, b] of this.#buckets) {
      if (start + this.#bucketMs <= now - windowMs) continue;
      s.pairs += b.pairs;
      s.absError += b.absError;
      s.naiveAbsError += b.naiveAbsError;
      s.inside += b.inside;
    }
    return summarise(s, windowMs, this.#minPairs);
  }

  /** Accuracy over the last hour and the last day. */
  report(now: number): AccuracyReport {
    return {
      at: now,
      pending: this.#pending.length,
      hour: this.summary(now, ACCURACY_WINDOWS.hour),
      day: this.summary(now, ACCURACY_WINDOWS.day),
    };
  }
}
