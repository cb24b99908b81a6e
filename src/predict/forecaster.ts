/** One forecast step: the point forecast and the interval at the requested coverage. */
export interface ForecastPoint {
  /** Point forecast (finite). */
  mean: number;
  /** Lower bound of the central interval (finite, ≤ mean). */
  lower: number;
  /** Upper bound of the central interval (finite, ≥ mean). */
  upper: number;
}

/**
 * A streaming forecaster over a regularly stepped series (feed irregular samples through
 * {@link StreamingSeries} first). Pure: time is an argument, no clock, no I/O.
 */
export interface Forecaster {
  /** Short name of the method, e.g. `holt-winters`. */
  readonly name: string;
  /** Number of values observed. */
  readonly count: number;
  /** Observes the value `x` of the step at time `t` (time is informational; one call per step). */
  update(t: number, x: number): void;
  /**
   * Forecasts steps 1…h ahead. `coverage` in (0, 1) is the central interval's probability
   * (default 0.9). Always returns h finite points, also before any data (then mean 0).
   */
  forecast(h: number, coverage?: number): ForecastPoint[];
}

/**
 * A point model inside a forecaster: sees each value once and predicts `h` steps ahead. Intervals
 * are added around it by the wrapping forecaster from its own empirical errors.
 */
export interface PointModel {
  readonly name: string;
  /** Observes the next value; `history` holds every value so far including `x` (bounded). */
  observe(x: number, history: HistoryView): void;
  /** Point forecast `h` ≥ 1 steps ahead of the newest value; NaN when the model cannot say yet. */
  predict(h: number, history: HistoryView): number;
}

/** Read access to the recent values of a series (newest is `back(0)`). */
export interface HistoryView {
  readonly size: number;
  back(k: number): number;
  toArray(n?: number): Float64Array;
}
