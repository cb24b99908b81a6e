import type { ServiceSpec } from '../config/index.js';
import { ForecastAccuracy, MutationDeltaMonitor, type AccuracyReport } from '../predict/index.js';
import {
  createScalingPolicy,
  initialScalingState,
  resolveScalingOptions,
  scalingOptionsFromSpec,
  scalingStep,
  type DecisionForecast,
  type ScalingObservation,
  type ScalingPolicy,
  type ScalingRecord,
  type ScalingState,
} from '../policy/index.js';
import type { RouterStats } from '../router/index.js';
import type { AgentRegistry } from '../agent/index.js';
import type { DecisionLog } from './decision-log.js';
import type { DesiredCounts } from './reconcile.js';
import type { InstanceRecord } from './records.js';
import type { ServiceDataPlane } from './service-data-plane.js';
import { measureShadows, type ShadowSignal } from './shadow-signal.js';

/** What the autoscaler needs from the control plane. */
export interface AutoscalerHost {
  readonly agents: AgentRegistry;
  /** Where decisions are recorded (only `record` is used). */
  readonly decisions: Pick<DecisionLog, 'record'>;
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
  /** Whether the service is paused: a due change is recorded as `skipped` and not applied. */
  paused?(service: string): boolean;
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

/**
 * The live half of predictive scaling for one service. It samples — the router's request rate, the
 * CPU of serving instances and shadows (at most once a second), the instance counts — and passes what
 * it saw to {@link scalingStep}, the one policy entry point the simulator runs too, with the options
 * {@link scalingOptionsFromSpec} derives from the spec. It then records what the step reports
 * (decisions with their inputs, the measured capacity, shadow warnings, spike shadows) and carries out
 * its decision: scale-out by promoting ready warm echoes into the serving set first (the reconciler
 * cold-starts the rest), scale-in by moving serving instances back into the warm pool or stopping them.
 */
export class ServiceAutoscaler {
  readonly #spec: ServiceSpec;
  readonly #host: AutoscalerHost;
  #policy: ScalingPolicy;
  #state: ScalingState;
  #lastRequests: number | undefined;
  #lastSampleAt = 0;
  #lastCpuAt = 0;
  #rateCounts: { at: number; live: number; shadow: number } | undefined;
  readonly #rateMonitor = new MutationDeltaMonitor();
  #load = 0;
  #busy = false;
  /** Each forecast paired with the load observed at its target time (bounded: per-minute sums, a day). */
  readonly #accuracy = new ForecastAccuracy();

  constructor(spec: ServiceSpec, host: AutoscalerHost) {
    this.#spec = spec;
    this.#host = host;
    // The forecaster learns the load from the first sample; decisions wait for a capacity.
    const options = resolveScalingOptions(scalingOptionsFromSpec(spec));
    this.#policy = createScalingPolicy(options);
    this.#state = initialScalingState(options);
  }

  /** Whether a service scales or forecasts at all (else no autoscaler is made). */
  static wanted(spec: ServiceSpec): boolean {
    return spec.scaling.max > spec.scaling.min || spec.shadow.count > 0 || spec.shadow.onForecast;
  }

