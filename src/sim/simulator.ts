import { createRandom, randomNormal } from '../predict/index.js';
import type { Random } from '../predict/index.js';
import { echoSizeFraction, planScaleOut, resolveVerticalPolicyOptions } from '../policy/index.js';
import type { Decision, ResolvedVerticalPolicyOptions, VerticalPolicyOptions } from '../policy/index.js';
import type { ScalingController, ServiceView } from './controllers.js';
import { ElasticityAccumulator } from './elasticity-metrics.js';
import type { ElasticityMetrics } from './elasticity-metrics.js';

/** Options of {@link simulate}. */
export interface SimulationOptions {
  /** Virtual clock step (ms). @default 15000 (the HPA sync period) */
  tickMs?: number;
  /** Virtual time of tick 0 (ms). @default 0 */
  startMs?: number;
  /** Requests/s one instance serves. @default 100 */
  capacityPerInstance?: number;
  /** Time from a cold start to serving (ms). @default 120000 */
  coldStartMs?: number;
  /** Time from promoting a warm echo to serving (ms). @default 5000 */
  warmStartMs?: number;
  /** Queue bound: requests waiting longer than this (at full capacity) are dropped (ms). @default 30000 */
  queueLimitMs?: number;
  /** Probability per instance-hour that a ready serving instance fails. @default 0 */
  failureRatePerHour?: number;
  /** Seed of the failure draws. @default 1 */
  seed?: number;
  /** Echo sizes (seed 000): echoes cost their size fraction of an instance. @default {fullCpuMillis: 1000, fullMemoryMiB: 1024} */
  echoSizing?: VerticalPolicyOptions;
  /** Record per-tick series (load, capacity, forecast band) for plots. @default false */
  record?: boolean;
  /** Keep at most this many decisions per service. @default 0 */
  keepDecisions?: number;
}

/** One simulated service: its load per tick and the controller that scales it. */
export interface SimServiceSpec {
  name: string;
  /** Requests/s arriving in each tick; the run lasts `load.length` ticks. */
  load: Float64Array;
  controller: ScalingController;
  /** Serving instances at tick 0 (ready). @default what the first tick's load needs at 70 % */
  initial?: number;
}

/** Per-tick series of one service (when `record` is set). */
export interface SimSeries {
  tickMs: number;
  startMs: number;
  load: Float64Array;
  /** Ready serving capacity (requests/s). */
  capacity: Float64Array;
  /** Forecast band at the serving horizon (NaN where none). */
  forecastLower: Float64Array;
  forecastUpper: Float64Array;
  /** Echoes in the warm pool. */
  pool: Float64Array;
}

/** Result for one service. */
export interface SimServiceResult {
  name: string;
  controller: string;
  metrics: ElasticityMetrics;
  /** Ready instances that failed. */
  failures: number;
  /** Warm echoes promoted into the serving set. */
  promotions: number;
  /** Serving instances moved back into the warm pool by a scale-in. */
  demotions: number;
  /** Warm-pool resizes. */
  poolActions: number;
  /** Most serving instances at once. */
  peakInstances: number;
  series?: SimSeries;
  decisions: Decision[];
}

interface Batch {
  readyAt: number;
  n: number;
}

interface Svc {
  spec: SimServiceSpec;
  acc: ElasticityAccumulator;
  ready: number;
  starting: Batch[];
  poolReady: number;
  poolStarting: Batch[];
  backlog: number;
  lastLoad: number;
  failures: number;
  promotions: number;
  demotions: number;
  poolActions: number;
  peak: number;
  series?: SimSeries;
  decisions: Decision[];
}

const sumN = (b: readonly Batch[]): number => {
  let s = 0;
  for (const x of b) s += x.n;
  return s;
};

function mature(list: Batch[], now: number): number {
  let n = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    if (list[i]!.readyAt <= now) {
      n += list[i]!.n;
      list.splice(i, 1);
    }
  }
  return n;
}

/** Removes up to `n` from the batches, latest first; returns how many were removed. */
function cancelLatest(list: Batch[], n: number): number {
  let left = n;
  list.sort((a, b) => a.readyAt - b.readyAt);
  while (left > 0 && list.length > 0) {
    const last = list[list.length - 1]!;
    const k = Math.min(left, last.n);
    last.n -= k;
    left -= k;
    if (last.n === 0) list.pop();
  }
  return n - left;
}

function poisson(random: Random, mean: number): number {
  if (mean <= 0) return 0;
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * randomNormal(random)));
  const l = Math.exp(-mean);
  let k = 0;
  let p = random();
  while (p > l) {
    k++;
    p *= random();
  }
  return k;
}

/**
 * Runs a discrete-event simulation on a virtual clock: every tick, starting instances and echoes
 * that reached their ready time join, ready instances may fail, the tick's load is served by the
 * ready capacity through a bounded queue (overload becomes queueing delay, then dropped requests),
 * the elasticity metrics are accumulated, and each service's controller decides; scale-outs
 * promote ready echoes first (warm start), the rest start cold; scale-ins cancel starting
 * instances first, and released ready instances refill the warm pool up to its wanted size. O(services) per tick, independent of request counts. Deterministic for a seed.
 */
