import type { PredictiveScalerOptions, VerticalPolicyOptions } from '../policy/index.js';
import {
  HpaController,
  OracleController,
  PredictiveController,
  ReactivePoolController,
  StaticController,
} from './controllers.js';
import type { ScalingController } from './controllers.js';
import { simulate } from './simulator.js';
import type { SimServiceResult } from './simulator.js';
import type { Trace } from './trace.js';

/** The policies a scenario can compare. */
export type PolicyName = 'predictive' | 'reactive-pool' | 'hpa' | 'static' | 'oracle';

/** Every policy name, in report order. */
export const POLICY_NAMES: readonly PolicyName[] = ['predictive', 'reactive-pool', 'hpa', 'static', 'oracle'];

/** Options of {@link runScenario}. Every policy runs with the same capacity, start latencies and load. */
export interface ScenarioOptions {
  /** Policies to run. @default all five */
  policies?: readonly PolicyName[];
  /** Requests/s one instance serves at 100 %. @default 100 */
  capacityPerInstance?: number;
  /** Utilisation every policy provisions for (the HPA's target). @default 0.7 */
  targetUtilization?: number;
  /** Cold start to serving (ms). @default 120000 */
  coldStartMs?: number;
  /** Warm echo promotion to serving (ms). @default 5000 */
  warmStartMs?: number;
  /** Virtual clock step (ms). @default 15000 */
  tickMs?: number;
  /** Requests/s per unit of the trace's value; omit to scale the trace's mean to `meanInstances`. */
  scale?: number;
  /** With no `scale`: the trace's mean load needs this many instances at the target utilisation. @default 10 */
  meanInstances?: number;
  /** Upper bound of every policy's serving count. @default 10000 */
  maxInstances?: number;
  /** Probability per instance-hour that a ready instance fails. @default 0 */
  failureRatePerHour?: number;
  /** @default 1 */
  seed?: number;
  /** Record per-tick series for plots. @default false */
  record?: boolean;
  /** Keep up to this many decisions per policy. @default 0 */
  keepDecisions?: number;
  /**
   * Echo sizes (seed 000): echoes start at `echoMinFraction` of an instance and grow with the
   * serving set's utilisation above `echoGrowFrom`; they cost their size.
   * @default {fullCpuMillis: 1000, fullMemoryMiB: 1024, echoMinFraction: 0.1, echoGrowFrom: targetUtilization}
   */
  echoSizing?: VerticalPolicyOptions;
  /** Overrides for the predictive scaler (also those of `reactive-pool`, which then ignores the forecast). */
  predictive?: Partial<PredictiveScalerOptions>;
}

/** The numbers a scenario ran with (reported alongside its results). */
export interface ScenarioSettings {
  capacityPerInstance: number;
  targetUtilization: number;
  coldStartMs: number;
  warmStartMs: number;
  tickMs: number;
  scale: number;
  forecastStepMs: number;
  staticCount: number;
  peakLoad: number;
  meanLoad: number;
}

/** Outcome of {@link runScenario}. */
export interface ScenarioResult {
  source: string;
  settings: ScenarioSettings;
  results: Partial<Record<PolicyName, SimServiceResult>>;
}

/** The trace's value at each tick (step-hold: the latest sample at or before the tick), times `scale`. */
export function traceToLoad(
  trace: Trace,
  tickMs: number,
  scale: number,
): { load: Float64Array; startMs: number } {
  const startMs = trace.times[0]!;
  const end = trace.times[trace.times.length - 1]! + trace.stepMs;
  const n = Math.max(1, Math.floor((end - startMs) / tickMs));
  const load = new Float64Array(n);
  let j = 0;
  for (let i = 0; i < n; i++) {
    const t = startMs + i * tickMs;
    while (j + 1 < trace.times.length && trace.times[j + 1]! <= t) j++;
    load[i] = trace.values[j]! * scale;
  }
  return { load, startMs };
}

/** Runs the chosen policies over one trace with identical simulated capacity and start latencies. */
export function runScenario(trace: Trace, options: ScenarioOptions = {}): ScenarioResult {
  const C = options.capacityPerInstance ?? 100;
  const u = options.targetUtilization ?? 0.7;
  const coldStartMs = options.coldStartMs ?? 120_000;
  const warmStartMs = options.warmStartMs ?? 5_000;
  const tickMs = options.tickMs ?? 15_000;
  const maxInstances = options.maxInstances ?? 10_000;
  let sum = 0;
  for (const v of trace.values) sum += v;
  const meanRaw = sum / trace.values.length;
  const scale = options.scale ?? (meanRaw > 0 ? ((options.meanInstances ?? 10) * C * u) / meanRaw : 1);
  const { load, startMs } = traceToLoad(trace, tickMs, scale);
  let peak = 0;
  let total = 0;
  for (const v of load) {
    peak = Math.max(peak, v);
    total += v;
  }
  const staticCount = Math.min(maxInstances, Math.max(1, Math.ceil(peak / (C * u) - 1e-9)));
  const forecastStepMs = Math.max(tickMs, Math.round(Math.max(60_000, trace.stepMs) / tickMs) * tickMs);
  const settings: ScenarioSettings = {
    capacityPerInstance: C,
    targetUtilization: u,
    coldStartMs,
    warmStartMs,
    tickMs,
    scale,
    forecastStepMs,
    staticCount,
    peakLoad: peak,
    meanLoad: total / load.length,
  };
  // predictive and reactive-pool: the same scaler options (reactive-pool ignores the forecast).
  const scalerOptions: PredictiveScalerOptions = {
    capacityPerInstance: C,
    targetUtilization: u,
    stepMs: forecastStepMs,
    coldLeadMs: coldStartMs,
    warmLeadMs: warmStartMs,
    decisionIntervalMs: tickMs,
    guards: { maxCount: maxInstances },
    ...options.predictive,
  };
  const make = (p: PolicyName): ScalingController => {
    switch (p) {
      case 'predictive':
        return new PredictiveController(scalerOptions);
      case 'reactive-pool':
        return new ReactivePoolController(scalerOptions);
      case 'hpa':
        return new HpaController(C, { target: u, maxReplicas: maxInstances });
      case 'static':
        return new StaticController(staticCount);
      case 'oracle':
        return new OracleController(load, C, u, Math.ceil(coldStartMs / tickMs));
    }
  };
  const results: Partial<Record<PolicyName, SimServiceResult>> = {};
  for (const p of options.policies ?? POLICY_NAMES) {
    const [r] = simulate(
      [
        {
          name: trace.source,
          load,
          controller: make(p),
          ...(p === 'static' ? { initial: staticCount } : {}),
        },
      ],
      {
        tickMs,
        startMs,
        capacityPerInstance: C,
        coldStartMs,
        warmStartMs,
        failureRatePerHour: options.failureRatePerHour ?? 0,
        seed: options.seed ?? 1,
        record: options.record ?? false,
        keepDecisions: options.keepDecisions ?? 0,
        echoSizing: options.echoSizing ?? {
          fullCpuMillis: 1000,
          fullMemoryMiB: 1024,
          echoMinFraction: 0.1,
          echoGrowFrom: u,
        },
      },
    );
    results[p] = r!;
  }
  return { source: trace.source, settings, results };
}
