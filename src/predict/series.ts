import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { RingBuffer } from './ring-buffer.js';

/** How the samples that fall into one step are combined. */
export type SeriesAggregate = 'mean' | 'last' | 'max' | 'sum';

/** Options of {@link StreamingSeries}. */
export interface StreamingSeriesOptions {
  /** Step of the resampled series, in the unit of the timestamps (ms for Understudy). */
  step: number;
  /** Number of resampled steps kept. @default 4096 */
  capacity?: number;
  /** How samples within one step combine. @default 'mean' */
  aggregate?: SeriesAggregate;
  /**
   * Missing steps up to this many are filled by linear interpolation between the steps either
   * side (emitted when the step after the gap closes); a longer gap restarts the series (history
   * is cleared) so that a fill never costs more than this. @default 360
   */
  maxGapSteps?: number;
  /**
   * Clip a sample further than this many robust deviations (exponentially weighted mean absolute
   * deviation × 1.25) from the running centre; `Infinity` disables clipping. @default 10
   */
  clipDeviations?: number;
}

interface ResolvedSeriesOptions {
  step: number;
  capacity: number;
  aggregate: SeriesAggregate;
  maxGapSteps: number;
  clipDeviations: number;
}

/**
 * A bounded, resampled metric: irregular samples in, one value per fixed step out. O(1) amortised
 * per sample (a gap fill costs at most `maxGapSteps`). Time is an argument; no clock is read.
 */
export class StreamingSeries {
  readonly #o: ResolvedSeriesOptions;
  readonly #values: RingBuffer;
  #bucket = Number.NaN;
  #acc = 0;
  #count = 0;
  #lastValue = Number.NaN;
  #center = Number.NaN;
  #dev = 0;
  #seen = 0;
  #clipped = 0;
  #dropped = 0;
  #pendingGap = 0;

  /** Thrown when `step` is not a positive finite number: `UNDERSTUDY_ERR_PREDICT_INPUT`. */
  constructor(options: StreamingSeriesOptions) {
    if (!(options.step > 0) || !Number.isFinite(options.step)) {
      throw new UnderstudyError(
        ErrorCode.PredictInput,
        `series step must be a positive number, got ${String(options.step)}`,
      );
    }
    this.#o = {
      step: options.step,
      capacity: Math.max(2, Math.floor(options.capacity ?? 4096)),
      aggregate: options.aggregate ?? 'mean',
      maxGapSteps: Math.max(0, Math.floor(options.maxGapSteps ?? 360)),
      clipDeviations: options.clipDeviations ?? 10,
    };
    this.#values = new RingBuffer(this.#o.capacity);
  }

  /** Completed resampled values (the step in progress is not included). */
  get values(): RingBuffer {
    return this.#values;
  }

  /** Start time of the newest completed step, or NaN. */
  get lastStepTime(): number {
    return Number.isNaN(this.#bucket) ? Number.NaN : (this.#bucket - 1) * this.#o.step;
  }

  /** Samples clipped as outliers, and samples dropped (late, or not finite). */
  get stats(): { clipped: number; dropped: number } {
    return { clipped: this.#clipped, dropped: this.#dropped };
  }

  /**
   * Adds a sample at time `t`. Returns the number of steps completed by this sample (each now in
   * `values`); 0 while the current step is still open. Late samples (an earlier step) and
   * non-finite values are dropped.
   */
  push(t: number, x: number): number {
    if (!Number.isFinite(t) || !Number.isFinite(x)) {
      this.#dropped++;
      return 0;
    }
    const k = Math.floor(t / this.#o.step);
    if (Number.isNaN(this.#bucket)) this.#bucket = k;
    if (k < this.#bucket) {
      this.#dropped++;
      return 0;
    }
    let completed = 0;
    if (k > this.#bucket) {
      completed = this.#close(k);
      this.#bucket = k;
    }
    this.#accumulate(this.#clip(x));
    return completed;
  }

  /** Closes the open step (e.g. at the end of a replay); returns 1 if a value was appended. */
  flush(): number {
    if (this.#count === 0) return 0;
    const completed = this.#emitWithGap(this.#aggregateValue());
    this.#count = 0;
    this.#acc = 0;
    this.#bucket++;
    return completed;
  }

  #clip(x: number): number {
    const k = this.#o.clipDeviations;
    this.#seen++;
    if (Number.isNaN(this.#center)) {
      this.#center = x;
      return x;
    }
    let y = x;
    if (this.#seen > 20 && Number.isFinite(k) && this.#dev > 0) {
      const lim = k * 1.25 * this.#dev;
      if (x > this.#center + lim) y = this.#center + lim;
      else if (x < this.#center - lim) y = this.#center - lim;
      if (y !== x) this.#clipped++;
    }
    const a = 0.02;
    this.#dev += a * (Math.abs(y - this.#center) - this.#dev);
    this.#center += a * (y - this.#center);
    return y;
  }

  #accumulate(x: number): void {
    const agg = this.#o.aggregate;
    if (this.#count === 0) this.#acc = x;
    else if (agg === 'mean' || agg === 'sum') this.#acc += x;
    else if (agg === 'max') this.#acc = Math.max(this.#acc, x);
    else this.#acc = x;
    this.#count++;
  }

  #aggregateValue(): number {
    return this.#o.aggregate === 'mean' ? this.#acc / this.#count : this.#acc;
  }

  #emit(v: number): void {
    this.#values.push(v);
    this.#lastValue = v;
  }

  /** Emits the closed step's value, first interpolating any pending gap up to it. */
  #emitWithGap(value: number): number {
    let completed = 0;
    const gap = this.#pendingGap;
    this.#pendingGap = 0;
    if (gap > 0 && !Number.isNaN(this.#lastValue)) {
      const from = this.#lastValue;
      for (let i = 1; i <= gap; i++) {
        this.#emit(this.#o.aggregate === 'sum' ? 0 : from + ((value - from) * i) / (gap + 1));
        completed++;
      }
    }
    this.#emit(value);
    return completed + 1;
  }

  #close(next: number): number {
    let completed = 0;
    if (this.#count > 0) completed = this.#emitWithGap(this.#aggregateValue());
    this.#count = 0;
    this.#acc = 0;
    const gap = next - this.#bucket - 1;
    if (gap > this.#o.maxGapSteps) {
      this.#values.clear();
      this.#lastValue = Number.NaN;
      this.#pendingGap = 0;
    } else this.#pendingGap += gap;
    return completed;
  }
}
