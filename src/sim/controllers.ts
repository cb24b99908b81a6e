import {
  createScalingPolicy,
  decideHpa,
  initialHpaState,
  initialScalingState,
  resolveHpaOptions,
  resolveScalingOptions,
  scalingStep,
} from '../policy/index.js';
import type {
  Decision,
  DecisionForecast,
  HpaOptions,
  HpaState,
  PredictiveScaler,
  PredictiveScalerOptions,
  ResolvedHpaOptions,
  ScalingCounts,
  ScalingOptions,
  ScalingPolicy,
  ScalingRecord,
  ScalingState,
} from '../policy/index.js';

/** What a controller sees of its service at a tick. */
export interface ServiceView {
  /** Ready serving instances. */
  ready: number;
  /** Serving instances still starting (cold, or echoes being promoted). */
  starting: number;
  /** Echoes of the warm pool ready to promote. */
  poolReady: number;
  /** Echoes of the warm pool still starting. */
  poolStarting: number;
  /** Load that arrived in the last tick (requests/s). */
  load: number;
  /** Index of the current tick. */
  tick: number;
}

/** What a controller asks for. */
export interface ControllerOutput {
  /** Serving count (ready plus starting). */
  serving: number;
  /** Warm-pool size; omitted = 0. */
  pool?: number;
  /** Shadows wanted (not simulated; reported by the predictive controller). */
  shadows?: number;
  decisions?: Decision[];
  /** Everything the policy reported at this tick, in order (decisions and observations). */
  records?: ScalingRecord[];
  /** Forecast at the serving horizon, recorded for the plot. */
  forecast?: DecisionForecast;
}

/** A scaling policy as the simulator drives it: one per service. */
export interface ScalingController {
  readonly name: string;
  decide(now: number, view: ServiceView): ControllerOutput;
}

/**
 * The predictive policy exactly as the live autoscaler runs it: every tick is one call of
 * {@link scalingStep} (the same entry point, the same options — from a spec, `scalingOptionsFromSpec`)
 * with what the simulator observes; the serving set, pool and shadows it asks for are the step's
 * desired counts. The simulator has no CPU samples: give the options a `capacity` (by default the
 * scaler's `capacityPerInstance`).
 */
export class PredictiveController implements ScalingController {
  readonly name = 'predictive';
  readonly #policy: ScalingPolicy;
  #state: ScalingState;
  #desired: ScalingCounts | undefined;

  /**
   * @param options the predictive scaler's options, or the whole scaling options (with `scaler`)
   * @param initial desired counts before the first decision @default the first tick's serving and pool, `minShadows`
   */
  constructor(options: PredictiveScalerOptions | ScalingOptions, initial?: ScalingCounts) {
    const o: ScalingOptions =
      'scaler' in options ? options : { scaler: options, capacity: options.capacityPerInstance };
    const withCapacity = o.capacity !== undefined ? o : { ...o, capacity: o.scaler.capacityPerInstance };
    this.#policy = createScalingPolicy(resolveScalingOptions(withCapacity));
    this.#state = initialScalingState(this.#policy.options);
    this.#desired = initial;
  }

  /** The scaler the step runs (e.g. to inspect its forecaster). */
  get scaler(): PredictiveScaler {
    return this.#policy.scaler;
  }

  decide(now: number, v: ServiceView): ControllerOutput {
    const serving = v.ready + v.starting;
    const pool = v.poolReady + v.poolStarting;
    const desired = this.#desired ?? { serving, echoes: pool, shadows: this.#policy.options.minShadows };
    const r = scalingStep(
      this.#policy,
      this.#state,
      { load: v.load, serving, pool, poolReady: v.poolReady, desired },
      now,
    );
    this.#state = r.state;
    const counts = r.decision?.counts ?? desired;
    this.#desired = counts;
    const decisions = r.records.flatMap((x) => (x.type === 'decision' ? [x.decision] : []));
    return {
      serving: counts.serving,
      pool: counts.echoes,
      shadows: counts.shadows,
      decisions,
      records: r.records,
      ...(r.state.forecast && r.decision ? { forecast: r.state.forecast } : {}),
    };
  }
}

/** A confidence no forecast reaches: the forecast never counts. */
const NEVER_CONFIDENT = 2;

