import { decideHpa, initialHpaState, PredictiveScaler, resolveHpaOptions } from '../policy/index.js';
import type {
  Decision,
  DecisionForecast,
  HpaOptions,
  HpaState,
  PredictiveScalerOptions,
  ResolvedHpaOptions,
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
  decisions?: Decision[];
  /** Forecast at the serving horizon, recorded for the plot. */
  forecast?: DecisionForecast;
}

/** A scaling policy as the simulator drives it: one per service. */
export interface ScalingController {
  readonly name: string;
  decide(now: number, view: ServiceView): ControllerOutput;
}

/** The predictive policy: {@link PredictiveScaler}, exactly as the live loop runs it. */
export class PredictiveController implements ScalingController {
  readonly name = 'predictive';
  readonly scaler: PredictiveScaler;
  constructor(options: PredictiveScalerOptions) {
    this.scaler = new PredictiveScaler(options);
  }
  decide(now: number, v: ServiceView): ControllerOutput {
    this.scaler.observe(now, v.load);
    const d = this.scaler.decide(now, {
      serving: v.ready + v.starting,
      pool: v.poolReady + v.poolStarting,
      poolReady: v.poolReady,
      load: v.load,
    });
    return {
      serving: d.serving,
      pool: d.pool,
      decisions: d.decisions,
      ...(d.forecast ? { forecast: d.forecast } : {}),
    };
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