export function simulate(
  services: readonly SimServiceSpec[],
  options: SimulationOptions = {},
): SimServiceResult[] {
  const tickMs = options.tickMs ?? 15_000;
  const startMs = options.startMs ?? 0;
  const C = options.capacityPerInstance ?? 100;
  const coldMs = options.coldStartMs ?? 120_000;
  const warmMs = options.warmStartMs ?? 5_000;
  const queueS = (options.queueLimitMs ?? 30_000) / 1000;
  const failP = ((options.failureRatePerHour ?? 0) * tickMs) / 3_600_000;
  const keep = options.keepDecisions ?? 0;
  const sizing: ResolvedVerticalPolicyOptions = resolveVerticalPolicyOptions(
    options.echoSizing ?? { fullCpuMillis: 1000, fullMemoryMiB: 1024 },
  );
  const random = createRandom(options.seed ?? 1);
  const dt = tickMs / 1000;
  const svcs: Svc[] = services.map((spec) => {
    const first = spec.load[0] ?? 0;
    const initial = spec.initial ?? Math.max(1, Math.ceil(first / (C * 0.7)));
    const s: Svc = {
      spec,
      acc: new ElasticityAccumulator(),
      ready: initial,
      starting: [],
      poolReady: 0,
      poolStarting: [],
      backlog: 0,
      lastLoad: first,
      failures: 0,
      promotions: 0,
      demotions: 0,
      poolActions: 0,
      peak: initial,
      decisions: [],
    };
    if (options.record) {
      const n = spec.load.length;
      s.series = {
        tickMs,
        startMs,
        load: new Float64Array(n),
        capacity: new Float64Array(n),
        forecastLower: new Float64Array(n).fill(Number.NaN),
        forecastUpper: new Float64Array(n).fill(Number.NaN),
        pool: new Float64Array(n),
      };
    }
    return s;
  });
  const ticks = services.reduce((m, s) => Math.max(m, s.load.length), 0);
  for (let i = 0; i < ticks; i++) {
    const now = startMs + i * tickMs;
    for (const s of svcs) {
      if (i >= s.spec.load.length) continue;
      if (s.starting.length) s.ready += mature(s.starting, now);
      if (s.poolStarting.length) s.poolReady += mature(s.poolStarting, now);
      if (failP > 0 && s.ready > 0) {
        const f = Math.min(s.ready, poisson(random, s.ready * failP));
        s.ready -= f;
        s.failures += f;
      }
      // Serve the tick's arrivals through a bounded queue.
      const load = s.spec.load[i]!;
      const cap = s.ready * C;
      const arrived = load * dt;
      const work = s.backlog + arrived;
      const served = Math.min(work, cap * dt);
      let backlog = work - served;
      const maxBacklog = cap * queueS;
      const dropped = backlog > maxBacklog ? backlog - maxBacklog : 0;
      backlog -= dropped;
      s.backlog = backlog;
      const delayMs = cap > 0 ? (backlog / cap) * 1000 : 0;
      const startingN = sumN(s.starting);
      const poolN = s.poolReady + sumN(s.poolStarting);
      const util = cap > 0 ? load / cap : 1;
      const demand = Math.max(1, Math.ceil(load / C - 1e-9));
      const cost = s.ready + startingN + poolN * echoSizeFraction(sizing, util);
      s.acc.add(tickMs, demand, s.ready, cost, arrived, served, dropped, delayMs);
      if (s.series) {
        s.series.load[i] = load;
        s.series.capacity[i] = cap;
        s.series.pool[i] = poolN;
      }
      // Decide.
      const view: ServiceView = {
        ready: s.ready,
        starting: startingN,
        poolReady: s.poolReady,
        poolStarting: poolN - s.poolReady,
        load,
        tick: i,
      };
      const out = s.spec.controller.decide(now, view);
      if (s.series && out.forecast) {
        s.series.forecastLower[i] = out.forecast.lower;
        s.series.forecastUpper[i] = out.forecast.upper;
      }
      if (keep > 0 && out.decisions)
        for (const d of out.decisions) if (s.decisions.length < keep) s.decisions.push(d);
      const total = s.ready + startingN;
      const want = Math.max(0, Math.floor(out.serving));
      if (want !== total) s.acc.actions++;
      if (want > total) {
        const plan = planScaleOut(want - total, s.poolReady);
        if (plan.promote > 0) {
          s.poolReady -= plan.promote;
          s.promotions += plan.promote;
          s.starting.push({ readyAt: now + warmMs, n: plan.promote });
        }
        if (plan.cold > 0) s.starting.push({ readyAt: now + coldMs, n: plan.cold });
      }
      let released = 0;
      if (want < total) {
        const left = total - want - cancelLatest(s.starting, total - want);
        released = Math.min(left, s.ready);
        s.ready -= released;
      }
      const poolWant = Math.max(0, Math.floor(out.pool ?? 0));
      let poolNow = s.poolReady + sumN(s.poolStarting);
      // Released serving instances go back into the warm pool while it wants more echoes (as the
      // live autoscaler demotes them): ready at once, at an echo's size.
      if (released > 0 && poolWant > poolNow) {
        const k = Math.min(released, poolWant - poolNow);
        s.poolReady += k;
        s.demotions += k;
        poolNow += k;
      }
      if (poolWant !== poolNow) s.poolActions++;
      if (poolWant > poolNow) s.poolStarting.push({ readyAt: now + coldMs, n: poolWant - poolNow });
      else if (poolWant < poolNow) {
        const left = poolNow - poolWant - cancelLatest(s.poolStarting, poolNow - poolWant);
        s.poolReady -= Math.min(left, s.poolReady);
      }
      s.peak = Math.max(s.peak, s.ready + sumN(s.starting));
    }
  }
  return svcs.map((s) => ({
    name: s.spec.name,
    controller: s.spec.controller.name,
    metrics: s.acc.result(),
    failures: s.failures,
    promotions: s.promotions,
    demotions: s.demotions,
    poolActions: s.poolActions,
    peakInstances: s.peak,
    decisions: s.decisions,
    ...(s.series ? { series: s.series } : {}),
  }));
}
