import { UnderstudyError, ErrorCode } from '../errors/index.js';

/** Instance metrics the migration readiness score reads (seed 003). */
export interface ReadinessInputs {
  /** CPU utilisation in percent (0–100; values outside are clamped). */
  cpuUtilization: number;
  /** Memory utilisation in percent (0–100; clamped). */
  memoryUtilization: number;
  /** Disk I/O latency in milliseconds (≥ 0; clamped). */
  diskIoLatencyMs: number;
  /** Historical failure rate in [0, 1] (clamped). */
  historicalFailureRate: number;
  /** Predicted failure probability in [0, 1] (clamped), e.g. from the anomaly detector. */
  predictedFailureProbability: number;
}

/** Options of {@link migrationReadinessScore}. */
export interface ReadinessOptions {
  /** Component weights; the score is normalised by their sum, so it stays in [0, 100]. @default {cpu: 30, memory: 25, diskLatency: 20, failureRate: 15, failureProbability: 10} */
  weights?: Partial<Record<ReadinessComponent, number>>;
  /** CPU percent at which the CPU component is at full weight. @default 100 */
  cpuFullAt?: number;
  /** Memory percent at which the memory component is at full weight. @default 100 */
  memoryFullAt?: number;
  /** Disk latency (ms) at which the latency component is at full weight. @default 100 */
  diskLatencyFullAtMs?: number;
}

/** The five weighted components. */
export type ReadinessComponent = 'cpu' | 'memory' | 'diskLatency' | 'failureRate' | 'failureProbability';

/** The score with its per-component contributions (points out of 100). */
export interface ReadinessScore {
  score: number;
  contributions: Record<ReadinessComponent, number>;
}

const DEFAULT_WEIGHTS: Record<ReadinessComponent, number> = {
  cpu: 30,
  memory: 25,
  diskLatency: 20,
  failureRate: 15,
  failureProbability: 10,
};

const clamp01 = (x: number): number => (x <= 0 ? 0 : x >= 1 ? 1 : x);

/**
 * Migration readiness score in [0, 100] (seed 003): higher means the instance should move to its
 * shadow sooner. Monotone non-decreasing in every input, continuous, bounded.
 *
 * Deviations from the seed's pseudocode, and why:
 * - CPU and memory: the seed adds `x/100 · w` up to 80 % (CPU) or 90 % (memory) and a constant
 *   `0.8 · w` / `0.9 · w` above. That is continuous but flat exactly where migration matters, and
 *   the score can never reach 100. Here the component keeps rising linearly to full weight at
 *   `cpuFullAt` / `memoryFullAt` (100 % by default), identical to the seed below its threshold.
 * - Disk I/O latency: the seed adds `(1 − latency/100 ms) · 20` up to 50 ms — *decreasing* in
 *   latency, and negative beyond 100 ms were the branch reached — then jumps to a constant 14 above
 *   50 ms (a discontinuity of +4 points). Slow disks are a reason to migrate, so here the
 *   component is `min(1, latency / diskLatencyFullAtMs) · w`: increasing, continuous, never
 *   negative, full weight at 100 ms by default (where the seed's own expression hits its bound).
 * - Failure rate and probability: as in the seed (`rate · 15`, `probability · 10`), clamped to
 *   [0, 1] so that a bad input cannot push the score out of range.
 * - Weights: configurable; the sum is normalised to 100 so that any weights keep [0, 100].
 *
 * Thrown when an input or option is not a finite number, or a weight is negative:
 * `UNDERSTUDY_ERR_PREDICT_INPUT`.
 */
export function migrationReadinessScore(
  inputs: ReadinessInputs,
  options: ReadinessOptions = {},
): ReadinessScore {
  const weights = { ...DEFAULT_WEIGHTS, ...options.weights };
  const cpuFull = options.cpuFullAt ?? 100;
  const memFull = options.memoryFullAt ?? 100;
  const latFull = options.diskLatencyFullAtMs ?? 100;
  for (const [k, v] of Object.entries({ ...inputs, cpuFull, memFull, latFull })) {
    if (!Number.isFinite(v))
      throw new UnderstudyError(
        ErrorCode.PredictInput,
        `readiness input ${k} must be a finite number, got ${String(v)}`,
        { details: { field: k } },
      );
  }
  let total = 0;
  for (const [k, w] of Object.entries(weights)) {
    if (!Number.isFinite(w) || w < 0)
      throw new UnderstudyError(
        ErrorCode.PredictInput,
        `readiness weight ${k} must be a finite number ≥ 0, got ${String(w)}`,
        { details: { field: `weights.${k}` } },
      );
    total += w;
  }
  if (!(cpuFull > 0 && memFull > 0 && latFull > 0))
    throw new UnderstudyError(ErrorCode.PredictInput, 'readiness thresholds must be > 0', {
      details: { field: 'thresholds' },
    });
  const parts: Record<ReadinessComponent, number> = {
    cpu: clamp01(inputs.cpuUtilization / cpuFull),
    memory: clamp01(inputs.memoryUtilization / memFull),
    diskLatency: clamp01(inputs.diskIoLatencyMs / latFull),
    failureRate: clamp01(inputs.historicalFailureRate),
    failureProbability: clamp01(inputs.predictedFailureProbability),
  };
  const contributions = {} as Record<ReadinessComponent, number>;
  let score = 0;
  for (const k of Object.keys(parts) as ReadinessComponent[]) {
    const c = total > 0 ? (100 * weights[k] * parts[k]) / total : 0;
    contributions[k] = c;
    score += c;
  }
  return { score: Math.min(100, Math.max(0, score)), contributions };
}
