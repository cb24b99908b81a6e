import {
  createAutoForecaster,
  GrowthQuantileTracker,
  predictionConfidence,
  SeasonalProfile,
} from '../predict/index.js';
import type { ForecastPoint, Forecaster } from '../predict/index.js';
import type { Decision, DecisionForecast } from './decision.js';
import {
  decideHorizontal,
  fmtNum,
  initialHorizontalState,
  resolveHorizontalPolicyOptions,
} from './horizontal-policy.js';
import type {
  HorizontalPolicyOptions,
  HorizontalState,
  ResolvedHorizontalPolicyOptions,
} from './horizontal-policy.js';
import { decideWarmPool, resolveWarmPoolOptions } from './warm-pool-policy.js';
import type { ResolvedWarmPoolOptions, WarmPoolOptions } from './warm-pool-policy.js';

/** Time between two decisions when `decisionIntervalMs` is not set (ms). */
export const DEFAULT_DECISION_INTERVAL_MS = 15_000;
/** The default of {@link PredictiveScalerOptions.poolGrowthQuantile}. */
export const DEFAULT_POOL_GROWTH_QUANTILE = 0.7;
/** The default of {@link PredictiveScalerOptions.coverage}. */
export const DEFAULT_COVERAGE = 0.7;
/** Growth samples seen before the growth quantile sizes the pool. */
const MIN_GROWTH_SAMPLES = 30;

/** Options of {@link PredictiveScaler}. */
export interface PredictiveScalerOptions extends HorizontalPolicyOptions {
  /** Step of the forecast series: observed load is averaged per step (ms). @default 60000 */
  stepMs?: number;
  /**
   * Provisioning lead time of a cold start (ms): the horizon of the warm pool and of the scale-in
   * hold (an instance released now is back only after a cold start), and of the serving set when
   * no echo is ready. @default 120000
   */
  coldLeadMs?: number;
  /** Lead time of promoting a warm echo (ms): the horizon of the serving set while echoes are ready. @default 5000 */
  warmLeadMs?: number;
  /** Time between two decisions (ms): capacity decided now must last until the next decision plus the lead time. @default 15000 */
  decisionIntervalMs?: number;
  /**
   * Central interval coverage whose upper bound is provisioned for. With the default the upper
   * bound is the one-sided 85 % quantile; sized at `upperUtilization` (100 %), a step's load then
   * exceeds the provisioned capacity with about 15 % probability when the intervals are calibrated.
   * Chosen with {@link poolGrowthQuantile} on the scaling benchmark's tuning traces (docs/scaling.md):
   * the growth quantile's warm pool covers the rest more cheaply than a wider interval.
   * @default 0.7
   */
  coverage?: number;
  /** Warm-pool options without the shared capacity fields, or `false` for no pool. @default {} */
  warmPool?: Omit<WarmPoolOptions, 'capacityPerInstance' | 'targetUtilization'> | false;
  /** The forecaster to use. @default createAutoForecaster({maxHorizon: 64}) */
  forecaster?: Forecaster;
  /** Weight of each new hit/miss in the recent-accuracy average. @default 0.05 */
  accuracyAlpha?: number;
  /**
   * The warm pool also covers this upper quantile of the load's growth within a cold start, learned
   * from the steps seen (`growthQuantile`: the peak over the lead time, not the mean), or `false`
   * for the forecast alone. @default 0.7
   */
  poolGrowthQuantile?: number | false;
  /** Growth samples (steps) {@link poolGrowthQuantile} is learned from: the most recent. @default 2880 */
  growthWindowSteps?: number;
  /**
   * Hold scale-in at what a learned daily profile (hourly means, after a day of history) needs over
   * the re-provisioning horizon. Evaluated on the benchmark's tuning traces and off by default: it
   * cost more instance-hours than the SLO minutes it saved (docs/scaling.md). @default false
   */
  seasonalHold?: boolean;
  /**
   * While the warm pool has a ready echo, a forecast holds a scale-in only at what it needs over the
   * warm lead (a promotion); what it needs over a cold start beyond that is kept as warm echoes:
   * the released instances go back into the pool and return in seconds, at an echo's cost. Chosen
   * on the scaling benchmark's tuning traces (docs/scaling.md). @default true
   */
  warmHold?: boolean;
  /**
   * While the warm pool has a ready echo and the forecast is not confident, the scale-in
   * stabilisation window holds its instances as warm echoes instead of serving ones (see
   * `HorizontalSignals.windowAsEchoes`): the serving set follows the reactive rule down at once, and
   * the instances the window would have kept serving go back into the pool for the window's length
   * (and the pool's own stabilisation window), returning by promotion in seconds if the load comes
   * back. Chosen on the scaling benchmark's tuning traces (docs/scaling.md). @default true
   */
  warmWindow?: boolean;
}

