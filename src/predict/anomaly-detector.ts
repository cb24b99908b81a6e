import { ContextNovelty } from './context-novelty.js';
import { RollingStats } from './rolling-stats.js';

/** Options of {@link AnomalyDetector}. */
export interface AnomalyDetectorOptions {
  /** Points used only to learn (score 0) before the detector starts scoring. @default 150 */
  learningPoints?: number;
  /** Quantisation levels over the learning range for the rare-pattern cue. @default 8 */
  levels?: number;
  /** Longest subsequence of the rare-pattern cue. @default 6 */
  maxOrder?: number;
  /** After a raw score ≥ `alarmLevel`, report 0 for this many points. @default learningPoints / 5 */
  suppressPoints?: number;
  /** Raw score at which an alarm starts suppression. @default 0.75 */
  alarmLevel?: number;
  /** Sensitivity in (0, 2]: scales reported scores (1 = neutral). @default 1 */
  sensitivity?: number;
  /** Experimental cue mode. @default 1 */
  mode?: number;
  /** Experimental gate. @default true */
  gate?: boolean;
  lambda?: number;
  emaPoints?: number;
  tailWeight?: number;
  tailWindow?: number;
  z0?: number;
  z1?: number;
  combine?: number;
}

interface Resolved {
  learningPoints: number;
  levels: number;
  maxOrder: number;
  suppressPoints: number;
  alarmLevel: number;
  sensitivity: number;
  mode: number;
  gate: boolean;
  lambda: number;
  emaPoints: number;
  tailWeight: number;
  tailWindow: number;
  z0: number;
  z1: number;
  combine: number;
}

/** One point's verdict. */
export interface AnomalyScore {
  /** Reported anomaly score in [0, 1] (after suppression). */
  score: number;
  /** Raw combined cue in [0, 1], before suppression. */
  raw: number;
  /** True while the detector is still learning (score is 0). */
  learning: boolean;
}

function resolve(o: AnomalyDetectorOptions): Resolved {
  const learningPoints = Math.max(10, Math.floor(o.learningPoints ?? 150));
  return {
    learningPoints,
    levels: o.levels ?? 8,
    maxOrder: o.maxOrder ?? 6,
    suppressPoints: o.suppressPoints ?? Math.floor(learningPoints / 5),
    alarmLevel: o.alarmLevel ?? 0.75,
    sensitivity: o.sensitivity ?? 1,
    mode: o.mode ?? 1,
    gate: o.gate ?? true,
    lambda: o.lambda ?? 0,
    emaPoints: o.emaPoints ?? 500,
    tailWeight: o.tailWeight ?? 0,
    tailWindow: o.tailWindow ?? 1000,
    z0: o.z0 ?? 3,
    z1: o.z1 ?? 8,
    combine: o.combine ?? 0,
  };
}

/**
 * Online anomaly detector: one call per point, scores only from the past (no look-ahead), a score
 * in [0, 1], deterministic. Combines a rare-pattern cue with suppression after an alarm.
 */
export class AnomalyDetector {
  readonly #o: Resolved;
  readonly #novelty: ContextNovelty;
  readonly #learn: number[] = [];
  readonly #rawHistory: number[] = [];

  #last = 0;
  readonly #vals: RollingStats;
  readonly #diffs: RollingStats;

  #tail(stats: RollingStats, x: number): number {
    const sd = stats.std;
    if (stats.size < 10 || sd <= 0) return 0;
    const z = Math.abs(x - stats.mean) / sd;
    return Math.max(0, Math.min(1, (z - this.#o.z0) / (this.#o.z1 - this.#o.z0)));
  }
  #ema = 0;

  constructor(options: AnomalyDetectorOptions = {}) {
    this.#o = resolve(options);
    this.#novelty = new ContextNovelty(this.#o.maxOrder, this.#o.mode);
    this.#vals = new RollingStats(this.#o.tailWindow);
    this.#diffs = new RollingStats(this.#o.tailWindow);
  }

  /** Feeds one point (time in ms, value) and returns its score. */
  update(_t: number, x: number): AnomalyScore {

    const v = Number.isFinite(x) ? x : 0;
    if (!this.#novelty.ready) {
      this.#learn.push(v);
      if (this.#learn.length >= this.#o.learningPoints) {
        for (const y of this.#learn) {
          this.#vals.push(y);
          this.#diffs.push(y - this.#last);
          this.#last = y;
        }
        this.#novelty.calibrate(this.#learn, this.#o.levels, this.#o.mode !== 2, 5000, this.#o.gate);
        this.#learn.length = 0;
      }
      return { score: 0, raw: 0, learning: true };
    }
    const r0 = this.#novelty.update(v);
    const nov = Math.max(0, r0 - this.#o.lambda * this.#ema);
    this.#ema += (r0 - this.#ema) / this.#o.emaPoints;
    const tail = Math.max(this.#tail(this.#vals, v), this.#tail(this.#diffs, v - this.#last));
    this.#vals.push(v);
    this.#diffs.push(v - this.#last);
    this.#last = v;
    const raw = this.#o.combine === 0 ? Math.max(nov, this.#o.tailWeight * tail) : this.#o.combine === 1 ? nov * (1 - this.#o.tailWeight + this.#o.tailWeight * tail) : Math.min(1, nov + this.#o.tailWeight * tail);
    const h = this.#rawHistory;
    let suppressed = false;
    for (const r of h) if (r >= this.#o.alarmLevel) suppressed = true;
    h.push(raw);
    if (h.length > this.#o.suppressPoints) h.shift();
    const score = suppressed ? 0 : Math.min(1, raw * this.#o.sensitivity);
    return { score, raw, learning: false };
  }
}
