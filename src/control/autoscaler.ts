import type { ServiceSpec } from '../config/index.js';
import { PredictiveScaler, type Decision as PolicyDecision, type DecisionForecast } from '../policy/index.js';
import type { Runtime } from '../runtime/index.js';
import type { DecisionLog } from './decision-log.js';
import type { DesiredCounts } from './reconcile.js';
import type { InstanceRecord } from './records.js';
import type { ServiceDataPlane } from './service-data-plane.js';
import type { RouterStats } from '../router/index.js';
import { MutationDeltaMonitor } from '../predict/index.js';
import { measureShadows, type ShadowSignal } from './shadow-signal.js';

/** What the autoscaler needs from the control plane. */
export interface AutoscalerHost {
  readonly runtime: Runtime;
  readonly decisions: DecisionLog;
  instancesOf(service: string): InstanceRecord[];
  dataPlane(service: string): ServiceDataPlane | undefined;
  /** CPU use (cores) of a serving instance at its last sample, from the control plane's one sampler. */
  servingCores(id: string): number | undefined;
  desired(service: string): DesiredCounts;
  /**
   * Runs `change` (promotions and demotions) with reconciling of the service held, then records the new
   * desired counts (persisted) and reconciles: the reconciler never sees half a change.
   */
  apply(service: string, counts: DesiredCounts, change: () => Promise<void>): Promise<void>;
  /** Moves a ready echo into the serving set (a router change): resolves once it serves. */
  promoteIntoServing(echo: InstanceRecord, why: string): Promise<void>;
  /** Moves a serving instance back into the warm pool: out of the router first, then resized down. */
  demoteToPool(primary: InstanceRecord, why: string): Promise<void>;
  /** Whether a promotion (failover) of the service is under way: no scaling then. */
  busy(service: string): boolean;
}

/** What `understudy status` and the API show of a scaled service. */
export interface AutoscalerView {
  policy: ServiceSpec['scaling']['policy'];
  /** Target utilisation of a serving instance. */
  target: number;
  /** Step of the forecast series, ms. */
  stepMs: number;
  /** Requests/s one serving instance handles at 100 %, and where the figure came from. */
  capacity?: { perInstance: number; source: 'spec' | 'measured' };
  /** Requests/s through the router, last sample. */
  load: number;
  serving: number;
  pool: number;
  forecast?: DecisionForecast;
  confidence?: number;
  shadow?: ShadowSignal;
  lastDecision?: { at: number; kind: string; from: number; to: number; reason: string; applied: boolean };
}

/** Period of CPU sampling (serving set and shadows), ms. */
const CPU_SAMPLE_MS = 1000;
/** Weight of a new sample in the smoothed shadow signal. */
const SHADOW_ALPHA = 0.3;
/** Samples in a row beyond the threshold before the shadow alarm changes. */
const SHADOW_STREAK = 3;

/** Exponentially smoothed shadow signal (a new shadow, or none, resets it). */
function smooth(prev: ShadowSignal | undefined, next: ShadowSignal | undefined): ShadowSignal | undefined {
  if (!next || !prev || prev.shadows !== next.shadows) return next;
  const mix = (a: number, b: number): number => a + SHADOW_ALPHA * (b - a);
  const liveLoad = mix(prev.liveLoad, next.liveLoad);
  const shadowLoad = mix(prev.shadowLoad, next.shadowLoad);
  return {
    liveLoad,
    shadowLoad,
    delta: (shadowLoad - liveLoad) / Math.max(liveLoad, 1e-3),
    shadowUtilisation: mix(prev.shadowUtilisation, next.shadowUtilisation),
    shadows: next.shadows,
  };
}

/** Smallest total CPU utilisation (in instances at 100 %) from which the capacity is measured. */
const CAPACITY_MIN_UTILISATION = 0.05;
/** Samples averaged for the measured capacity. */
const CAPACITY_SAMPLES = 5;
/** Loaded samples the measured capacity is the median of. */
const CAPACITY_WINDOW = 30;