/** The serving set and warm pool as the executor reports them, at one decision. */
export interface ScalerObservation {
  /** Serving instances (ready plus starting). */
  serving: number;
  /** Echoes in the warm pool (ready plus starting). */
  pool: number;
  /** Echoes of the pool that are ready to promote. */
  poolReady: number;
  /** Load observed now (requests/s, or any unit `capacityPerInstance` is in, e.g. CPU cores). */
  load: number;
  /**
   * The current estimate of what one instance serves at 100 %, when it changes over time (e.g.
   * measured live). Replaces the option from this decision on; the forecaster and the scale-in
   * window are kept. @default the `capacityPerInstance` option
   */
  capacityPerInstance?: number;
  /**
   * The load a shadow implies, in the unit of `load` (seeds 002, 004: the shadow runs a mirrored share of
   * live traffic; scaled back to the whole traffic). A shadow running hotter than live when a rise is
   * forecast corroborates it and raises confidence; the opposite lowers it. @default no shadow
   */
  shadowLoad?: number;
}

/** Everything a {@link ScalerDecision} rested on (recorded with it, shown by `understudy events`). */
export interface ScalerInputs {
  /** Load observed at the decision. */
  load: number;
  /** Capacity of one instance at 100 % in use. */
  capacityPerInstance: number;
  /** Prediction confidence in [0, 1] (0 without a forecast). */
  confidence: number;
  /** Whether the forecast counted (confidence ≥ `minConfidence`); otherwise reactive only. */
  confident: boolean;
  /** Count the reactive rule asked for (the HPA's rule on the observed load). */
  reactive: number;
  /** Count the forecast at the serving lead time asked for (absent when it did not count). */
  predictive?: number;
  /** Count the forecast over the re-provisioning horizon holds a scale-in at (absent when it did not count). */
  hold?: number;
  /** Forecast at the serving lead time: mean, interval, `horizonMs` (absent before the first step closes). */
  forecast?: DecisionForecast;
  /** Forecast over the re-provisioning horizon (a cold start), which also sizes the warm pool. */
  holdForecast?: DecisionForecast;
}

/** What {@link PredictiveScaler.decide} returns. */
export interface ScalerDecision {
  /** Serving count to run (desired serving; equals `obs.serving` when nothing changes or in `forecast-only`). */
  serving: number;
  /** Echoes to keep warm (desired warm pool; 0 without a pool). */
  pool: number;
  /** The explained decisions taken (and those held back, with `applied: false`); empty when nothing changes. */
  decisions: Decision[];
  /** One line on the serving count: the decision's reason, or why it stays. */
  reason: string;
  /** What the decision rested on. */
  inputs: ScalerInputs;
  /** Forecast at the serving horizon (absent before the first step closes). Same as `inputs.forecast`. */
  forecast?: DecisionForecast;
  /** Same as `inputs.confidence`. */
  confidence: number;
}

interface PendingCheck {
  step: number;
  upper: number;
}