  view(): AutoscalerView {
    const mine = this.#host
      .instancesOf(this.#spec.name)
      .filter((i) => i.phase !== 'failed' && i.phase !== 'stopped');
    const s = this.#state;
    return {
      policy: this.#spec.scaling.policy,
      target: this.#spec.scaling.target,
      stepMs: this.#spec.scaling.step,
      ...(s.capacity.estimate ? { capacity: s.capacity.estimate } : {}),
      load: this.#load,
      serving: mine.filter((i) => i.role === 'primary').length,
      pool: mine.filter((i) => i.role === 'echo').length,
      ...(s.forecast ? { forecast: s.forecast } : {}),
      ...(s.confidence !== undefined ? { confidence: s.confidence } : {}),
      ...(s.shadow ? { shadow: s.shadow } : {}),
      ...(s.lastDecision ? { lastDecision: s.lastDecision } : {}),
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
    const policy = createScalingPolicy(this.#policy.options);
    this.#policy = policy;
    let taken = 0;
    for (const s of samples) {
      if (!(s.at < now) || !Number.isFinite(s.load) || s.load < 0) continue;
      policy.scaler.observe(s.at, s.load);
      taken++;
    }
    this.#host.decisions.record({
      kind: 'history',
      service: this.#spec.name,
      what: `forecaster seeded with ${taken} past load samples`,
      why: 'load history imported (as from a metrics system), so forecasts need not wait for live data',
      inputs: { samples: taken, from: samples[0]?.at, to: samples[samples.length - 1]?.at },
      outcome: { status: 'recorded' },
    });
    return taken;
  }

  /** How the forecasts made so far compare with the load that came (last hour, last day). */
  accuracy(now: number): AccuracyReport {
    return this.#accuracy.report(now);
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
    const name = this.#spec.name;
    const plane = this.#host.dataPlane(name);
    if (!plane) return;
    const stats = plane.router.stats();
    const requests = stats.http?.requests ?? 0;
    const prev = this.#lastRequests;
    const dt = (now - this.#lastSampleAt) / 1000;
    this.#lastRequests = requests;
    this.#lastSampleAt = now;
    if (prev === undefined || dt <= 0) return;
    this.#load = Math.max(0, requests - prev) / dt;
    this.#accuracy.actual(now, this.#load);
    const mine = this.#host.instancesOf(name);
    let cpu: ScalingObservation['cpu'];
    if (now - this.#lastCpuAt >= CPU_SAMPLE_MS) {
      // CPU accounting is in clock ticks: sample it at most once a second (the step smooths it).
      this.#lastCpuAt = now;
      const serving = mine.filter((i) => i.role === 'primary' && i.phase === 'running');
      const { agents, servingCores } = this.#host;
      const usage = await measureShadows(agents, servingCores, serving, mine, this.#spec.shadow.sample);
      const rate = this.#rates(stats, now);
      cpu = {
        servingUtilisation: usage.servingUtilisation,
        ...(usage.signal ? { shadow: usage.signal } : {}),
        ...(rate ? { rate } : {}),
      };
    }
    const counted = mine.filter((i) => i.phase !== 'failed' && i.phase !== 'stopped');
    const servingAll = counted.filter((i) => i.role === 'primary');
    const pool = counted.filter((i) => i.role === 'echo');
    const poolReady = pool.filter((i) => i.phase === 'running');
    const step = scalingStep(
      this.#policy,
      this.#state,
      {
        load: this.#load,
        serving: servingAll.length,
        pool: pool.length,
        poolReady: poolReady.length,
        desired: this.#host.desired(name),
        ...(cpu ? { cpu } : {}),
        busy: this.#host.busy(name),
      },
      now,
    );
    // A new forecast (made by this step's decision) is paired later with the load at its target time.
    if (step.state.forecast && step.state.forecast !== this.#state.forecast)
      this.#accuracy.forecast(now, step.state.forecast, this.#load);
    this.#state = step.state;
    const paused = this.#host.paused?.(name) ?? false;
    for (const r of step.records) this.#record(r, paused);
    const d = step.decision;
    if (!d?.act || paused) return;
    const next = d.counts;
    await this.#host.apply(name, next, async () => {
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

  /** Records one thing the scaling step reported, as a decision with its inputs. */
  #record(r: ScalingRecord, paused = false): void {
    const service = this.#spec.name;
    switch (r.type) {
      case 'decision': {
        const pd = r.decision;
        const noun = pd.kind === 'pool-resize' ? 'warm pool' : 'serving set';
        const skipped = pd.applied && paused;
        const prefix = skipped ? '(paused) ' : pd.applied ? '' : '(not applied) ';
        this.#host.decisions.record({
          kind: pd.kind,
          service,
          at: pd.at,
          what: `${prefix}${pd.kind}: ${noun} ${pd.from} → ${pd.to}`,
          why: pd.reason,
          inputs: { ...pd.inputs, confidence: r.confidence, policy: this.#spec.scaling.policy },
          outcome: skipped
            ? { status: 'skipped', detail: 'service paused' }
            : { status: pd.applied ? 'ok' : 'recorded' },
        });
        return;
      }
      case 'capacity':
        this.#host.decisions.record({
          kind: 'capacity',
          service,
          at: r.at,
          what: `capacity of one serving instance: ${r.perInstance.toFixed(1)} requests/s at 100 %`,
          why: `measured: median of the last ${r.samples.length} samples of the router's request rate over the serving instances' CPU utilisation (scaling.capacity is not set)${r.before !== undefined ? `; was ${r.before.toFixed(1)}` : ''}`,
          inputs: { samples: r.samples, at: r.at },
          outcome: { status: 'recorded' },
        });
        return;
      case 'shadow-alarm': {
        const s = r.signal;
        this.#host.decisions.record({
          kind: r.alarm ? 'shadow-warning' : 'shadow-clear',
          service,
          at: r.at,
          what: r.alarm
            ? `shadow and live diverge: ${(s.delta * 100).toFixed(0)} % (normalised)`
            : 'shadow and live agree again',
          why: `normalised shadow load ${s.shadowLoad.toFixed(3)} vs live ${s.liveLoad.toFixed(3)}${s.rate ? `; requests/s live ${s.rate.live.toFixed(1)} vs shadow ${s.rate.shadow.toFixed(1)} (scaled)` : ''} (threshold ${r.threshold})`,
          inputs: { ...s, at: r.at },
          outcome: { status: 'recorded' },
        });
        return;
      }
      case 'spike-shadow': {
        const create = r.change === 'shadow-create';
        const f = r.forecast;
        this.#host.decisions.record({
          kind: r.change,
          service,
          at: r.at,
          what: create
            ? 'create a shadow ahead of a forecast spike'
            : 'retire the shadow: the spike has passed',
          why: `forecast upper ${f.upper.toFixed(1)} requests/s within ${Math.round(f.horizonMs / 1000)} s ${create ? '>' : '≤'} ${r.capacityAtTarget.toFixed(1)} the ${r.serving} serving instance(s) handle at target`,
          inputs: { forecast: f, serving: r.serving, capacityAtTarget: r.perInstanceAtTarget },
          outcome: { status: 'recorded' },
        });
        return;
      }
    }
  }
}
