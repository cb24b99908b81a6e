import { derivedGuards } from './derived-guards.js';
import type { ScalingOptions } from './scaling-step.js';

/**
 * The fields of a service spec that scaling reads — structurally a subset of the config's
 * `ServiceSpec` (policy does not depend on config), so a parsed spec is passed as it is.
 */
export interface ScalingSpec {
  scaling: {
    min: number;
    max: number;
    /** Target utilisation of a serving instance. */
    target: number;
    policy: 'predictive' | 'reactive' | 'forecast-only';
    /** Requests/s one instance handles at 100 %; unset: measured. */
    capacity?: number | undefined;
    /** Forecast step (ms). */
    step: number;
    /** Time between decisions (ms). */
    interval: number;
    /** Cold-start lead time (ms). */
    coldStart: number;
    /** Scale-in stabilisation window (ms). */
    stabilization: number;
  };
  echo: { count: number };
  shadow: { count: number; onForecast: boolean; deltaThreshold: number };
}

/** Longest lead time of a warm promotion (ms): a promotion is a router change, never slower than a cold start. */
export const MAX_WARM_LEAD_MS = 1000;
/** Confidence no forecast reaches: with policy `reactive` the forecast never counts. */
const NEVER_CONFIDENT = 2;

/**
 * The scaling options of a service spec, for the live autoscaler and the simulator alike: the
 * predictive scaler's (target, forecast step, decision interval, cold and warm leads, scale-in
 * stabilisation, the policy as a mode, the {@link derivedGuards}, a warm pool between `echo.count`
 * and `max − min`), the configured capacity, the pool's stabilisation window (the scale-in one), the
 * spec's echo and shadow counts as floors, spike shadows and the shadow threshold. Pure.
 */
export function scalingOptionsFromSpec(spec: ScalingSpec): ScalingOptions {
  const s = spec.scaling;
  return {
    scaler: {
      // Each decision passes the current capacity estimate: this one only has to be valid.
      capacityPerInstance: s.capacity ?? 1,
      targetUtilization: s.target,
      stepMs: s.step,
      decisionIntervalMs: s.interval,
      coldLeadMs: s.coldStart,
      warmLeadMs: Math.min(s.coldStart, MAX_WARM_LEAD_MS),
      scaleInStabilizationMs: s.stabilization,
      // `reactive`: the forecast is never confident enough to count.
      ...(s.policy === 'reactive' ? { minConfidence: NEVER_CONFIDENT } : {}),
      mode: s.policy === 'forecast-only' ? 'forecast-only' : 'act',
      guards: derivedGuards(s),
      warmPool: { minSize: spec.echo.count, maxSize: Math.max(spec.echo.count, s.max - s.min) },
    },
    ...(s.capacity !== undefined ? { capacity: s.capacity } : {}),
    decisionIntervalMs: s.interval,
    poolStabilizationMs: s.stabilization,
    minPool: spec.echo.count,
    minShadows: spec.shadow.count,
    spikeShadows: spec.shadow.onForecast,
    shadowDeltaThreshold: spec.shadow.deltaThreshold,
  };
}
