import { ContextNovelty } from './context-novelty.js';
import { RarityHistogram } from './rarity-histogram.js';
import { RollingStats } from './rolling-stats.js';

/** Options of {@link NoveltyScale}. */
export interface NoveltyScaleOptions {
  /** Quantisation levels over the range seen, for the rare-pattern cue. @default 8 */
  levels?: number;
  /** Longest subsequence of the rare-pattern cue. @default 6 */
  maxOrder?: number;
  /** Weight in [0, 1] of the magnitude cue. @default 0.4 */
  magnitudeWeight?: number;
  /** Deviation (in standard deviations) at which the magnitude cue saturates. @default 4 */
  magnitudeFullAt?: number;
  /** Window of the magnitude cue's mean and deviation. @default 1000 */
  magnitudeWindow?: number;
  /** Window over which a score's rarity is judged. @default 2000 */
  rarityWindow?: number;
  /**
   * Exponent p of the rarity discount: the score is `combined · (1 − share)^p`, where `share` is
   * the share of recent scores at least as high; a larger p keeps only the rarest scores. @default 1
   */
  rarityPower?: number;
}

/** Scores warm the rarity histogram only from this learning point on (the first are all novel). */
const WARM_FROM = 20;

/**
 * The contextual-novelty score of one stream at one time scale, in [0, 1]: rare patterns
 * ({@link ContextNovelty}) scaled by a magnitude cue (how far the value, or its step change, lies
 * from the recent mean in standard deviations) and discounted by rarity (the share of recent
 * scores at least as high, {@link RarityHistogram}). The first `learningPoints` values only
 * learn (score 0): they set the quantiser and warm the magnitude and rarity statistics with their
 * own causal scores. Online, causal, deterministic; bounded memory.
 */
export class NoveltyScale {
  readonly #learningPoints: number;
  readonly #levels: number;
  readonly #maxOrder: number;
  readonly #magnitudeWeight: number;
  readonly #magnitudeFullAt: number;
  readonly #rarityPower: number;
  readonly #novelty: ContextNovelty;
  readonly #values: RollingStats;
  readonly #diffs: RollingStats;
  readonly #rarity: RarityHistogram;
  readonly #learn: number[] = [];
  #last = 0;

  /** @param learningPoints values used only to learn before scoring starts (at least 10) */
  constructor(learningPoints: number, options: NoveltyScaleOptions = {}) {
    const pos = (v: number | undefined, d: number): number =>
      v !== undefined && Number.isFinite(v) && v > 0 ? v : d;
    this.#learningPoints = Math.max(10, Math.floor(learningPoints));
    this.#levels = Math.floor(pos(options.levels, 8));
    this.#maxOrder = Math.floor(pos(options.maxOrder, 6));
    this.#magnitudeWeight = Math.min(1, Math.max(0, options.magnitudeWeight ?? 0.4));
    this.#magnitudeFullAt = pos(options.magnitudeFullAt, 4);
    this.#rarityPower = pos(options.rarityPower, 1);
    const window = Math.floor(pos(options.magnitudeWindow, 1000));
    this.#novelty = new ContextNovelty(this.#maxOrder, this.#levels);
    this.#values = new RollingStats(window);
    this.#diffs = new RollingStats(window);
    this.#rarity = new RarityHistogram(Math.floor(pos(options.rarityWindow, 2000)));
  }

  /** True while the scale is still learning (its scores are 0). */
  get learning(): boolean {
    return !this.#novelty.ready;
  }

  /** Scores a finite value in [0, 1] against the past (0 while learning), then learns it. */
  update(v: number): number {
    if (!this.#novelty.ready) {
      this.#learn.push(v);
      if (this.#learn.length >= this.#learningPoints) {
        const patterns = this.#novelty.calibrate(this.#learn);
        for (let i = 0; i < this.#learn.length; i++) {
          const combined = this.#combine(patterns[i]!, this.#learn[i]!);
          if (i >= WARM_FROM) this.#rarity.rankAndRecord(combined);
        }
        this.#learn.length = 0;
      }
      return 0;
    }
    const combined = this.#combine(this.#novelty.update(v), v);
    const share = this.#rarity.rankAndRecord(combined);
    const s = combined * (1 - share) ** this.#rarityPower;
    return Number.isFinite(s) ? Math.min(1, Math.max(0, s)) : 0;
  }

  /** The pattern score scaled by the magnitude cue; then observes `v`. */
  #combine(pattern: number, v: number): number {
    const magnitude = Math.max(
      this.#deviation(this.#values, v),
      this.#deviation(this.#diffs, v - this.#last),
    );
    this.#values.push(v);
    this.#diffs.push(v - this.#last);
    this.#last = v;
    const w = this.#magnitudeWeight;
    return pattern * (1 - w + w * magnitude);
  }

  /** Deviation of `x` from the window's mean, in [0, 1] (saturating at `magnitudeFullAt` sd). */
  #deviation(stats: RollingStats, x: number): number {
    const sd = stats.std;
    if (stats.size < 10 || !(sd > 0)) return 0;
    const z = Math.abs(x - stats.mean) / sd;
    return Number.isFinite(z) ? Math.min(1, z / this.#magnitudeFullAt) : 1;
  }
}
