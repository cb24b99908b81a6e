import { estimateCapacity, resolveCapacityEstimateOptions } from './capacity-estimate.js';
import type {
  CapacityEstimateOptions,
  CapacityEstimateState,
  ResolvedCapacityEstimateOptions,
} from './capacity-estimate.js';
import type { Decision, DecisionForecast } from './decision.js';
import { resolveHorizontalPolicyOptions } from './horizontal-policy.js';
import { stabilisePool } from './pool-window.js';
import type { PoolRecommendation } from './pool-window.js';
import { DEFAULT_DECISION_INTERVAL_MS, PredictiveScaler } from './predictive-scaler.js';
import type { PredictiveScalerOptions, ScalerDecision } from './predictive-scaler.js';
import { initialShadowAlarmState, smoothShadowSignal, stepShadowAlarm } from './shadow-hysteresis.js';
import type { ShadowAlarmState, ShadowSignal } from './shadow-hysteresis.js';
import { spikeShadow } from './spike-shadow.js';

/** Options of the scaling step ({@link scalingStep}): the predictive scaler's and what is around it. */
export interface ScalingOptions {
  /** The predictive scaler's options (its `capacityPerInstance` only has to be valid: each decision passes the current estimate). */
  scaler: PredictiveScalerOptions;
  /** Configured requests/s one serving instance handles at 100 %. @default unset: estimated from CPU samples */
  capacity?: number;
  /** Time between two decisions (ms). @default `scaler.decisionIntervalMs` (15000) */
  decisionIntervalMs?: number;
  /** The warm pool's stabilisation window (ms), see {@link stabilisePool}. @default the scaler's `scaleInStabilizationMs` (300000) */
  poolStabilizationMs?: number;
  /** Fewest echoes desired (the spec's `echo.count`). @default 0 */
  minPool?: number;
  /** Fewest shadows desired (the spec's `shadow.count`). @default 0 */
  minShadows?: number;
  /** Seed 004: a shadow while the forecast's upper bound exceeds the serving set at target. @default false */
  spikeShadows?: boolean;
  /** Threshold of the shadow–live delta (see {@link stepShadowAlarm}). @default 0.25 */
  shadowDeltaThreshold?: number;
  /** Fraction of the threshold below which the shadow alarm clears. @default 0.8 */
  shadowClearFraction?: number;
  /** Samples in a row beyond the threshold before the shadow alarm changes. @default 3 */
  shadowStreak?: number;
  /** Weight of a new sample in the smoothed shadow signal. @default 0.3 */
  shadowAlpha?: number;
  /** At or above this utilisation of its own limit, a shadow under-reports: its load is not used for confidence. @default 0.9 */
  shadowSaturation?: number;
  /** How an unset capacity is estimated. @default {} */
  capacityEstimate?: CapacityEstimateOptions;
}

/** {@link ScalingOptions} with defaults applied. */
export interface ResolvedScalingOptions {
  scaler: PredictiveScalerOptions;
  capacity: number | undefined;
  decisionIntervalMs: number;
  poolStabilizationMs: number;
  minPool: number;
  minShadows: number;
  spikeShadows: boolean;
  /** The scaler's resolved target utilisation (for the spike-shadow rule). */
  targetUtilization: number;
  shadowDeltaThreshold: number;
  shadowClearFraction: number;
  shadowStreak: number;
  shadowAlpha: number;
  shadowSaturation: number;
  capacityEstimate: ResolvedCapacityEstimateOptions;
}

/** Applies the defaults of {@link ScalingOptions} once (throws RangeError on invalid scaler options). */
export function resolveScalingOptions(o: ScalingOptions): ResolvedScalingOptions {
  const h = resolveHorizontalPolicyOptions(o.scaler);
  return {
    scaler: o.scaler,
    capacity: o.capacity,
    decisionIntervalMs: o.decisionIntervalMs ?? o.scaler.decisionIntervalMs ?? DEFAULT_DECISION_INTERVAL_MS,
    poolStabilizationMs: o.poolStabilizationMs ?? h.scaleInStabilizationMs,
    minPool: Math.max(0, Math.floor(o.minPool ?? 0)),
    minShadows: Math.max(0, Math.floor(o.minShadows ?? 0)),
    spikeShadows: o.spikeShadows ?? false,
    targetUtilization: h.targetUtilization,
    shadowDeltaThreshold: o.shadowDeltaThreshold ?? 0.25,
    shadowClearFraction: o.shadowClearFraction ?? 0.8,
    shadowStreak: Math.max(1, Math.floor(o.shadowStreak ?? 3)),
    shadowAlpha: o.shadowAlpha ?? 0.3,
    shadowSaturation: o.shadowSaturation ?? 0.9,
    capacityEstimate: resolveCapacityEstimateOptions(o.capacityEstimate),
  };
}

/**
 * One service's scaling policy: its resolved options and its {@link PredictiveScaler}. The scaler holds
 * the forecaster's model, an object as every forecaster of `predict/` is; everything else the step
 * remembers is the plain {@link ScalingState}.
 */