/**
 * The live half of predictive scaling for one service: samples the router's request rate (and the CPU
 * of serving instances and shadows), feeds it to the same {@link PredictiveScaler} the simulator runs,
 * and carries out its decisions — scale-out by promoting ready warm echoes into the serving set first
 * and cold-starting the rest, scale-in by moving serving instances back into the warm pool or stopping
 * them, the pool sized to the forecast peak, shadows created ahead of a forecast spike (seed 004).
 * Every decision is recorded with its inputs (load, forecast interval, confidence, reactive and
 * predictive counts).
 */
export class ServiceAutoscaler {
  readonly #spec: ServiceSpec;
  readonly #host: AutoscalerHost;
  #scaler: PredictiveScaler;
  #capacity: AutoscalerView['capacity'];
  readonly #capacitySamples: number[] = [];
  #lastRequests: number | undefined;
  #lastSampleAt = 0;
  #lastCpuAt = 0;
  #rateCounts: { at: number; live: number; shadow: number } | undefined;
  readonly #rateMonitor = new MutationDeltaMonitor();
  /** Recent warm-pool recommendations, for the pool's stabilisation window. */
  #poolWindow: Array<{ at: number; size: number }> = [];
  /** Consecutive CPU samples on the other side of the shadow threshold. */
  #shadowStreak = 0;
  #load = 0;
  #nextDecisionAt = 0;
  #forecast: DecisionForecast | undefined;
  #confidence: number | undefined;
  #shadow: ShadowSignal | undefined;
  #shadowAlarm = false;
  #last: AutoscalerView['lastDecision'];
  #busy = false;

  constructor(spec: ServiceSpec, host: AutoscalerHost) {
    this.#spec = spec;
    this.#host = host;
    if (spec.scaling.capacity !== undefined)
      this.#capacity = { perInstance: spec.scaling.capacity, source: 'spec' };
    // The forecaster learns the load from the first sample; decisions wait for a capacity.
    this.#scaler = this.#createScaler();
  }

  /** Whether a service scales or forecasts at all (else no autoscaler is made). */
  static wanted(spec: ServiceSpec): boolean {
    return spec.scaling.max > spec.scaling.min || spec.shadow.count > 0 || spec.shadow.onForecast;
  }

  /** Each decision passes the current capacity; the option only has to be valid. */
  #createScaler(): PredictiveScaler {
    const s = this.#spec.scaling;
    return new PredictiveScaler({
      capacityPerInstance: this.#capacity?.perInstance ?? 1,
      targetUtilization: s.target,
      stepMs: s.step,
      decisionIntervalMs: s.interval,
      coldLeadMs: s.coldStart,
      warmLeadMs: Math.min(s.coldStart, 1000),
      scaleInStabilizationMs: s.stabilization,
      // `reactive`: the forecast is never confident enough to count.
      ...(s.policy === 'reactive' ? { minConfidence: 2 } : {}),
      mode: s.policy === 'forecast-only' ? 'forecast-only' : 'act',
      // Cooldowns and the action budget in the units of the spec's own clock (its step and stabilisation).
      guards: {
        minCount: s.min,
        maxCount: s.max,
        scaleInCooldownMs: s.stabilization * 0.6,
        actionWindowMs: s.step * 60,
      },
      warmPool: { minSize: this.#spec.echo.count, maxSize: Math.max(this.#spec.echo.count, s.max - s.min) },
    });
  }

