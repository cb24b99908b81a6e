import type { Decision, DecisionForecast } from './decision.js';
import {
  checkGuards,
  clampCount,
  fmtMs,
  initialGuardState,
  recordAction,
  resolveGuardOptions,
} from './guards.js';
import type { GuardOptions, GuardState, ResolvedGuardOptions } from './guards.js';

/** `act` changes the serving set; `forecast-only` records what it would do without acting (AWS's dry run). */
export type PolicyMode = 'act' | 'forecast-only';

/** Options of {@link decideHorizontal}. */
export interface HorizontalPolicyOptions {
  /** Load one instance serves at 100 % (requests/s, or the metric's unit). Required. */
  capacityPerInstance: number;
  /** Utilisation the policy provisions for. @default 0.7 */
  targetUtilization?: number;
  /**
   * Utilisation the forecast's upper bound may reach: the forecast mean is provisioned at the
   * target utilisation, its upper bound at this. The default 1 is where load meets capacity — the
   * SLO boundary — so the interval's upper quantile is sized against what violates the SLO, and
   * the interval and the target's headroom are not counted twice. @default 1
   */
  upperUtilization?: number;
  /** Reactive rule tolerance, as the HPA's: no change while |utilisation/target − 1| ≤ tolerance. @default 0.1 */
  tolerance?: number;
  /** Below this confidence the forecast is ignored and only the reactive rule counts. @default 0.5 */
  minConfidence?: number;
  /**
   * Without a confident forecast, a scale-in goes only down to the largest reactive recommendation
   * within this window (rolling max, as the HPA's). With one, the forecast stabilises scale-in
   * instead: it goes only down to what the forecast's upper bound over the re-provisioning horizon
   * needs (see {@link HorizontalSignals.holdForecast}). @default 300000
   */
  scaleInStabilizationMs?: number;
  /**
   * Smallest scale-out, as a fraction of the current count (at least one instance): a ramp is
   * climbed in a few steps rather than one instance at a time. @default 0.1
   */
  scaleOutStep?: number;
  /** A scale-in happens only when it removes more than this fraction of the current count. @default 0.1 */
  scaleInTolerance?: number;
  /**
   * Without a confident forecast, a scale-in may still go below the stabilisation window's rolling
   * max, down to what the forecast's upper bound over the re-provisioning horizon needs
   * (`holdForecast`): an unconfident forecast's interval is wide, so its upper bound is itself the
   * guard, and the window still caps the hold. Chosen on the scaling benchmark's tuning traces
   * (docs/scaling.md). @default true
   */
  unconfidentHold?: boolean;
  /** @default 'act' */
  mode?: PolicyMode;
  guards?: GuardOptions;
}

/** {@link HorizontalPolicyOptions} with defaults applied. */
export interface ResolvedHorizontalPolicyOptions {
  capacityPerInstance: number;
  targetUtilization: number;
  upperUtilization: number;
  tolerance: number;
  minConfidence: number;
  scaleInStabilizationMs: number;
  scaleOutStep: number;
  scaleInTolerance: number;
  unconfidentHold: boolean;
  mode: PolicyMode;
  guards: ResolvedGuardOptions;
}

/** Applies the defaults of {@link HorizontalPolicyOptions} once. */
export function resolveHorizontalPolicyOptions(o: HorizontalPolicyOptions): ResolvedHorizontalPolicyOptions {
  if (!(o.capacityPerInstance > 0)) throw new RangeError('capacityPerInstance must be > 0');
  const targetUtilization = o.targetUtilization ?? 0.7;
  if (!(targetUtilization > 0 && targetUtilization <= 1))
    throw new RangeError('targetUtilization must be in (0, 1]');
  return {
    capacityPerInstance: o.capacityPerInstance,
    targetUtilization,
    upperUtilization: Math.max(targetUtilization, Math.min(1, o.upperUtilization ?? 1)),
    tolerance: o.tolerance ?? 0.1,
    minConfidence: o.minConfidence ?? 0.5,
    scaleInStabilizationMs: o.scaleInStabilizationMs ?? 300_000,
    scaleOutStep: o.scaleOutStep ?? 0.1,
    scaleInTolerance: o.scaleInTolerance ?? 0.1,
    unconfidentHold: o.unconfidentHold ?? true,
    mode: o.mode ?? 'act',
    guards: resolveGuardOptions(o.guards),
  };
}

