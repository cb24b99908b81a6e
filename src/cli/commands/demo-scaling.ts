import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { ControlDecision, ServiceView } from '../../control/index.js';
import { readTraceFile, renderPlotSvg } from '../../sim/index.js';
import type { Embedded } from '../embedded.js';

/** Options of the scaling part of `understudy demo`. */
export interface ScalingDemoOptions {
  /** Days of the trace fed to the forecaster as history before the live replay of the rest. */
  historyDays: number;
  /** Requests/s at the trace's peak. */
  peakRps: number;
  /** CPU each request costs on the example (ms). */
  workMs: number;
}

/** What the demo learned, for its summary and exit code. */
export interface ScalingDemoResult {
  requests: number;
  errors: number;
  /** Steps in which the load exceeded the ready serving capacity at 100 %. */
  overloadSteps: number;
  steps: number;
  scaleOuts: number;
  /** Scale-outs the forecast asked for before the reactive rule did. */
  predictiveScaleOuts: number;
  /** Lead of each predictive scale-out: time until the load first needed it (s); NaN if it never did. */
  leadsS: number[];
  promotions: number;
  coldStarts: number;
  plotPath: string;
}

export function trafficPath(): string {
  return fileURLToPath(new URL('../../../examples/api/traffic.csv', import.meta.url));
}

const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0);

/**
 * Four weekdays of New York taxi traffic (examples/api/traffic.csv): the first days are handed to the
 * forecaster as history (as a metrics system would), the last is replayed live, one half-hour per
 * forecast step of the spec, against examples/api behind the router with predictive scaling on: one line
 * per trace hour, the decisions as they happen, and at the end how many scale-outs the forecast made
 * before the load needed them, and a picture.
 */
