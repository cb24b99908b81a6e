// The scale test of `npm run bench -- scaling`: many services replaying real traces at once,
// each scaled by its own predictive scaler, on 1-minute ticks.
import { PredictiveController, simulate, traceToLoad } from '../../src/sim/index.js';
import type { PredictiveScalerOptions } from '../../src/policy/index.js';
import type { SimServiceSpec, Trace } from '../../src/sim/index.js';

/** Options of {@link runScaleTest}. */
export interface ScaleTestOptions {
  /** Total serving instances on average (spread over `services`). */
  instances: number;
  services: number;
  days: number;
  /** Traces to replay; service k replays trace k mod n, shifted by a different phase. */
  traces: readonly Trace[];
  /** Requests/s per instance. */
  capacity: number;
  targetUtilization: number;
  coldStartMs: number;
  warmStartMs: number;
  /** Forecast step: the forecaster sees one value per step. */
  forecastStepMs: number;
  /** Overrides of the predictive scaler's options (e.g. an ablation). @default none */
  predictive?: Partial<PredictiveScalerOptions>;
}

/** Outcome of {@link runScaleTest}. */
export interface ScaleTestResult {
  seconds: number;
  ticks: number;
  services: number;
  /** Mean serving instances over the run (all services). */
  meanInstances: number;
  peakInstances: number;
  sloViolationMin: number;
  decisions: number;
}

/** Runs the scale test; wall time covers the simulation only (not building the loads). */
export function runScaleTest(o: ScaleTestOptions): ScaleTestResult {
  const tickMs = 60_000;
  const ticks = Math.round((o.days * 86_400_000) / tickMs);
  const perService = o.instances / o.services;
  const specs: SimServiceSpec[] = [];
  for (let k = 0; k < o.services; k++) {
    const trace = o.traces[k % o.traces.length]!;
    let sum = 0;
    for (const v of trace.values) sum += v;
    const mean = sum / trace.values.length || 1;
    const scale = (perService * o.capacity * o.targetUtilization) / mean;
    const full = traceToLoad(trace, tickMs, scale).load;
    const load = new Float64Array(ticks);
    // A different phase per service (in whole hours), wrapping around the trace.
    const offset = ((k * 97) % Math.max(1, Math.floor(full.length / 60))) * 60;
    for (let i = 0; i < ticks; i++) load[i] = full[(offset + i) % full.length]!;
    specs.push({
      name: `svc-${k}`,
      load,
      controller: new PredictiveController({
        capacityPerInstance: o.capacity,
        targetUtilization: o.targetUtilization,
        stepMs: o.forecastStepMs,
        coldLeadMs: o.coldStartMs,
        warmLeadMs: o.warmStartMs,
        decisionIntervalMs: tickMs,
        guards: { maxCount: 100_000 },
        ...o.predictive,
      }),
    });
  }
  const t0 = performance.now();
  const results = simulate(specs, {
    tickMs,
    capacityPerInstance: o.capacity,
    coldStartMs: o.coldStartMs,
    warmStartMs: o.warmStartMs,
  });
  const seconds = (performance.now() - t0) / 1000;
  let hours = 0;
  let instanceHours = 0;
  let peak = 0;
  let slo = 0;
  let decisions = 0;
  for (const r of results) {
    hours = Math.max(hours, r.metrics.hours);
    instanceHours += r.metrics.instanceHours;
    peak += r.peakInstances;
    slo += r.metrics.sloViolationMin;
    decisions += r.metrics.actions;
  }
  return {
    seconds,
    ticks,
    services: o.services,
    meanInstances: instanceHours / (hours || 1),
    peakInstances: peak,
    sloViolationMin: slo,
    decisions,
  };
}