/** What the horizontal policy sees at a decision. */
export interface HorizontalSignals {
  /** Serving instances now (ready plus starting). */
  current: number;
  /** Load observed now. */
  load: number;
  /**
   * The forecast at the provisioning lead time (for several steps, the step with the largest
   * upper bound). Omitted when there is none yet.
   */
  forecast?: DecisionForecast;
  /** Prediction confidence in [0, 1]. */
  confidence: number;
  /**
   * The forecast with the largest upper bound over the re-provisioning horizon — the time to get an
   * instance back once released (a cold start plus a decision interval). While confident, a
   * scale-in keeps what this forecast needs instead of waiting out the stabilisation window: the
   * interval already covers the noise the window damps, and capacity needed before it could be
   * restored is not released. Omitted: only the forecast at the lead time (already part of the
   * recommendation) holds a scale-in.
   */
  holdForecast?: DecisionForecast;
  /**
   * Instances the learned seasonal (daily) profile needs over the re-provisioning horizon: a
   * scale-in goes no lower (a scale-out ignores it). @default none
   */
  seasonalHold?: number;
  /**
   * The forecast over the cold re-provisioning horizon when `holdForecast` is a shorter one (the
   * warm lead: released instances go back into the warm pool and return in seconds). What it needs
   * beyond the serving set is reported as {@link HorizontalResult.reserve}: echoes to keep. @default none
   */
  reserveForecast?: DecisionForecast;
  /**
   * Without a confident forecast, the stabilisation window holds its instances as warm echoes
   * instead of serving ones: a scale-in goes down to what the reactive rule asks for now, and what
   * the window's rolling max keeps beyond that is reported as {@link HorizontalResult.reserve}
   * (echoes to keep). For a caller whose warm pool has a ready echo: a re-rise within the window is
   * then met by a promotion in seconds, and the held instances cost an echo's size, not a serving
   * instance's. @default false
   */
  windowAsEchoes?: boolean;
}

/** What the horizontal policy remembers. Plain data; treat as immutable. */
export interface HorizontalState {
  /** Recent reactive recommendations, oldest first (the scale-in stabilisation window). */
  recommendations: readonly { at: number; count: number }[];
  guards: GuardState;
}

/** A fresh {@link HorizontalState}. */
export function initialHorizontalState(): HorizontalState {
  return { recommendations: [], guards: initialGuardState() };
}

/** Outcome of {@link decideHorizontal}. */
export interface HorizontalResult {
  /** Serving count the caller should run (equals `signals.current` when nothing is applied). */
  desired: number;
  state: HorizontalState;
  /** Zero or one decision. */
  decisions: Decision[];
  /** Count the reactive rule asked for. */
  reactive: number;
  /** Count the predictive rule asked for (absent when the forecast was not used). */
  predictive?: number;
  /** Count the forecast over the re-provisioning horizon holds a scale-in at (absent when not used). */
  hold?: number;
  /** Instances `reserveForecast` needs beyond `desired`: to keep as warm echoes. 0 without it. */
  reserve: number;
}

/** Instances that serve `load` at utilisation `u`. */
function countFor(o: ResolvedHorizontalPolicyOptions, load: number, u: number): number {
  return Math.ceil(Math.max(0, load) / (o.capacityPerInstance * u) - 1e-9);
}

/**
 * Instances the reactive rule asks for (the HPA's rule on the load): enough to serve `load` at
 * the target utilisation, or `current` while the utilisation is within the tolerance of the target.
 */
