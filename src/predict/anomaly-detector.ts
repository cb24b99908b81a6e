import { NoveltyScale, type NoveltyScaleOptions } from './novelty-scale.js';
import { RangeBreach } from './range-breach.js';
import { ResonanceNovelty } from './resonance-novelty.js';
import type { ResonanceNoveltyOptions } from './resonance-novelty.js';

/**
 * Options of {@link AnomalyDetector}. The fast novelty cue's settings (`levels`, `maxOrder`,
 * `magnitudeWeight`, `magnitudeFullAt`, `magnitudeWindow`, `rarityWindow`) are those of
 * {@link NoveltyScaleOptions}, with the same defaults.
 */
export interface AnomalyDetectorOptions extends Omit<NoveltyScaleOptions, 'rarityPower'> {
  /**
   * Points used only to learn (score 0) before the detector starts scoring; NAB hands every
   * detector 15 % of the file (at most 750) for this. @default 150
   */
  learningPoints?: number;
  /**
   * The slow time scale: the learning period is cut into this many blocks, and the block means
   * form a second stream scored by its own novelty model (slow pattern and level changes a
   * point-by-point model misses). 0 turns the slow scale off. @default 50
   */
  slowBlocks?: number;
  /**
   * Exponent of the slow scale's rarity discount (`score · (1 − share)^p`; the fast scale uses
   * 1): the slow stream has `learningPoints / slowBlocks` times fewer points, so only its rarest
   * scores may alarm. @default 3
   */
  slowRarityPower?: number;
  /**
   * Spatial cue: a value beyond the whole range seen so far by more than this share of that range
   * scores 1 (Numenta's NAB detector uses 0.05). 0 turns it off. @default 0.05
   */
  spatialTolerance?: number;
  /**
   * Weight of the adaptive-resonance cue ({@link ResonanceNovelty}): its confidence, times this
   * weight and capped at 1, joins the other cues. 0 turns it off. @default 1.25
   */
  resonanceWeight?: number;
  /** Options of the adaptive-resonance cue. */
  resonance?: ResonanceNoveltyOptions;
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
  slowBlocks: number;
  slowRarityPower: number;
  spatialTolerance: number;
  resonanceWeight: number;
  resonance: ResonanceNoveltyOptions;
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
  const nonNeg = (v: number | undefined, d: number): number =>
    v !== undefined && Number.isFinite(v) && v >= 0 ? v : d;
  return {
    learningPoints,
    levels: Math.floor(pos(o.levels, 8)),
    maxOrder: Math.floor(pos(o.maxOrder, 6)),
    magnitudeWeight: Math.min(1, Math.max(0, o.magnitudeWeight ?? 0.4)),
    magnitudeFullAt: pos(o.magnitudeFullAt, 4),
    magnitudeWindow: Math.floor(pos(o.magnitudeWindow, 1000)),
    rarityWindow: Math.floor(pos(o.rarityWindow, 2000)),
    slowBlocks: Math.floor(nonNeg(o.slowBlocks, 50)),
    slowRarityPower: pos(o.slowRarityPower, 3),
    spatialTolerance: nonNeg(o.spatialTolerance, 0.05),
    resonanceWeight: nonNeg(o.resonanceWeight, 1.25),
    resonance: o.resonance ?? {},
    suppressPoints: Math.floor(o.suppressPoints ?? learningPoints / 5),
    alarmLevel: pos(o.alarmLevel, 0.75),
    sensitivity: pos(o.sensitivity, 1),
  };
}

