import type { ForecastPoint } from './forecaster.js';

/** What {@link predictionConfidence} weighs. */
export interface ConfidenceInputs {
  /** The forecast step the decision rests on. */
  forecast: ForecastPoint;
  /**
   * Recent accuracy in [0, 1] (e.g. the hit rate of {@link SpikeOutcomeTracker}, or
   * 1 − normalised recent error); omitted when there is no track record yet.
   */
  recentAccuracy?: number;
  /** Load measured on the shadow (same unit as `liveLoad`), when a shadow exists. */
  shadowLoad?: number;
  /** Load measured on the live instance. */
  liveLoad?: number;
}

/** Options of {@link predictionConfidence}. */
export interface ConfidenceOptions {
  /** Relative interval width (width / |mean|) at which the width component is ½. @default 0.5 */
  halfWidth?: number;
  /** Relative shadow–live load delta at which the shadow component is ½. @default 0.25 */
  halfDelta?: number;
  /** Accuracy assumed without a track record. @default 0.5 */
  priorAccuracy?: number;
}

/** Confidence in [0, 1] with the components it came from. */
export interface PredictionConfidence {
  confidence: number;
  components: { width: number; accuracy: number; shadow?: number };
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

/**
 * Prediction confidence (seed 004): a weighted geometric mean of three components, each in [0, 1]:
 * - width: narrow intervals relative to the forecast level mean more confidence, `1/(1 + w/halfWidth)`;
 * - accuracy: the recent accuracy of predictions like this one (prior ½ without a record);
 * - shadow (only when both loads are given): how strongly the shadow, which runs the mirrored
 *   traffic, corroborates the predicted direction: a shadow running hotter than live when a rise
 *   is forecast (or cooler when a fall is) raises confidence, the opposite lowers it.
 * A geometric mean, so one near-zero component pulls confidence down. Never NaN.
 */
export function predictionConfidence(
  inputs: ConfidenceInputs,
  options: ConfidenceOptions = {},
): PredictionConfidence {
  const halfWidth = options.halfWidth ?? 0.5;
  const halfDelta = options.halfDelta ?? 0.25;
  const { mean, lower, upper } = inputs.forecast;
  const level = Math.max(Math.abs(mean), 1e-9);
  const rel = Math.max(0, upper - lower) / level;
  const width = clamp01(Number.isFinite(rel) ? 1 / (1 + rel / halfWidth) : 0);
  const accuracy = clamp01(inputs.recentAccuracy ?? options.priorAccuracy ?? 0.5);
  let shadow: number | undefined;
  if (
    inputs.shadowLoad !== undefined &&
    inputs.liveLoad !== undefined &&
    Number.isFinite(inputs.shadowLoad) &&
    Number.isFinite(inputs.liveLoad)
  ) {
    const live = inputs.liveLoad;
    const delta = (inputs.shadowLoad - live) / Math.max(Math.abs(live), 1e-9);
    const direction = mean >= live ? 1 : -1;
    // Logistic in the signed, direction-aligned delta: 0.5 with no delta.
    shadow = clamp01(1 / (1 + Math.exp((-direction * delta * Math.log(3)) / halfDelta)));
  }
  const parts: [number, number][] = [
    [width, 1],
    [accuracy, 1],
  ];
  if (shadow !== undefined) parts.push([shadow, 1]);
  let logSum = 0;
  let wSum = 0;
  for (const [v, w] of parts) {
    logSum += w * Math.log(Math.max(v, 1e-6));
    wSum += w;
  }
  const confidence = clamp01(Math.exp(logSum / wSum));
  return { confidence, components: shadow === undefined ? { width, accuracy } : { width, accuracy, shadow } };
}