export function reactiveCount(o: ResolvedHorizontalPolicyOptions, load: number, current: number): number {
  if (current > 0) {
    const ratio = Math.max(0, load) / (current * o.capacityPerInstance * o.targetUtilization);
    if (Math.abs(ratio - 1) <= o.tolerance) return current;
  }
  return countFor(o, load, o.targetUtilization);
}

/**
 * Instances the predictive rule asks for: the forecast mean at the target utilisation (with
 * `current`, the reactive rule's tolerance applies to it too: no change while the mean's
 * utilisation of `current` instances is within the tolerance of the target) and the upper bound at
 * `upperUtilization`.
 */
export function predictiveCount(
  o: ResolvedHorizontalPolicyOptions,
  forecast: DecisionForecast,
  current?: number,
): number {
  return Math.max(
    current === undefined
      ? countFor(o, forecast.mean, o.targetUtilization)
      : reactiveCount(o, forecast.mean, current),
    countFor(o, forecast.upper, o.upperUtilization),
  );
}

/**
 * The horizontal scaling policy: desired = max(reactive, predictive), where predictive serves the
 * forecast (mean at the target utilisation, upper bound at `upperUtilization`) within the lead time,
 * used only when confidence is at least `minConfidence`. Scale-out is immediate (at least
 * `scaleOutStep`). Scale-in, while confident, goes only down to what the forecast over the
 * re-provisioning horizon needs (`holdForecast`); otherwise only down to the largest reactive
 * recommendation of the stabilisation window (the HPA's rule). Changes within the tolerance are
 * skipped. Then bounds and guards. Pure.
 */