/**
 * The predictive scaler the live control loop and the simulator both run, one per service: feeds
 * observed load into a forecaster (one value per step), derives confidence from the interval width
 * and the recent hit rate of its upper bounds, and combines the horizontal policy (max of
 * predictive and reactive, scale-in stabilised on the forecast over the re-provisioning horizon,
 * guards) with the warm-pool policy. No clock, no I/O: time is an argument, so it is deterministic.
 *
 * Per tick: {@link observe} every load sample (any rate), then {@link decide} once per decision
 * interval with the current counts; run `serving` instances and keep `pool` echoes warm.
 *
 * @example
 * ```ts
 * const scaler = new PredictiveScaler({
 *   capacityPerInstance: 100, // requests/s one instance serves at 100 %
 *   targetUtilization: 0.7,
 *   stepMs: 60_000, // forecast step
 *   coldLeadMs: 120_000, // cold start to serving
 *   warmLeadMs: 5_000, // warm echo promotion to serving
 *   decisionIntervalMs: 15_000,
 *   guards: { minCount: 1, maxCount: 20 },
 * });
 * scaler.observe(now, load);
 * const d = scaler.decide(now, { serving: 3, pool: 1, poolReady: 1, load });
 * // d.serving, d.pool: counts to run; d.reason, d.inputs (forecast, confidence, reactive, predictive)
 * ```
 */
export class PredictiveScaler {
  #h: ResolvedHorizontalPolicyOptions;
  #pool: ResolvedWarmPoolOptions | undefined;
  readonly #options: PredictiveScalerOptions;
  readonly #stepMs: number;
  readonly #coldLeadMs: number;
  readonly #warmLeadMs: number;
  readonly #coverage: number;
  readonly #intervalMs: number;
  readonly #alpha: number;
  readonly #forecaster: Forecaster;
  #state: HorizontalState = initialHorizontalState();
  #stepIndex = Number.NaN;
  #stepSum = 0;
  #stepN = 0;
  #lastClosed = Number.NaN;
  #cache: ForecastPoint[] = [];
  #pending: PendingCheck[] = [];
  #accuracy: number | undefined;
  #hits = 0;
  readonly #growth: GrowthQuantileTracker | undefined;
  readonly #profile: SeasonalProfile | undefined;