export interface ScalingPolicy {
  readonly options: ResolvedScalingOptions;
  readonly scaler: PredictiveScaler;
}

/** A policy with a fresh scaler (no load seen yet). */
export function createScalingPolicy(options: ResolvedScalingOptions): ScalingPolicy {
  return { options, scaler: new PredictiveScaler(options.scaler) };
}

/** Serving instances, echoes and shadows a service should run (the control plane's desired counts). */
export interface ScalingCounts {
  serving: number;
  echoes: number;
  shadows: number;
}

/** The last decision reported (a held decision is reported once, not at every step it stays held). */
export interface LastScalingDecision {
  at: number;
  kind: string;
  from: number;
  to: number;
  reason: string;
  applied: boolean;
}

/** What the scaling step remembers between calls. Plain data; treat as immutable. */
export interface ScalingState {
  capacity: CapacityEstimateState;
  /** The smoothed shadow signal (absent without a running shadow). */
  shadow?: ShadowSignal;
  shadowAlarm: ShadowAlarmState;
  /** Warm-pool recommendations within the stabilisation window. */
  poolWindow: PoolRecommendation[];
  /** No decision before this time (ms). */
  nextDecisionAt: number;
  /** Forecast and confidence of the last decision. */
  forecast?: DecisionForecast;
  confidence?: number;
  lastDecision?: LastScalingDecision;
}

/** The state before the first step: a configured capacity is known, nothing else. */
export function initialScalingState(o: ResolvedScalingOptions): ScalingState {
  return {
    capacity: {
      samples: [],
      ...(o.capacity !== undefined ? { estimate: { perInstance: o.capacity, source: 'spec' as const } } : {}),
    },
    shadowAlarm: initialShadowAlarmState(),
    poolWindow: [],
    nextDecisionAt: Number.NEGATIVE_INFINITY,
  };
}

/** What the executor (the live autoscaler or the simulator) observed at one step. */
export interface ScalingObservation {
  /** Load since the previous step (requests/s). */
  load: number;
  /** Serving instances (ready plus starting). */
  serving: number;
  /** Echoes of the warm pool (ready plus starting). */
  pool: number;
  /** Echoes of the pool ready to promote. */
  poolReady: number;
  /** The desired counts in force (what the last decision set, or the spec's). */
  desired: ScalingCounts;
  /** A CPU sample (the live loop takes one at most once a second; the simulator none). */
  cpu?: {
    /** Summed CPU utilisation of the serving instances (1 = one instance at 100 %). */
    servingUtilisation: number;
    /** The raw shadow signal of this sample (absent without a running shadow). */
    shadow?: ShadowSignal;
    /** The request-rate delta of this sample, attached to the smoothed signal. */
    rate?: ShadowSignal['rate'];
  };
  /** A failover of the service is under way: observe, but decide nothing. @default false */
  busy?: boolean;
}

/** One thing the step reports, in order: a policy decision, or an observation worth recording. */
export type ScalingRecord =
  | { type: 'decision'; decision: Decision; confidence: number }
  | { type: 'capacity'; at: number; perInstance: number; before?: number; samples: number[] }
  | { type: 'shadow-alarm'; at: number; alarm: boolean; signal: ShadowSignal; threshold: number }
  | {
      type: 'spike-shadow';
      at: number;
      change: 'shadow-create' | 'shadow-retire';
      forecast: DecisionForecast;
      serving: number;
      /** Requests/s one serving instance handles at the target utilisation. */
      perInstanceAtTarget: number;
      /** Requests/s the serving set handles at the target utilisation. */
      capacityAtTarget: number;
    };

/** What {@link scalingStep} decided, when a decision was due. */
export interface ScalingDecision {
  /** The desired counts from now on. */
  counts: ScalingCounts;
  /** Whether to act: the counts differ from those in force, or the serving set from `counts.serving`. */
  act: boolean;
  /** The predictive scaler's raw decision (inputs, reason). */
  scaler: ScalerDecision;
}

/** Outcome of {@link scalingStep}. */
export interface ScalingStepResult {
  state: ScalingState;
  /** What to record, in order. */
  records: ScalingRecord[];
  /** Set when a decision was due (a capacity is known, the interval has passed, not busy). */
  decision?: ScalingDecision;
}

/**
 * A CPU sample: the smoothed shadow signal (the latest rate attached), its alarm, the capacity estimate.
 * Appends what is worth recording to `records`.
 */