/**
 * Online anomaly detector: one call per point, each score from the past only (no look-ahead),
 * in [0, 1], deterministic (no randomness at all). The score is the highest of four cues:
 * 1. fast novelty — rare patterns of the raw values, scaled by a magnitude cue and discounted by
 *    rarity ({@link NoveltyScale});
 * 2. slow novelty — the same on the means of blocks of `learningPoints / slowBlocks` points,
 *    scored when a block completes: slow pattern and level changes (a missing daily jump, a drift
 *    that the point-by-point model absorbs) that no single point reveals;
 * 3. spatial — 1 when the value leaves the whole range seen so far by a margin ({@link RangeBreach});
 * 4. resonance — the confidence of an adaptive-resonance clustering of short downsampled windows
 *    when a window founds a new cluster ({@link ResonanceNovelty}, after ARTime): shape changes
 *    the quantised pattern model misses because a spike widened its range;
 * and after an alarm the detector reports 0 for a while (one early alarm per event).
 */
export class AnomalyDetector {
  readonly #o: ResolvedDetectorOptions;
  readonly #fast: NoveltyScale;
  readonly #slow: NoveltyScale | undefined;
  readonly #blockSize: number;
  readonly #range: RangeBreach | undefined;
  readonly #resonance: ResonanceNovelty | undefined;
  #blockSum = 0;
  #blockCount = 0;
  #last = 0;
  #sinceAlarm = Number.POSITIVE_INFINITY;
  #count = 0;

  constructor(options: AnomalyDetectorOptions = {}) {
    const o = (this.#o = resolveOptions(options));
    const scale = {
      levels: o.levels,
      maxOrder: o.maxOrder,
      magnitudeWeight: o.magnitudeWeight,
      magnitudeFullAt: o.magnitudeFullAt,
      magnitudeWindow: o.magnitudeWindow,
      rarityWindow: o.rarityWindow,
    };
    this.#fast = new NoveltyScale(o.learningPoints, scale);
    this.#blockSize = o.slowBlocks > 0 ? Math.max(2, Math.round(o.learningPoints / o.slowBlocks)) : 0;
    this.#slow =
      this.#blockSize > 0
        ? new NoveltyScale(Math.floor(o.learningPoints / this.#blockSize), {
            ...scale,
            rarityPower: o.slowRarityPower,
          })
        : undefined;
    this.#resonance = o.resonanceWeight > 0 ? new ResonanceNovelty(o.learningPoints, o.resonance) : undefined;
    this.#range = o.spatialTolerance > 0 ? new RangeBreach(o.spatialTolerance) : undefined;
  }

  /** Points seen. */
  get count(): number {
    return this.#count;
  }

  /** Feeds one point (time in ms — informational; value) and returns its score. */
  update(_t: number, x: number): AnomalyScore {
    this.#count++;
    const v = Number.isFinite(x) ? Math.max(-1e300, Math.min(1e300, x)) : this.#last;
    this.#last = v;
    const fast = this.#fast.update(v);
    const resonance = (this.#resonance?.update(v) ?? 0) * this.#o.resonanceWeight;
    let slow = 0;
    if (this.#slow) {
      this.#blockSum += v;
      if (++this.#blockCount === this.#blockSize) {
        slow = this.#slow.update(this.#blockSum / this.#blockSize);
        this.#blockSum = 0;
        this.#blockCount = 0;
      }
    }
    if (this.#count <= this.#o.learningPoints) {
      this.#range?.observe(v);
      return { score: 0, raw: 0, learning: true, suppressed: false };
    }
    let combined = Math.max(fast, slow, Math.min(1, resonance));
    if (this.#range?.update(v)) combined = 1;
    const r = Math.min(1, combined * this.#o.sensitivity);
    const raw = Number.isFinite(r) ? Math.max(0, r) : 0;
    const suppressed = this.#sinceAlarm < this.#o.suppressPoints;
    this.#sinceAlarm++;
    // Only a reported alarm starts the quiet period: an event still anomalous once it has passed
    // is reported again (a suppressed high score does not extend the suppression).
    if (raw >= this.#o.alarmLevel && !suppressed) this.#sinceAlarm = 0;
    return { score: suppressed ? 0 : raw, raw, learning: false, suppressed };
  }
}
