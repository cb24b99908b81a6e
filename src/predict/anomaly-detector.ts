import { ContextNovelty } from './context-novelty.js';
import { RarityHistogram } from './rarity-histogram.js';
import { RollingStats } from './rolling-stats.js';

/** Options of {@link AnomalyDetector}. */
export interface AnomalyDetectorOptions {
  /**
   * Points used only to learn (score 0) before the detector starts scoring; NAB hands every
   * detector 15 % of the file (at most 750) for this. @default 150
   */
  learningPoints?: number;
  /** Quantisation levels over the range seen, for the rare-pattern cue. @default 8 */
  levels?: number;
  /** Longest subsequence of the rare-pattern cue. @default 6 */
  maxOrder?: number;
  /**
   * Weight in [0, 1] of the magnitude cue, which scales the pattern cue by how far the value (or
   * its step change) lies from the recent mean, in standard deviations. @default 0.4
   */
  magnitudeWeight?: number;
  /** Deviation (in standard deviations) at which the magnitude cue saturates. @default 4 */
  magnitudeFullAt?: number;
  /** Window of the magnitude cue's mean and deviation. @default 1000 */
  magnitudeWindow?: number;
  /** Window over which a score's rarity (the share of recent scores at least as high) is judged. @default 2000 */
  rarityWindow?: number;
  /**
   * After a reported score ≥ `alarmLevel`, report 0 for this many points (counted from the reported
   * alarm; high scores while suppressed do not extend it). @default learningPoints / 5
   */
  suppressPoints?: number;
  /** Reported score that counts as an alarm and starts the suppression. @default 0.75 */
  alarmLevel?: number;
  /**
   * Sensitivity > 0: multiplies the score before it is capped at 1, so a fixed alert threshold
   * fires more (> 1) or less (< 1) often. @default 1
   */
  sensitivity?: number;
}

interface ResolvedDetectorOptions {
  learningPoints: number;
  levels: number;
  maxOrder: number;
  magnitudeWeight: number;
  magnitudeFullAt: number;
  magnitudeWindow: number;
  rarityWindow: number;
  suppressPoints: number;
  alarmLevel: number;
  sensitivity: number;
}

/** One point's verdict. */
export interface AnomalyScore {
  /** Reported anomaly score in [0, 1] (0 while learning and while suppressed after an alarm). */
  score: number;
  /** The score before suppression, in [0, 1]. */
  raw: number;
  /** True while the detector is still learning. */
  learning: boolean;
  /** True when an earlier alarm suppressed this point's score. */
  suppressed: boolean;
}

function resolveOptions(o: AnomalyDetectorOptions): ResolvedDetectorOptions {
  const learningPoints = Math.max(10, Math.floor(o.learningPoints ?? 150));
  const pos = (v: number | undefined, d: number): number =>
    v !== undefined && Number.isFinite(v) && v > 0 ? v : d;
  return {
    learningPoints,
    levels: Math.floor(pos(o.levels, 8)),
    maxOrder: Math.floor(pos(o.maxOrder, 6)),
    magnitudeWeight: Math.min(1, Math.max(0, o.magnitudeWeight ?? 0.4)),
    magnitudeFullAt: pos(o.magnitudeFullAt, 4),
    magnitudeWindow: Math.floor(pos(o.magnitudeWindow, 1000)),
    rarityWindow: Math.floor(pos(o.rarityWindow, 2000)),
    suppressPoints: Math.floor(o.suppressPoints ?? learningPoints / 5),
    alarmLevel: pos(o.alarmLevel, 0.75),
    sensitivity: pos(o.sensitivity, 1),
  };
}

/**
 * Online anomaly detector: one call per point, each score from the past only (no look-ahead),
 * in [0, 1], deterministic (no randomness at all). Three cues:
 * 1. rare patterns — new or broken subsequences of quantised values ({@link ContextNovelty});
 * 2. magnitude — the pattern cue is scaled by how far the value, or its step change, lies from
 *    the recent mean in standard deviations (a new pattern at a normal level counts less);
 * 3. rarity — the result is discounted by the share of recent scores at least as high, so a
 *    series that is always "novel" (noise) does not alarm all the time;
 * and after an alarm the detector reports 0 for a while (one early alarm per event).
 */