  constructor(options: PredictiveScalerOptions) {
    this.#options = options;
    this.#h = resolveHorizontalPolicyOptions(options);
    this.#stepMs = options.stepMs ?? 60_000;
    if (!(this.#stepMs > 0)) throw new RangeError('stepMs must be > 0');
    this.#coldLeadMs = options.coldLeadMs ?? 120_000;
    this.#warmLeadMs = options.warmLeadMs ?? 5_000;
    this.#coverage = options.coverage ?? DEFAULT_COVERAGE;
    this.#intervalMs = options.decisionIntervalMs ?? DEFAULT_DECISION_INTERVAL_MS;
    this.#alpha = options.accuracyAlpha ?? 0.05;
    this.#pool =
      options.warmPool === false
        ? undefined
        : resolveWarmPoolOptions({
            ...(options.warmPool ?? {}),
            capacityPerInstance: this.#h.capacityPerInstance,
            targetUtilization: this.#h.targetUtilization,
          });
    this.#forecaster = options.forecaster ?? createAutoForecaster({ maxHorizon: 64 });
    const q = options.poolGrowthQuantile ?? DEFAULT_POOL_GROWTH_QUANTILE;
    this.#growth =
      q === false || !this.#pool
        ? undefined
        : new GrowthQuantileTracker({
            leadSteps: Math.ceil((this.#coldLeadMs + this.#intervalMs) / this.#stepMs),
            q,
            window: options.growthWindowSteps ?? 2880,
          });
    this.#profile = options.seasonalHold === true ? new SeasonalProfile() : undefined;
  }

  /** The resolved horizontal-policy options in use. */
  get options(): ResolvedHorizontalPolicyOptions {
    return this.#h;
  }

  /** The forecaster fed by {@link observe} (e.g. to inspect its model or period). */
  get forecaster(): Forecaster {
    return this.#forecaster;
  }

  /** Switches to a new per-instance capacity estimate (throws RangeError unless > 0). */
  #setCapacity(capacityPerInstance: number): void {
    if (capacityPerInstance === this.#h.capacityPerInstance) return;
    this.#h = resolveHorizontalPolicyOptions({ ...this.#options, capacityPerInstance });
    if (this.#pool) this.#pool = resolveWarmPoolOptions({ ...this.#pool, capacityPerInstance });
  }

  /** Recent hit rate of the provisioned upper bound (undefined before the first check). */
  get recentAccuracy(): number | undefined {
    return this.#accuracy;
  }

  /** Observes the load at time `t` (any sampling rate; samples are averaged per step). */
  observe(t: number, load: number): void {
    if (!Number.isFinite(t) || !Number.isFinite(load)) return;
    const k = Math.floor(t / this.#stepMs);
    if (Number.isNaN(this.#stepIndex)) this.#stepIndex = k;
    if (k > this.#stepIndex) {
      this.#closeStep();
      // Steps without samples repeat the last value (a gap is not a drop to zero).
      const last = this.#lastValue;
      for (let s = this.#stepIndex + 1; s < k && s - this.#stepIndex < 1000; s++) this.#closeWith(s, last);
      this.#stepIndex = k;
    }
    this.#stepSum += load;
    this.#stepN++;
  }

  #lastValue = 0;

  #closeStep(): void {
    if (this.#stepN === 0) return;
    this.#closeWith(this.#stepIndex, this.#stepSum / this.#stepN);
    this.#stepSum = 0;
    this.#stepN = 0;
  }

  #closeWith(step: number, value: number): void {
    this.#lastValue = value;
    // Score forecasts that targeted this step.
    while (this.#pending.length > 0 && this.#pending[0]!.step <= step) {
      const p = this.#pending.shift()!;
      if (p.step === step) {
        const hit = value <= p.upper ? 1 : 0;
        this.#hits++;
        this.#accuracy =
          this.#accuracy === undefined ? hit : this.#accuracy + this.#alpha * (hit - this.#accuracy);
      }
    }
    this.#forecaster.update(step * this.#stepMs, value);
    this.#growth?.update(value);
    this.#profile?.update(step * this.#stepMs, value);
    this.#lastClosed = step;
    const maxH = Math.max(1, Math.ceil((this.#coldLeadMs + this.#intervalMs) / this.#stepMs) + 2);
    this.#cache = this.#forecaster.forecast(maxH, this.#coverage);
  }

  /** The forecast point with the largest upper bound among the steps covering `[now, now + leadMs]`. */
  forecastAt(now: number, leadMs: number): DecisionForecast | undefined {
    if (this.#cache.length === 0) return undefined;
    // cache[h − 1] forecasts step lastClosed + h.
    const first = Math.floor(now / this.#stepMs) - this.#lastClosed;
    const lastStep = Math.floor((now + leadMs) / this.#stepMs) - this.#lastClosed;
    const hTo = Math.min(this.#cache.length, Math.max(1, lastStep));
    const hFrom = Math.min(hTo, Math.max(1, first));
    let best: ForecastPoint | undefined;
    for (let h = hFrom; h <= hTo; h++) {
      const p = this.#cache[h - 1]!;
      if (best === undefined || p.upper > best.upper) best = p;
    }
    if (!best) return undefined;
    return { horizonMs: leadMs, mean: best.mean, lower: best.lower, upper: best.upper };
  }

  /**
   * Decides the serving count and warm-pool size at `now` (call once per decision interval, after
   * {@link observe}): the serving set from the forecast's upper bound at the lead time (a warm
   * promotion while echoes are ready, else a cold start) combined by max with the reactive rule;
   * scale-in held by the forecast over the re-provisioning horizon (a cold start); the pool sized
   * to the growth that horizon's forecast predicts plus a hedge.
   */
  decide(now: number, obs: ScalerObservation): ScalerDecision {
    if (obs.capacityPerInstance !== undefined) this.#setCapacity(obs.capacityPerInstance);
    const lead = (this.#pool && obs.poolReady > 0 ? this.#warmLeadMs : this.#coldLeadMs) + this.#intervalMs;
    const forecast = this.forecastAt(now, lead);
    // The re-provisioning horizon: an instance released now, or an echo started now, is back in a cold start.
    const holdForecast = this.forecastAt(now, this.#coldLeadMs + this.#intervalMs);
    let confidence = 0;
    if (forecast) {
      const acc = this.#accuracy;
      confidence = predictionConfidence({
        forecast,
        ...(acc !== undefined && this.#hits >= 10 ? { recentAccuracy: acc } : {}),
        ...(obs.shadowLoad !== undefined ? { shadowLoad: obs.shadowLoad, liveLoad: obs.load } : {}),
      }).confidence;
      // Remember to score the upper bound that this decision provisions for.
      const step = Math.floor((now + lead) / this.#stepMs);
      const last = this.#pending[this.#pending.length - 1];
      if (!last || last.step < step) this.#pending.push({ step, upper: forecast.upper });
    }
    const warmHold = this.#options.warmHold !== false && this.#pool !== undefined && obs.poolReady > 0;
    const seasonal = this.#profile?.peak(now, now + this.#coldLeadMs + this.#intervalMs) ?? Number.NaN;
    const r = decideHorizontal(
      this.#h,
      this.#state,
      {
        current: obs.serving,
        load: obs.load,
        confidence,
        ...(forecast ? { forecast } : {}),
        // With warmHold, a scale-in is held at the forecast over the warm lead (a promotion brings
        // an echo back); what the forecast over a cold start needs beyond that stays in the pool.
        ...(warmHold
          ? {
              ...(forecast ? { holdForecast: forecast } : {}),
              ...(holdForecast ? { reserveForecast: holdForecast } : {}),
            }
          : holdForecast
            ? { holdForecast }
            : {}),
        ...(warmHold && this.#options.warmWindow !== false ? { windowAsEchoes: true } : {}),
        ...(seasonal > 0
          ? {
              seasonalHold: Math.ceil(
                seasonal / (this.#h.capacityPerInstance * this.#h.targetUtilization) - 1e-9,
              ),
            }
          : {}),
      },
      now,
    );
    this.#state = r.state;
    const decisions = r.decisions;
    const reason = decisions[0]?.reason ?? this.#steadyReason(obs, r, confidence, forecast);
    let pool = 0;
    if (this.#pool) {
      const wp = decideWarmPool(
        this.#pool,
        {
          serving: r.desired,
          pool: obs.pool,
          load: obs.load,
          confidence,
          ...(holdForecast ? { peak: holdForecast } : {}),
          ...(this.#growth && this.#growth.samples >= MIN_GROWTH_SAMPLES
            ? { growthPeak: obs.load * (1 + this.#growth.quantile) }
            : {}),
          ...(r.reserve > 0 ? { reserve: r.reserve } : {}),
        },
        now,
      );
      pool = wp.desired;
      if (this.#h.mode === 'forecast-only') {
        pool = obs.pool;
        for (const d of wp.decisions)
          decisions.push({ ...d, applied: false, reason: `forecast-only: ${d.reason}` });
      } else decisions.push(...wp.decisions);
    }
    const inputs: ScalerInputs = {
      load: obs.load,
      capacityPerInstance: this.#h.capacityPerInstance,
      confidence,
      confident: r.predictive !== undefined,
      reactive: r.reactive,
      ...(r.predictive !== undefined ? { predictive: r.predictive } : {}),
      ...(r.hold !== undefined ? { hold: r.hold } : {}),
      ...(forecast ? { forecast } : {}),
      ...(holdForecast ? { holdForecast } : {}),
    };
    return {
      serving: r.desired,
      pool,
      decisions,
      reason,
      inputs,
      confidence,
      ...(forecast ? { forecast } : {}),
    };
  }

  /** Why the serving count stays (no decision). */
  #steadyReason(
    obs: ScalerObservation,
    r: { desired: number; reactive: number; predictive?: number; hold?: number },
    confidence: number,
    forecast: DecisionForecast | undefined,
  ): string {
    const counts = `reactive ${r.reactive}${r.predictive !== undefined ? `, predictive ${r.predictive}` : ''}${r.hold !== undefined ? `, hold ${r.hold}` : ''}`;
    const basis =
      r.predictive !== undefined && forecast
        ? `forecast ${fmtNum(forecast.mean)} (upper ${fmtNum(forecast.upper)}), confidence ${confidence.toFixed(2)}`
        : forecast
          ? `confidence ${confidence.toFixed(2)} < ${this.#h.minConfidence}: reactive only`
          : 'no forecast yet: reactive only';
    return `steady at ${r.desired} for load ${fmtNum(obs.load)} (${counts}; ${basis})`;
  }
}
