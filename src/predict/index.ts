// predict: pure forecasting, anomaly detection, readiness and confidence. No I/O, no clock.
export type { ForecastPoint, Forecaster, PointModel, HistoryView } from './forecaster.js';
export {
  createAutoForecaster,
  createLastValueForecaster,
  createSeasonalNaiveForecaster,
  createHoltWintersForecaster,
  AutoForecaster,
} from './auto-forecaster.js';
export type { AutoForecasterOptions } from './auto-forecaster.js';
export { ModelForecaster, normalQuantile } from './model-forecaster.js';
export type { ForecasterOptions } from './model-forecaster.js';
export { EnsembleModel } from './ensemble-model.js';
export type { EnsembleOptions } from './ensemble-model.js';
export { HoltWintersModel } from './holt-winters.js';
export type { HoltWintersOptions, HoltWintersParams } from './holt-winters.js';
export { LastValueModel } from './last-value.js';
export { SeasonalNaiveModel } from './seasonal-naive.js';
export { detectPeriods, autocorrelation } from './period-detection.js';
export type { PeriodCandidate, PeriodDetectionOptions } from './period-detection.js';
export { nelderMead } from './nelder-mead.js';
export type { NelderMeadOptions, NelderMeadResult } from './nelder-mead.js';
export { RingBuffer } from './ring-buffer.js';
export { StreamingSeries } from './series.js';
export type { StreamingSeriesOptions, SeriesAggregate } from './series.js';
export { createRandom, randomNormal } from './prng.js';
export type { Random } from './prng.js';
export { AnomalyDetector } from './anomaly-detector.js';
export type { AnomalyDetectorOptions, AnomalyScore } from './anomaly-detector.js';
export { NoveltyScale } from './novelty-scale.js';
export type { NoveltyScaleOptions } from './novelty-scale.js';
export { RangeBreach } from './range-breach.js';
export { ResonanceNovelty } from './resonance-novelty.js';
export type { ResonanceNoveltyOptions } from './resonance-novelty.js';
export { migrationReadinessScore } from './readiness-score.js';
export type {
  ReadinessInputs,
  ReadinessOptions,
  ReadinessScore,
  ReadinessComponent,
} from './readiness-score.js';
export { predictionConfidence } from './prediction-confidence.js';
export type { ConfidenceInputs, ConfidenceOptions, PredictionConfidence } from './prediction-confidence.js';
export { SpikeOutcomeTracker } from './spike-outcome-tracker.js';
export type { SpikeOutcomeOptions, SensitivityDecision, OutcomeCounts } from './spike-outcome-tracker.js';
export { CounterRate, MutationDeltaMonitor } from './change-rate.js';
export type { MutationRateDelta, MutationDeltaOptions } from './change-rate.js';
export { ForecastAccuracy, accuracyOf, ACCURACY_WINDOWS } from './forecast-accuracy.js';
export type {
  AccuracyForecast,
  AccuracyPair,
  AccuracyReport,
  AccuracySummary,
  ForecastAccuracyOptions,
} from './forecast-accuracy.js';
export { growthQuantile, GrowthQuantileTracker, quantilePeak } from './growth-quantile.js';
export type { GrowthQuantileOptions } from './growth-quantile.js';
export { phaseBin, SeasonalProfile, seasonalProfile } from './seasonal-profile.js';
export type { SeasonalProfileOptions } from './seasonal-profile.js';