/**
 * The reactive baseline with the same warm pool (AWS target tracking plus a warm pool): the
 * predictive controller's {@link scalingStep} with the forecast never counting. The serving set
 * follows the reactive rule on the current load (scale-in held by its stabilisation window); the
 * warm pool is predictive's pool — the same policy, the same hedge (`peakFraction` of the instances
 * the current load needs, at least `minSize`), refilled by scale-ins, promoting in the same warm
 * lead time — sized without the forecast or the growth history, as an AWS warm pool is. The anchor a
 * forecast must beat.
 */
export class ReactivePoolController implements ScalingController {
  readonly name = 'reactive-pool';
  readonly #inner: PredictiveController;

  /** @param options the predictive scaler's options; the serving set's and the pool's `minConfidence`, `poolGrowthQuantile` and the forecast-held scale-in (`unconfidentHold`, `warmHold`, `warmWindow`) are overridden */
  constructor(options: PredictiveScalerOptions) {
    this.#inner = new PredictiveController({
      ...options,
      minConfidence: NEVER_CONFIDENT,
      unconfidentHold: false,
      warmHold: false,
      warmWindow: false,
      poolGrowthQuantile: false,
      warmPool:
        options.warmPool === false ? false : { ...(options.warmPool ?? {}), minConfidence: NEVER_CONFIDENT },
    });
  }

  decide(now: number, v: ServiceView): ControllerOutput {
    const { forecast: _unused, ...out } = this.#inner.decide(now, v);
    return out;
  }
}

/**
 * The Kubernetes HPA on a per-pod load metric (requests/s per ready pod ÷ capacity, i.e. the
 * utilisation an uncapped CPU metric would show), target = the target utilisation.
 */
export class HpaController implements ScalingController {
  readonly name = 'hpa';
  readonly #o: ResolvedHpaOptions;
  readonly #capacity: number;
  #state: HpaState = initialHpaState();
  constructor(capacityPerInstance: number, options: HpaOptions) {
    this.#o = resolveHpaOptions(options);
    this.#capacity = capacityPerInstance;
  }
  decide(now: number, v: ServiceView): ControllerOutput {
    const r = decideHpa(
      this.#o,
      this.#state,
      {
        currentReplicas: v.ready + v.starting,
        readyPods: v.ready,
        metricSum: v.load / this.#capacity,
        unreadyPods: v.starting,
      },
      now,
    );
    this.#state = r.state;
    return { serving: r.desired, decisions: r.decisions };
  }
}

/** Static provisioning: a fixed count (the bench uses the count the trace's peak needs). */
export class StaticController implements ScalingController {
  readonly name = 'static';
  constructor(readonly count: number) {}
  decide(): ControllerOutput {
    return { serving: this.count };
  }
}

/**
 * The oracle: knows the load of every tick and, with the same cold-start lead time as everyone,
 * runs at each tick the largest count needed from now until a start decided now is ready — the
 * fewest instances that never fall short of the target utilisation (the physical limit).
 */
export class OracleController implements ScalingController {
  readonly name = 'oracle';
  readonly #need: Int32Array;
  /**
   * @param load requests/s of every tick
   * @param leadTicks cold-start lead time in ticks
   */
  constructor(
    load: Float64Array,
    capacityPerInstance: number,
    targetUtilization: number,
    leadTicks: number,
    minCount = 1,
  ) {
    const n = load.length;
    const req = new Int32Array(n);
    for (let i = 0; i < n; i++)
      req[i] = Math.max(minCount, Math.ceil(load[i]! / (capacityPerInstance * targetUtilization) - 1e-9));
    // Sliding-window maximum over [i, i + leadTicks] (monotonic deque).
    const need = new Int32Array(n);
    const dq = new Int32Array(n);
    let head = 0;
    let tail = 0;
    let next = 0;
    for (let i = 0; i < n; i++) {
      const end = Math.min(n - 1, i + leadTicks);
      while (next <= end) {
        while (tail > head && req[dq[tail - 1]!]! <= req[next]!) tail--;
        dq[tail++] = next++;
      }
      while (dq[head]! < i) head++;
      need[i] = req[dq[head]!]!;
    }
    this.#need = need;
  }
  decide(_now: number, v: ServiceView): ControllerOutput {
    // At tick i the engine applies decisions for tick i + 1 onwards.
    return { serving: this.#need[Math.min(this.#need.length - 1, v.tick + 1)]! };
  }
}