export function decideHorizontal(
  o: ResolvedHorizontalPolicyOptions,
  state: HorizontalState,
  signals: HorizontalSignals,
  now: number,
): HorizontalResult {
  const g = o.guards;
  const reactive = reactiveCount(o, signals.load, signals.current);
  const confident = signals.forecast !== undefined && signals.confidence >= o.minConfidence;
  const current = signals.current;
  const predictive =
    confident && signals.forecast ? predictiveCount(o, signals.forecast, current) : undefined;
  const raw = clampCount(g, Math.max(reactive, predictive ?? 0));
  const cutoff = now - o.scaleInStabilizationMs;
  // The window keeps the reactive recommendations (observed load is what flaps). It is always
  // kept up to date, so that it is ready when confidence drops.
  const recommendations = [
    ...state.recommendations.filter((r) => r.at > cutoff),
    { at: now, count: clampCount(g, reactive) },
  ];
  // What a scale-in may not go below: with a confident forecast, what it needs over the
  // re-provisioning horizon; without, the rolling max of the window.
  let floor = raw;
  let hold: number | undefined;
  let reserveFloor = 0;
  const rf = signals.reserveForecast;
  if (confident) {
    const h = signals.holdForecast;
    if (h) {
      hold = clampCount(g, predictiveCount(o, h, current));
      floor = Math.max(floor, hold);
    }
    if (rf) reserveFloor = clampCount(g, predictiveCount(o, rf, current));
  } else {
    let window = floor;
    for (const r of recommendations) window = Math.max(window, r.count);
    const h = signals.holdForecast;
    if (signals.windowAsEchoes === true) reserveFloor = window;
    else if (o.unconfidentHold && h) {
      hold = clampCount(g, predictiveCount(o, h, current));
      floor = Math.max(floor, Math.min(window, hold));
      if (rf) reserveFloor = Math.min(window, clampCount(g, predictiveCount(o, rf, current)));
    } else floor = window;
  }
  if (signals.seasonalHold !== undefined) floor = Math.max(floor, clampCount(g, signals.seasonalHold));
  let target: number;
  if (raw > current)
    target = clampCount(g, Math.max(raw, current + Math.max(1, Math.ceil(current * o.scaleOutStep - 1e-9))));
  else {
    target = clampCount(g, Math.min(current, floor));
    // Not worth an action: a scale-in of at most the tolerance (bound corrections always go ahead).
    if (target < current && current - target <= current * o.scaleInTolerance && current <= g.maxCount)
      target = current;
  }
  const next: HorizontalState = { recommendations, guards: state.guards };
  const counts = {
    reserve: Math.max(0, reserveFloor - current),
    reactive,
    ...(predictive !== undefined ? { predictive } : {}),
    ...(hold !== undefined ? { hold } : {}),
  };
  if (target === current) return { desired: current, state: next, decisions: [], ...counts };

  const inputs: Decision['inputs'] = { load: signals.load, confidence: signals.confidence, reactive };
  if (signals.forecast) inputs.forecast = signals.forecast;
  if (predictive !== undefined) inputs.predictive = predictive;
  if (hold !== undefined) inputs.hold = hold;
  const unit = `${fmtNum(o.capacityPerInstance * o.targetUtilization)}/instance`;
  let why: string;
  if (target > current) {
    why =
      predictive !== undefined && predictive > reactive
        ? `forecast ${fmtNum(signals.forecast!.mean)} (upper ${fmtNum(signals.forecast!.upper)}) within ${fmtMs(signals.forecast!.horizonMs)} needs ${predictive} at ${unit} (reactive ${reactive}, confidence ${signals.confidence.toFixed(2)})`
        : `load ${fmtNum(signals.load)} needs ${reactive} at ${unit}${confident ? '' : signals.forecast ? ` (confidence ${signals.confidence.toFixed(2)} < ${o.minConfidence}: reactive only)` : ' (no forecast yet: reactive only)'}`;
  } else {
    const h = signals.holdForecast;
    why =
      hold !== undefined && h
        ? `forecast upper ${fmtNum(h.upper)} within ${fmtMs(h.horizonMs)} needs ${hold}${target > raw ? `: held at ${target}` : ''}${reserveFloor > target ? `; ${reserveFloor - target} kept warm for ${fmtMs(signals.reserveForecast!.horizonMs)}` : ''} (reactive ${reactive}${predictive !== undefined ? `, predictive ${predictive}` : ''}, confidence ${signals.confidence.toFixed(2)})`
        : signals.windowAsEchoes === true && reserveFloor > target
          ? `load ${fmtNum(signals.load)} needs ${raw}; the ${fmtMs(o.scaleInStabilizationMs)} stabilisation window's ${reserveFloor - target} more kept warm (reactive ${reactive}, confidence ${signals.confidence.toFixed(2)})`
          : target > raw
            ? `recommendation ${raw}, held at ${target} by the ${fmtMs(o.scaleInStabilizationMs)} stabilisation window`
            : `${fmtMs(o.scaleInStabilizationMs)} of recommendations at or below ${target} (reactive ${reactive}${predictive !== undefined ? `, predictive ${predictive}` : ''})`;
  }
  const kind = target > current ? 'scale-out' : 'scale-in';
  if (o.mode === 'forecast-only') {
    return {
      desired: current,
      state: next,
      ...counts,
      decisions: [
        { kind, at: now, from: current, to: target, applied: false, reason: `forecast-only: ${why}`, inputs },
      ],
    };
  }
  const verdict = checkGuards(g, state.guards, current, target, now);
  if (!verdict.allowed) {
    return {
      desired: current,
      state: next,
      ...counts,
      decisions: [
        {
          kind,
          at: now,
          from: current,
          to: target,
          applied: false,
          reason: `held: ${verdict.reason}; ${why}`,
          inputs,
        },
      ],
    };
  }
  next.guards = recordAction(g, state.guards, current, target, now);
  return {
    desired: target,
    state: next,
    ...counts,
    reserve: Math.max(0, reserveFloor - target),
    decisions: [{ kind, at: now, from: current, to: target, applied: true, reason: why, inputs }],
  };
}

/** Numbers in reasons: 3 significant digits. */
export function fmtNum(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}