  view(): AutoscalerView {
    const mine = this.#host
      .instancesOf(this.#spec.name)
      .filter((i) => i.phase !== 'failed' && i.phase !== 'stopped');
    return {
      policy: this.#spec.scaling.policy,
      target: this.#spec.scaling.target,
      stepMs: this.#spec.scaling.step,
      ...(this.#capacity ? { capacity: this.#capacity } : {}),
      load: this.#load,
      serving: mine.filter((i) => i.role === 'primary').length,
      pool: mine.filter((i) => i.role === 'echo').length,
      ...(this.#forecast ? { forecast: this.#forecast } : {}),
      ...(this.#confidence !== undefined ? { confidence: this.#confidence } : {}),
      ...(this.#shadow ? { shadow: this.#shadow } : {}),
      ...(this.#last ? { lastDecision: this.#last } : {}),
    };
  }

  /**
   * Feeds past load (requests/s at past times, oldest first) to the forecaster, as a metrics system
   * would (AWS predictive scaling reads 24 h of CloudWatch history the same way), so that forecasts
   * start from the first minute. The forecaster starts afresh from the history (what it learnt from
   * live samples so far is dropped). Returns the number of samples taken.
   */
  importHistory(samples: ReadonlyArray<{ at: number; load: number }>, now: number): number {
    // A fresh forecaster: the live samples it has seen are newer than the history.
    const scaler = this.#createScaler();
    this.#scaler = scaler;
    let taken = 0;
    for (const s of samples) {
      if (!(s.at < now) || !Number.isFinite(s.load) || s.load < 0) continue;
      scaler.observe(s.at, s.load);
      taken++;
    }
    this.#host.decisions.record({
      kind: 'history',
      service: this.#spec.name,
      what: `forecaster seeded with ${taken} past load samples`,
      why: 'load history imported (as from a metrics system), so forecasts need not wait for live data',
      inputs: { samples: taken, from: samples[0]?.at, to: samples[samples.length - 1]?.at },
      outcome: 'recorded',
    });
    return taken;
  }

  /** One sample (and, when due, one decision). Call it a few times per step. */
  async tick(now: number): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.#tick(now);
    } finally {
      this.#busy = false;
    }
  }

  async #tick(now: number): Promise<void> {
    const plane = this.#host.dataPlane(this.#spec.name);
    if (!plane) return;
    const stats = plane.router.stats();
    const requests = stats.http?.requests ?? 0;
    const prev = this.#lastRequests;
    const dt = (now - this.#lastSampleAt) / 1000;
    this.#lastRequests = requests;
    this.#lastSampleAt = now;
    if (prev === undefined || dt <= 0) return;
    this.#load = Math.max(0, requests - prev) / dt;
    const mine = this.#host.instancesOf(this.#spec.name);
    if (now - this.#lastCpuAt >= CPU_SAMPLE_MS) {
      // CPU accounting is in clock ticks: sample it at most once a second and smooth it.
      this.#lastCpuAt = now;
      const serving = mine.filter((i) => i.role === 'primary' && i.phase === 'running');
      const { runtime, servingCores } = this.#host;
      const usage = await measureShadows(runtime, servingCores, serving, mine, this.#spec.shadow.sample);
      const rate = this.#rates(stats, now);
      const smoothed = smooth(this.#shadow, usage.signal);
      this.#shadow = smoothed && rate ? { ...smoothed, rate } : smoothed;
      this.#watchShadow(now);
      if (this.#capacity?.source !== 'spec') this.#measureCapacity(usage.servingUtilisation, now);
    }
    const scaler = this.#scaler;
    scaler.observe(now, this.#load);
    const capacity = this.#capacity?.perInstance;
    if (capacity === undefined || now < this.#nextDecisionAt || this.#host.busy(this.#spec.name)) return;
    this.#nextDecisionAt = now + this.#spec.scaling.interval;
    await this.#decide(scaler, capacity, now, mine);
  }

  /**
   * Capacity per instance = requests/s ÷ serving utilisation: the median of the last loaded samples,
   * kept up to date (a new release may cost more per request). Recorded when first known and whenever
   * it moves by more than a quarter.
   */
  #measureCapacity(utilisation: number, now: number): void {
    if (utilisation < CAPACITY_MIN_UTILISATION || this.#load <= 0) return;
    this.#capacitySamples.push(this.#load / utilisation);
    if (this.#capacitySamples.length > CAPACITY_WINDOW) this.#capacitySamples.shift();
    if (this.#capacitySamples.length < CAPACITY_SAMPLES) return;
    const sorted = [...this.#capacitySamples].sort((a, b) => a - b);
    const perInstance = sorted[Math.floor(sorted.length / 2)] ?? 0;
    const before = this.#capacity?.perInstance;
    this.#capacity = { perInstance, source: 'measured' };
    if (before !== undefined && Math.abs(perInstance - before) <= before * 0.25) return;
    this.#host.decisions.record({
      kind: 'capacity',
      service: this.#spec.name,
      what: `capacity of one serving instance: ${perInstance.toFixed(1)} requests/s at 100 %`,
      why: `measured: median of the last ${sorted.length} samples of the router's request rate over the serving instances' CPU utilisation (scaling.capacity is not set)${before !== undefined ? `; was ${before.toFixed(1)}` : ''}`,
      inputs: { samples: sorted, at: now },
      outcome: 'recorded',
    });
  }

  async #decide(
    scaler: PredictiveScaler,
    capacity: number,
    now: number,
    mine: InstanceRecord[],
  ): Promise<void> {
    const counted = mine.filter((i) => i.phase !== 'failed' && i.phase !== 'stopped');
    const servingAll = counted.filter((i) => i.role === 'primary');
    const pool = counted.filter((i) => i.role === 'echo');
    const poolReady = pool.filter((i) => i.phase === 'running');
    const d = scaler.decide(now, {
      serving: servingAll.length,
      pool: pool.length,
      poolReady: poolReady.length,
      load: this.#load,
      capacityPerInstance: capacity,
      // The shadow's view of the load, in requests/s: live load scaled by the shadow–live delta (not
      // while the shadow is at its own limit: then it under-reports).
      ...(this.#shadow && this.#shadow.shadowUtilisation < 0.9
        ? { shadowLoad: this.#load * (1 + this.#shadow.delta) }
        : {}),
    });
    this.#forecast = d.forecast;
    this.#confidence = d.confidence;
    const want = { ...this.#host.desired(this.#spec.name) };
    for (const pd of d.decisions) if (pd.kind !== 'pool-resize') this.#record(pd, d.confidence);
    const onForecast = this.#spec.shadow.onForecast ? this.#spikeShadows(d.forecast, servingAll.length) : 0;
    // The pool grows at once and shrinks only after the stabilisation window, as the serving set does:
    // an echo stopped and started again at every wobble of the forecast is a cold start wasted.
    const cutoff = now - this.#spec.scaling.stabilization;
    this.#poolWindow = this.#poolWindow.filter((p) => p.at > cutoff);
    this.#poolWindow.push({ at: now, size: d.pool });
    const poolSize = Math.max(...this.#poolWindow.map((p) => p.size));
    const next: DesiredCounts = {
      serving: d.serving,
      echoes: Math.max(this.#spec.echo.count, poolSize),
      shadows: Math.max(this.#spec.shadow.count, onForecast),
    };
    const poolDecision = d.decisions.find((pd) => pd.kind === 'pool-resize');
    if (poolDecision && next.echoes !== want.echoes)
      this.#record({ ...poolDecision, from: want.echoes, to: next.echoes }, d.confidence);
    if (
      next.serving === want.serving &&
      next.echoes === want.echoes &&
      next.shadows === want.shadows &&
      next.serving === servingAll.length
    )
      return;
    await this.#host.apply(this.#spec.name, next, async () => {
      if (next.serving > servingAll.length) {
        // Promote ready warm echoes first (a router change); the reconciler cold-starts the rest.
        const promote = poolReady.sort((a, b) => a.slot - b.slot).slice(0, next.serving - servingAll.length);
        for (const echo of promote)
          await this.#host.promoteIntoServing(echo, `scale-out to ${next.serving}: a warm echo first`);
      } else if (next.serving < servingAll.length) {
        const leaving = servingAll
          .sort((a, b) => Number(a.phase === 'running') - Number(b.phase === 'running') || b.slot - a.slot)
          .slice(0, servingAll.length - next.serving);
        let pooled = pool.length;
        for (const rec of leaving) {
          // Back into the warm pool while the pool wants more echoes; the reconciler stops the rest.
          if (rec.phase !== 'running' || pooled >= next.echoes) continue;
          await this.#host.demoteToPool(rec, `scale-in to ${next.serving}: back into the warm pool`);
          pooled++;
        }
      }
    });
  }

  /** Seed 004: one shadow while the forecast's upper bound exceeds what the serving set handles at target. */
  #spikeShadows(forecast: DecisionForecast | undefined, serving: number): number {
    const per = (this.#capacity?.perInstance ?? 0) * this.#spec.scaling.target;
    const spike = forecast !== undefined && per > 0 && forecast.upper > serving * per;
    const before = this.#host.desired(this.#spec.name).shadows > this.#spec.shadow.count;
    if (spike !== before && forecast) {
      this.#host.decisions.record({
        kind: spike ? 'shadow-create' : 'shadow-retire',
        service: this.#spec.name,
        what: spike ? 'create a shadow ahead of a forecast spike' : 'retire the shadow: the spike has passed',
        why: `forecast upper ${forecast.upper.toFixed(1)} requests/s within ${Math.round(forecast.horizonMs / 1000)} s ${spike ? '>' : '≤'} ${(serving * per).toFixed(1)} the ${serving} serving instance(s) handle at target`,
        inputs: { forecast, serving, capacityAtTarget: per },
        outcome: 'recorded',
      });
    }
    return spike ? 1 : 0;
  }

  /** The shadow–live delta crossing its threshold is an early warning, recorded as a decision. */
  #watchShadow(now: number): void {
    const s = this.#shadow;
    if (!s) return;
    // Hysteresis: the alarm rises above the threshold and clears below 80 % of it, each only after
    // SHADOW_STREAK samples in a row, so that noise around the threshold is not a stream of events.
    const threshold = this.#spec.shadow.deltaThreshold * (this.#shadowAlarm ? 0.8 : 1);
    const alarm = Math.abs(s.delta) > threshold || (s.rate?.relative ?? 0) > threshold;
    this.#shadowStreak = alarm === this.#shadowAlarm ? 0 : this.#shadowStreak + 1;
    if (this.#shadowStreak < SHADOW_STREAK) return;
    this.#shadowStreak = 0;
    this.#shadowAlarm = alarm;
    this.#host.decisions.record({
      kind: alarm ? 'shadow-warning' : 'shadow-clear',
      service: this.#spec.name,
      what: alarm
        ? `shadow and live diverge: ${(s.delta * 100).toFixed(0)} % (normalised)`
        : 'shadow and live agree again',
      why: `normalised shadow load ${s.shadowLoad.toFixed(3)} vs live ${s.liveLoad.toFixed(3)}${s.rate ? `; requests/s live ${s.rate.live.toFixed(1)} vs shadow ${s.rate.shadow.toFixed(1)} (scaled)` : ''} (threshold ${this.#spec.shadow.deltaThreshold})`,
      inputs: { ...s, at: now },
      outcome: 'recorded',
    });
  }

  /** Live request rate against the rate of mirrored copies the shadows answered (scaled to all traffic). */
  #rates(stats: RouterStats, now: number): ShadowSignal['rate'] {
    const counts = { at: now, live: stats.http?.requests ?? 0, shadow: stats.mirror.completed };
    const prev = this.#rateCounts;
    this.#rateCounts = counts;
    const shadows = stats.mirror.shadows.length;
    if (!prev || counts.at <= prev.at || shadows === 0) return undefined;
    const dt = (counts.at - prev.at) / 1000;
    const live = (counts.live - prev.live) / dt;
    const shadow = (counts.shadow - prev.shadow) / dt / shadows / Math.max(stats.mirror.fraction, 1e-6);
    return { live, shadow, relative: this.#rateMonitor.evaluate(live, shadow).relative };
  }

  #record(pd: PolicyDecision, confidence: number): void {
    // A decision held back (guard, dry run) is recorded once, not at every tick it stays held.
    const last = this.#last;
    const same = last?.kind === pd.kind && last.from === pd.from && last.to === pd.to;
    if (!pd.applied && same && !last.applied) return;
    this.#last = {
      at: pd.at,
      kind: pd.kind,
      from: pd.from,
      to: pd.to,
      reason: pd.reason,
      applied: pd.applied,
    };
    const noun = pd.kind === 'pool-resize' ? 'warm pool' : 'serving set';
    this.#host.decisions.record({
      kind: pd.kind,
      service: this.#spec.name,
      what: `${pd.applied ? '' : '(not applied) '}${pd.kind}: ${noun} ${pd.from} → ${pd.to}`,
      why: pd.reason,
      inputs: { ...pd.inputs, confidence, policy: this.#spec.scaling.policy },
      outcome: pd.applied ? 'ok' : 'recorded',
    });
  }
}