function cpuSample(
  o: ResolvedScalingOptions,
  state: ScalingState,
  cpu: NonNullable<ScalingObservation['cpu']>,
  load: number,
  nowMs: number,
  records: ScalingRecord[],
): ScalingState {
  const smoothed = smoothShadowSignal(state.shadow, cpu.shadow, o.shadowAlpha);
  const shadow = smoothed && cpu.rate ? { ...smoothed, rate: cpu.rate } : smoothed;
  const { shadow: _previous, ...rest } = state;
  let s: ScalingState = shadow ? { ...rest, shadow } : rest;
  if (shadow) {
    const alarm = stepShadowAlarm(
      { threshold: o.shadowDeltaThreshold, clearFraction: o.shadowClearFraction, streak: o.shadowStreak },
      s.shadowAlarm,
      shadow,
    );
    s = { ...s, shadowAlarm: alarm.state };
    if (alarm.changed !== undefined)
      records.push({
        type: 'shadow-alarm',
        at: nowMs,
        alarm: alarm.changed,
        signal: shadow,
        threshold: o.shadowDeltaThreshold,
      });
  }
  const c = estimateCapacity(o.capacityEstimate, s.capacity, load, cpu.servingUtilisation);
  if (c.report) records.push({ type: 'capacity', at: nowMs, ...c.report });
  return { ...s, capacity: c.state };
}

/**
 * One step of a service's scaling policy — the one entry point the live autoscaler and the simulator
 * both call with what they observed: a CPU sample (if any) updates the smoothed shadow signal, its
 * alarm (hysteresis) and the capacity estimate; the load is fed to the forecaster; and, when a decision
 * is due, the predictive scaler decides the serving count and pool, the spike-shadow rule the shadows,
 * and the pool's stabilisation window holds the pool up. No clock, no I/O: deterministic for its inputs
 * (and the scaler's forecaster, which it updates).
 */
export function scalingStep(
  policy: ScalingPolicy,
  state: ScalingState,
  obs: ScalingObservation,
  nowMs: number,
): ScalingStepResult {
  const o = policy.options;
  const records: ScalingRecord[] = [];
  let s = obs.cpu ? cpuSample(o, state, obs.cpu, obs.load, nowMs, records) : state;
  const scaler = policy.scaler;
  scaler.observe(nowMs, obs.load);
  const capacity = s.capacity.estimate?.perInstance;
  if (capacity === undefined || nowMs < s.nextDecisionAt || obs.busy === true) return { state: s, records };
  s = { ...s, nextDecisionAt: nowMs + o.decisionIntervalMs };
  const d = scaler.decide(nowMs, {
    serving: obs.serving,
    pool: obs.pool,
    poolReady: obs.poolReady,
    load: obs.load,
    capacityPerInstance: capacity,
    // The shadow's view of the load: live load scaled by the shadow–live delta (not while the shadow is
    // at its own limit: then it under-reports).
    ...(s.shadow && s.shadow.shadowUtilisation < o.shadowSaturation
      ? { shadowLoad: obs.load * (1 + s.shadow.delta) }
      : {}),
  });
  const { forecast: _f, ...withoutForecast } = s;
  s = { ...withoutForecast, ...(d.forecast ? { forecast: d.forecast } : {}), confidence: d.confidence };
  const report = (pd: Decision): void => {
    const last = s.lastDecision;
    const same = last?.kind === pd.kind && last.from === pd.from && last.to === pd.to;
    if (!pd.applied && same && !last.applied) return;
    s = {
      ...s,
      lastDecision: {
        at: pd.at,
        kind: pd.kind,
        from: pd.from,
        to: pd.to,
        reason: pd.reason,
        applied: pd.applied,
      },
    };
    records.push({ type: 'decision', decision: pd, confidence: d.confidence });
  };
  for (const pd of d.decisions) if (pd.kind !== 'pool-resize') report(pd);
  let spikeShadows = 0;
  if (o.spikeShadows) {
    const spike = spikeShadow(
      d.forecast,
      obs.serving,
      capacity,
      o.targetUtilization,
      obs.desired.shadows > o.minShadows,
    );
    spikeShadows = spike.shadows;
    if (spike.change && d.forecast)
      records.push({
        type: 'spike-shadow',
        at: nowMs,
        change: spike.change,
        forecast: d.forecast,
        serving: obs.serving,
        perInstanceAtTarget: spike.perInstanceAtTarget,
        capacityAtTarget: spike.capacityAtTarget,
      });
  }
  const pool = stabilisePool(s.poolWindow, nowMs, d.pool, o.poolStabilizationMs);
  s = { ...s, poolWindow: pool.window };
  const counts: ScalingCounts = {
    serving: d.serving,
    echoes: Math.max(o.minPool, pool.size),
    shadows: Math.max(o.minShadows, spikeShadows),
  };
  const poolDecision = d.decisions.find((pd) => pd.kind === 'pool-resize');
  if (poolDecision && counts.echoes !== obs.desired.echoes)
    report({ ...poolDecision, from: obs.desired.echoes, to: counts.echoes });
  const act =
    counts.serving !== obs.desired.serving ||
    counts.echoes !== obs.desired.echoes ||
    counts.shadows !== obs.desired.shadows ||
    counts.serving !== obs.serving;
  return { state: s, records, decision: { counts, act, scaler: d } };
}