export class AnomalyDetector {
  readonly #o: ResolvedDetectorOptions;
  readonly #novelty: ContextNovelty;
  readonly #values: RollingStats;
  readonly #diffs: RollingStats;
  readonly #learn: number[] = [];
  readonly #rarity: RarityHistogram;
  #last = 0;
  #sinceAlarm = Number.POSITIVE_INFINITY;
  #count = 0;

  constructor(options: AnomalyDetectorOptions = {}) {
    this.#o = resolveOptions(options);
    this.#novelty = new ContextNovelty(this.#o.maxOrder, this.#o.levels);
    this.#values = new RollingStats(this.#o.magnitudeWindow);
    this.#diffs = new RollingStats(this.#o.magnitudeWindow);
    this.#rarity = new RarityHistogram(this.#o.rarityWindow);
  }

  /** Points seen. */
  get count(): number {
    return this.#count;
  }

  /** Feeds one point (time in ms — informational; value) and returns its score. */
  update(_t: number, x: number): AnomalyScore {
    this.#count++;
    const v = Number.isFinite(x) ? Math.max(-1e300, Math.min(1e300, x)) : this.#last;
    if (!this.#novelty.ready) {
      this.#learn.push(v);
      if (this.#learn.length >= this.#o.learningPoints) {
        const patterns = this.#novelty.calibrate(this.#learn);
        for (let i = 0; i < this.#learn.length; i++) {
          const y = this.#learn[i]!;
          // Warm the rarity histogram with the learning points' own (causal) scores.
          if (i >= 20) {
            const magnitude = Math.max(
              this.#deviation(this.#values, y),
              this.#deviation(this.#diffs, y - this.#last),
            );
            const w = this.#o.magnitudeWeight;
            this.#rarity.rankAndRecord(patterns[i]! * (1 - w + w * magnitude));
          }
          this.#observeMagnitude(y);
        }
        this.#learn.length = 0;
      }
      return { score: 0, raw: 0, learning: true, suppressed: false };
    }
    const pattern = this.#novelty.update(v);
    const magnitude = Math.max(
      this.#deviation(this.#values, v),
      this.#deviation(this.#diffs, v - this.#last),
    );
    this.#observeMagnitude(v);
    const w = this.#o.magnitudeWeight;
    const combined = pattern * (1 - w + w * magnitude);
    const raw = Math.min(1, combined * (1 - this.#rarity.rankAndRecord(combined)) * this.#o.sensitivity);
    const suppressed = this.#sinceAlarm < this.#o.suppressPoints;
    this.#sinceAlarm++;
    // Only a reported alarm starts the quiet period: an event still anomalous once it has passed
    // is reported again (a suppressed high score does not extend the suppression).
    if (raw >= this.#o.alarmLevel && !suppressed) this.#sinceAlarm = 0;
    const score = suppressed ? 0 : Number.isFinite(raw) ? Math.max(0, raw) : 0;
    return { score, raw: Number.isFinite(raw) ? Math.max(0, raw) : 0, learning: false, suppressed };
  }

  #observeMagnitude(v: number): void {
    this.#values.push(v);
    this.#diffs.push(v - this.#last);
    this.#last = v;
  }

  /** Deviation of `x` from the window's mean, in [0, 1] (saturating at `magnitudeFullAt` sd). */
  #deviation(stats: RollingStats, x: number): number {
    const sd = stats.std;
    if (stats.size < 10 || !(sd > 0)) return 0;
    const z = Math.abs(x - stats.mean) / sd;
    return Number.isFinite(z) ? Math.min(1, z / this.#o.magnitudeFullAt) : 1;
  }
}
