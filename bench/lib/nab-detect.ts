// Runs Understudy's anomaly detector over one NAB file, exactly as a live stream would see it:
// one point at a time, no look-ahead. NAB hands every detector the file's probationary length
// (15 % of the rows, at most 750), which the detector uses as its learning period.
import { AnomalyDetector } from '../../src/predict/index.js';
import type { AnomalyDetectorOptions } from '../../src/predict/index.js';
import { probationaryLength } from './nab-scorer.js';

/** Scores one series; returns the scores and the detector's own time in ms. */
export function detectSeries(
  timestamps: readonly number[],
  values: readonly number[],
  options: AnomalyDetectorOptions = {},
): { scores: number[]; ms: number } {
  const t0 = performance.now();
  const d = new AnomalyDetector({ learningPoints: probationaryLength(values.length), ...options });
  const scores = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) scores[i] = d.update(timestamps[i]!, values[i]!).score;
  return { scores, ms: performance.now() - t0 };
}
