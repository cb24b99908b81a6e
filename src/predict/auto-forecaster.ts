import { EnsembleModel } from './ensemble-model.js';
import type { EnsembleOptions } from './ensemble-model.js';
import type { Forecaster } from './forecaster.js';
import { HoltWintersModel } from './holt-winters.js';
import type { HoltWintersOptions } from './holt-winters.js';
import { LastValueModel } from './last-value.js';
import { ModelForecaster } from './model-forecaster.js';
import type { ForecasterOptions } from './model-forecaster.js';
import type { PeriodCandidate } from './period-detection.js';
import { SeasonalNaiveModel } from './seasonal-naive.js';

/** Options of {@link createAutoForecaster}. */
export interface AutoForecasterOptions extends ForecasterOptions {
  /** Fixed season length in steps; omit to detect it (any length up to half the history). */
  period?: number;
  /** Weight exponent of the ensemble: member weight ∝ RMSE^−power. @default 2 */
  power?: number;
  /** Re-run period detection every this many values once warmed up. @default 1440 */
  detectEvery?: number;
}

/** The self-tuning forecaster: an ensemble with period detection and calibrated intervals. */
export class AutoForecaster extends ModelForecaster {
  readonly #ensemble: EnsembleModel;

  constructor(options: AutoForecasterOptions = {}) {
    const eo: EnsembleOptions = { maxHorizon: options.maxHorizon ?? 64 };
    if (options.period !== undefined) eo.period = options.period;
    if (options.power !== undefined) eo.power = options.power;
    if (options.detectEvery !== undefined) eo.detectEvery = options.detectEvery;
    const ensemble = new EnsembleModel(eo);
    super(ensemble, options);
    this.#ensemble = ensemble;
  }

  /** Season length in use (0 = none). */
  get period(): number {
    return this.#ensemble.period;
  }

  /** Latest period-detection candidates, strongest first. */
  get periodCandidates(): readonly PeriodCandidate[] {
    return this.#ensemble.candidates;
  }

  /** Members and their weights at horizon `h`. */
  memberWeights(h: number): { name: string; weight: number }[] {
    return this.#ensemble.weights(h, this.history);
  }
}

/**
 * Creates the default forecaster for a metric: tunes itself (period detection, Holt–Winters
 * parameters, ensemble weights), works from the first value (degrading to simpler models), and
 * gives calibrated intervals. This is what the scaling policy should use.
 */
export function createAutoForecaster(options: AutoForecasterOptions = {}): AutoForecaster {
  return new AutoForecaster(options);
}

/** A last-value forecaster with empirical intervals (the naive baseline). */
export function createLastValueForecaster(options: ForecasterOptions = {}): Forecaster {
  return new ModelForecaster(new LastValueModel(), options);
}

/** A seasonal-naive forecaster with empirical intervals (falls back to the last value for < 1 period). */
export function createSeasonalNaiveForecaster(period: number, options: ForecasterOptions = {}): Forecaster {
  return new ModelForecaster(new SeasonalNaiveModel(period), options);
}

/** A self-fitting Holt–Winters forecaster (additive, damped by default) with empirical intervals. */
export function createHoltWintersForecaster(
  hw: HoltWintersOptions = {},
  options: ForecasterOptions = {},
): Forecaster {
  return new ModelForecaster(new HoltWintersModel(hw), options);
}
