/** What one serving instance handles at 100 % utilisation, and where the figure came from. */
export interface CapacityEstimate {
  /** Load (requests/s) one serving instance handles at 100 %. */
  perInstance: number;
  /** `spec`: configured; `measured`: estimated from samples by {@link estimateCapacity}. */
  source: 'spec' | 'measured';
}

/** Options of {@link estimateCapacity}. */
export interface CapacityEstimateOptions {
  /** Smallest serving utilisation (total, in instances at 100 %) a sample is taken from. @default 0.05 */
  minUtilisation?: number;
  /** Samples needed before the first estimate. @default 5 */
  minSamples?: number;
  /** Most recent samples the estimate is the median of. @default 30 */
  window?: number;
  /** A new estimate is reported when it moves by more than this fraction of the last one. @default 0.25 */
  reportChange?: number;
}

/** {@link CapacityEstimateOptions} with defaults applied. */
export type ResolvedCapacityEstimateOptions = Required<CapacityEstimateOptions>;

/** Applies the defaults of {@link CapacityEstimateOptions} once. */
export function resolveCapacityEstimateOptions(
  o: CapacityEstimateOptions = {},
): ResolvedCapacityEstimateOptions {
  return {
    minUtilisation: o.minUtilisation ?? 0.05,
    minSamples: Math.max(1, Math.floor(o.minSamples ?? 5)),
    window: Math.max(1, Math.floor(o.window ?? 30)),
    reportChange: o.reportChange ?? 0.25,
  };
}

/** What the estimate remembers between samples. Plain data. */
export interface CapacityEstimateState {
  /** Recent samples of load ÷ utilisation, oldest first. */
  samples: number[];
  /** The current estimate (absent until known). */
  estimate?: CapacityEstimate;
}

/** Outcome of {@link estimateCapacity}. */
export interface CapacityEstimateResult {
  state: CapacityEstimateState;
  /** Set when the estimate is first known or moved by more than `reportChange`: worth recording. */
  report?: { perInstance: number; before?: number; samples: number[] };
}

/**
 * Capacity per instance = load ÷ serving utilisation: the median of the last `window` loaded samples
 * (from `minSamples` on), kept up to date (a new release may cost more per request). A sample is taken
 * only with load > 0 and utilisation ≥ `minUtilisation`. A configured capacity (`source: 'spec'`) is
 * never replaced. Pure.
 *
 * @param load requests/s through the router at this sample
 * @param utilisation summed CPU utilisation of the serving instances (1 = one instance at 100 %)
 */
export function estimateCapacity(
  o: ResolvedCapacityEstimateOptions,
  s: CapacityEstimateState,
  load: number,
  utilisation: number,
): CapacityEstimateResult {
  if (s.estimate?.source === 'spec' || utilisation < o.minUtilisation || !(load > 0)) return { state: s };
  const samples = [...s.samples, load / utilisation].slice(-o.window);
  if (samples.length < o.minSamples) return { state: { ...s, samples } };
  const sorted = [...samples].sort((a, b) => a - b);
  const perInstance = sorted[Math.floor(sorted.length / 2)] ?? 0;
  const before = s.estimate?.perInstance;
  const state: CapacityEstimateState = { samples, estimate: { perInstance, source: 'measured' } };
  if (before !== undefined && Math.abs(perInstance - before) <= before * o.reportChange) return { state };
  return { state, report: { perInstance, ...(before !== undefined ? { before } : {}), samples: sorted } };
}
