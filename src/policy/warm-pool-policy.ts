import type { Decision, DecisionForecast } from './decision.js';

/** Options of {@link decideWarmPool}. */
export interface WarmPoolOptions {
  /** Load one instance serves at 100 %. Required. */
  capacityPerInstance: number;
  /** Utilisation the serving set is provisioned for. @default 0.7 */
  targetUtilization?: number;
  /** Fewest echoes kept warm. @default 1 */
  minSize?: number;
  /** Most echoes kept warm. @default 50 */
  maxSize?: number;
  /**
   * Hedge against forecast error (seed 001: a fraction of the predicted peak): the pool also holds
   * this fraction of the instances the predicted peak needs. @default 0.1
   */
  peakFraction?: number;
  /** Below this confidence the pool keeps only the hedge. @default 0.3 */
  minConfidence?: number;
}

/** {@link WarmPoolOptions} with defaults applied. */
export type ResolvedWarmPoolOptions = Required<WarmPoolOptions>;

/** Applies the defaults of {@link WarmPoolOptions} once. */
export function resolveWarmPoolOptions(o: WarmPoolOptions): ResolvedWarmPoolOptions {
  if (!(o.capacityPerInstance > 0)) throw new RangeError('capacityPerInstance must be > 0');
  const minSize = Math.max(0, Math.floor(o.minSize ?? 1));
  return {
    capacityPerInstance: o.capacityPerInstance,
    targetUtilization: o.targetUtilization ?? 0.7,
    minSize,
    maxSize: Math.max(minSize, Math.floor(o.maxSize ?? 50)),
    peakFraction: o.peakFraction ?? 0.1,
    minConfidence: o.minConfidence ?? 0.3,
  };
}

/** What the warm-pool policy sees. */
export interface WarmPoolSignals {
  /** Serving instances (ready plus starting). */
  serving: number;
  /** Echoes in the pool now (ready plus starting). */
  pool: number;
  /** Load observed now. */
  load: number;
  /** The forecast's largest upper bound within a cold start's lead time. */
  peak?: DecisionForecast;
  confidence: number;
  /**
   * An upper quantile of the peak load within a cold start's lead time, learned from the history of
   * growth (see `growthQuantile`); the pool covers it too, whatever the confidence. @default none
   */
  growthPeak?: number;
  /**
   * Serving instances released by a scale-in that the forecast over a cold start still needs
   * (`HorizontalResult.reserve`): the pool keeps at least these, so they return by promotion. @default 0
   */
  reserve?: number;
}

/** Outcome of {@link decideWarmPool}. */
export interface WarmPoolResult {
  /** Echoes to keep warm. */
  desired: number;
  decisions: Decision[];
}

/**
 * Warm-pool size: enough echoes to cover the growth the forecast predicts within a cold start
 * (those scale-outs then promote an echo in seconds instead of starting cold) — or the upper quantile
 * of growth history shows (`growthPeak`), when larger — plus a hedge of `peakFraction` of the
 * predicted peak's instances. Pure.
 */
export function decideWarmPool(
  o: ResolvedWarmPoolOptions,
  signals: WarmPoolSignals,
  now: number,
): WarmPoolResult {
  const per = o.capacityPerInstance * o.targetUtilization;
  const confident = signals.peak !== undefined && signals.confidence >= o.minConfidence;
  const peakLoad = Math.max(
    signals.load,
    confident && signals.peak ? signals.peak.upper : 0,
    signals.growthPeak ?? 0,
  );
  const peakCount = Math.ceil(peakLoad / per - 1e-9);
  const growth = Math.max(0, peakCount - signals.serving);
  const hedge = Math.ceil(o.peakFraction * peakCount - 1e-9);
  const reserve = Math.max(0, Math.floor(signals.reserve ?? 0));
  const desired = Math.min(o.maxSize, Math.max(o.minSize, growth + hedge, reserve));
  if (desired === signals.pool) return { desired, decisions: [] };
  const inputs: Decision['inputs'] = {
    load: signals.load,
    confidence: signals.confidence,
    predictive: peakCount,
  };
  if (signals.peak) inputs.forecast = signals.peak;
  const growthNote =
    signals.growthPeak !== undefined && signals.growthPeak >= peakLoad
      ? `, peak ${Math.round(signals.growthPeak)} from the growth quantile`
      : '';
  const reserveNote = reserve > growth + hedge ? `; ${reserve} released but needed within a cold start` : '';
  const reason = `predicted peak needs ${peakCount} serving (${signals.serving} now): ${growth} for growth + ${hedge} hedge (${Math.round(o.peakFraction * 100)} % of peak)${growthNote}${reserveNote}${confident ? '' : ', low confidence: load only'}`;
  return {
    desired,
    decisions: [
      { kind: 'pool-resize', at: now, from: signals.pool, to: desired, applied: true, reason, inputs },
    ],
  };
}

/** How a scale-out of `need` instances is served: promoted warm echoes first, then cold starts. */
export interface ScaleOutPlan {
  promote: number;
  cold: number;
}

/** Splits a scale-out between the ready echoes of the warm pool and cold starts. */
export function planScaleOut(need: number, readyEchoes: number): ScaleOutPlan {
  const n = Math.max(0, Math.floor(need));
  const promote = Math.min(n, Math.max(0, Math.floor(readyEchoes)));
  return { promote, cold: n - promote };
}