export async function runScalingDemo(
  e: Embedded,
  options: ScalingDemoOptions,
  signal: AbortSignal,
  out: (line: string) => void,
): Promise<ScalingDemoResult> {
  const trace = await readTraceFile(trafficPath());
  let max = 0;
  for (const v of trace.values) max = Math.max(max, v);
  const all = [...trace.values].map((v) => (v / max) * options.peakRps);
  const svc = async (): Promise<ServiceView | undefined> =>
    (await e.control.services()).find((s) => s.name === 'api');
  const first = await svc();
  const base = `http://${first?.dataPlane?.address ?? ''}`;
  const capacity = first?.scaling?.capacity?.perInstance ?? 0;
  const target = first?.scaling?.target ?? 1;
  const stepMs = first?.scaling?.stepMs ?? 1000;
  const perDay = Math.round(86_400_000 / trace.stepMs);
  const history = all.slice(0, options.historyDays * perDay);
  const rates = all.slice(history.length);
  // The replay starts on a step boundary of the forecaster, right after the history that ends there.
  const started = Math.ceil((Date.now() + 100) / stepMs) * stepMs;
  await new Promise((r) => setTimeout(r, started - Date.now()));
  const taken = e.control.importLoadHistory(
    'api',
    history.map((load, k) => ({ at: started - (history.length - k) * stepMs + stepMs / 2, load })),
  );
  out(
    `demo: ${taken} half-hours (${options.historyDays} days) of New York taxi traffic (${trace.source}) given to the forecaster as history; now the next day live, one half-hour per ${stepMs} ms, peak ${options.peakRps} requests/s of ${options.workMs} ms CPU each, through ${base}`,
  );
  out(
    `demo: each serving instance handles ${capacity} requests/s at 100 % (scaling target ${Math.round(target * 100)} %); a warm echo joins in milliseconds, a cold start takes seconds`,
  );
  const dispatcher = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  const result: ScalingDemoResult = {
    requests: 0,
    errors: 0,
    overloadSteps: 0,
    steps: 0,
    scaleOuts: 0,
    predictiveScaleOuts: 0,
    leadsS: [],
    promotions: 0,
    coldStarts: 0,
    plotPath: join(e.dataDir, 'scaling.svg'),
  };
  const n = rates.length;
  const series = {
    // On the trace's own clock: one point per half-hour of the replayed day.
    tickMs: trace.stepMs,
    startMs: trace.times[history.length] ?? 0,
    load: new Float64Array(n),
    capacity: new Float64Array(n),
    forecastLower: new Float64Array(n).fill(Number.NaN),
    forecastUpper: new Float64Array(n).fill(Number.NaN),
    pool: new Float64Array(n),
  };
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    try {
      const res = await request(`${base}/work?ms=${options.workMs}`, { dispatcher });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
      latencies.push(performance.now() - t0);
    } catch {
      result.errors++;
    }
    result.requests++;
  };
  const servingAt: number[] = [];
  const hoursOffset = history.length;
  for (let step = 0; step < n && !signal.aborted; step++) {
    const rate = rates[step] ?? 0;
    const stepStart = started + step * stepMs;
    let sent = 0;
    while (Date.now() < stepStart + stepMs && !signal.aborted) {
      const due = Math.floor(((Date.now() - stepStart) / 1000) * rate);
      for (; sent < due; sent++) {
        const p = one();
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    const view = await svc();
    const serving = view?.dataPlane?.serving.length ?? 0;
    servingAt.push(serving);
    series.load[step] = rate;
    series.capacity[step] = serving * capacity;
    series.pool[step] = view?.instances.filter((i) => i.role === 'echo' && i.phase === 'running').length ?? 0;
    const f = view?.scaling?.forecast;
    if (f) {
      series.forecastLower[step] = f.lower;
      series.forecastUpper[step] = f.upper;
    }
    if (rate > serving * capacity) result.overloadSteps++;
    result.steps++;
    if (step % 2 === 1) {
      const sorted = latencies.splice(0).sort((a, b) => a - b);
      const t = trace.times[hoursOffset + step] ?? 0;
      const clock = new Date(t).toISOString().slice(5, 16).replace('T', ' ');
      out(
        `  ${clock}  load ${rate.toFixed(0).padStart(4)} req/s  serving ${serving} (capacity ${(serving * capacity).toFixed(0).padStart(4)})  warm ${series.pool[step]}  forecast ${f ? `${f.mean.toFixed(0)} [${f.lower.toFixed(0)}–${f.upper.toFixed(0)}]` : '—'}  conf ${view?.scaling?.confidence?.toFixed(2) ?? '—'}  p99 ${percentile(sorted, 99).toFixed(0)} ms  errors ${result.errors}`,
      );
    }
  }
  await Promise.allSettled(inFlight);
  await dispatcher.close();
  const decisions = await e.control.decisions.list({ service: 'api', limit: 100_000 });
  summarise(decisions, rates, servingAt, capacity * target, started, stepMs, result);
  writeFileSync(
    result.plotPath,
    renderPlotSvg([{ label: 'live predictive', series }], {
      title:
        'Understudy live: examples/api under a day of New York taxi traffic (compressed), after three days of history',
      subtitle: `${result.scaleOuts} scale-outs (${result.predictiveScaleOuts} ahead of the load), ${result.promotions} warm-echo promotions, ${result.overloadSteps}/${result.steps} half-hours over capacity`,
    }),
  );
  return result;
}

/**
 * Counts scale-outs, and for each one the forecast led, how long before the load needed it it landed:
 * the time until the load first exceeded what the serving set before it carried at the target (when
 * the reactive rule would have asked for it).
 */
function summarise(
  decisions: ControlDecision[],
  rates: number[],
  servingAt: number[],
  perInstanceAtTarget: number,
  started: number,
  stepMs: number,
  result: ScalingDemoResult,
): void {
  for (const d of decisions) {
    if (d.kind === 'promote-echo' && d.outcome.status === 'ok') result.promotions++;
    if (d.kind === 'serving') result.coldStarts++;
    if (d.kind !== 'scale-out' || d.outcome.status !== 'ok' || d.at < started) continue;
    result.scaleOuts++;
    const reactive = Number(d.inputs['reactive'] ?? 0);
    const predictive = Number(d.inputs['predictive'] ?? 0);
    if (!(predictive > reactive)) continue;
    result.predictiveScaleOuts++;
    // The count before this decision: when did the load first exceed what it could carry at 100 %?
    const step = Math.max(0, Math.floor((d.at - started) / stepMs));
    const before = servingAt[Math.max(0, step - 1)] ?? 1;
    let need = Number.NaN;
    for (let k = step; k < rates.length; k++) {
      if ((rates[k] ?? 0) > before * perInstanceAtTarget) {
        need = ((k - step) * stepMs) / 1000;
        break;
      }
    }
    result.leadsS.push(need);
  }
}
