import { writeFile } from 'node:fs/promises';
import { ErrorCode, isUnderstudyError, UnderstudyError } from '../../errors/index.js';
import { POLICY_NAMES, readTraceFile, renderPlotSvg, runScenario } from '../../sim/index.js';
import type {
  PlotRun,
  PolicyName,
  ScenarioOptions,
  ScenarioResult,
  SimServiceResult,
} from '../../sim/index.js';
import { ExitCode, reportError } from '../exit-codes.js';
import { table } from '../output.js';

/** Options of `understudy sim`. */
export interface SimCommandOptions {
  /** CSV of `timestamp,value` (Unix seconds or ISO 8601; header optional). */
  trace: string;
  /** Policy to run, or `all` to compare the five. @default 'predictive' */
  policy?: PolicyName | 'all';
  /** Write an SVG of load, capacity and forecast band here. */
  plot?: string;
  /** @default 'table' */
  output?: 'table' | 'json';
  /** Requests/s per unit of the trace's value; omit to scale the trace's mean to `meanInstances`. */
  scale?: number;
  /** @default 10 */
  meanInstances?: number;
  /** Requests/s per instance. @default 100 */
  capacity?: number;
  /** @default 0.7 */
  targetUtilization?: number;
  /** @default 120000 */
  coldStartMs?: number;
  /** @default 5000 */
  warmStartMs?: number;
  /** @default 15000 */
  tickMs?: number;
  /** @default 0 */
  failureRatePerHour?: number;
  /** @default 1 */
  seed?: number;
  /** Print the first n decisions of each policy (table output). @default 0 */
  decisions?: number;
}

/** The benchmark's per-policy field names, plus a few more. */
export function metricsJson(r: SimServiceResult): Record<string, number> {
  const m = r.metrics;
  return {
    sloViolationMin: round(m.sloViolationMin),
    instanceHours: round(m.instanceHours),
    actions: m.actions,
    thetaU: round(m.thetaU),
    thetaO: round(m.thetaO),
    tauU: round(m.tauU),
    tauO: round(m.tauO),
    instability: round(m.instability),
    droppedPct: round(m.droppedPct, 4),
    meanQueueDelayMs: round(m.meanQueueDelayMs),
    hours: round(m.hours),
    promotions: r.promotions,
    poolActions: r.poolActions,
    failures: r.failures,
    peakInstances: r.peakInstances,
  };
}

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

function usage(message: string): never {
  throw new UnderstudyError(ErrorCode.Usage, message);
}

function positive(name: string, v: number | undefined, allowZero = false): void {
  if (v === undefined) return;
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0))
    usage(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${v}`);
}

/**
 * `understudy sim --trace FILE`: replays the trace through the simulator with the chosen policy
 * (or all five) and prints the elasticity metrics as a table or one JSON object; `--plot` writes
 * an SVG. Returns the exit code (2 for a bad flag or trace, naming file and line).
 */
export async function runSim(options: SimCommandOptions): Promise<number> {
  try {
    const policy = options.policy ?? 'predictive';
    if (policy !== 'all' && !POLICY_NAMES.includes(policy))
      usage(`--policy must be one of ${POLICY_NAMES.join(', ')}, all; got '${String(policy)}'`);
    positive('scale', options.scale);
    positive('mean-instances', options.meanInstances);
    positive('capacity', options.capacity);
    positive('cold-start', options.coldStartMs, true);
    positive('warm-start', options.warmStartMs, true);
    positive('tick', options.tickMs);
    positive('failure-rate', options.failureRatePerHour, true);
    if (
      options.targetUtilization !== undefined &&
      !(options.targetUtilization > 0 && options.targetUtilization <= 1)
    )
      usage(`--target-utilization must be in (0, 1], got ${options.targetUtilization}`);
    const trace = await readTraceFile(options.trace);
    const policies = policy === 'all' ? POLICY_NAMES : [policy];
    const so: ScenarioOptions = {
      policies,
      record: options.plot !== undefined,
      keepDecisions: options.decisions ?? 0,
    };
    if (options.scale !== undefined) so.scale = options.scale;
    if (options.meanInstances !== undefined) so.meanInstances = options.meanInstances;
    if (options.capacity !== undefined) so.capacityPerInstance = options.capacity;
    if (options.targetUtilization !== undefined) so.targetUtilization = options.targetUtilization;
    if (options.coldStartMs !== undefined) so.coldStartMs = options.coldStartMs;
    if (options.warmStartMs !== undefined) so.warmStartMs = options.warmStartMs;
    if (options.tickMs !== undefined) so.tickMs = options.tickMs;
    if (options.failureRatePerHour !== undefined) so.failureRatePerHour = options.failureRatePerHour;
    if (options.seed !== undefined) so.seed = options.seed;
    const result = runScenario(trace, so);
    if (options.plot) await writePlot(options.plot, result, policies);
    if ((options.output ?? 'table') === 'json') {
      const settings = result.settings;
      if (policy === 'all') {
        const per: Record<string, Record<string, number>> = {};
        for (const p of policies) per[p] = metricsJson(result.results[p]!);
        process.stdout.write(JSON.stringify({ trace: options.trace, settings, policies: per }) + '\n');
      } else {
        process.stdout.write(
          JSON.stringify({
            trace: options.trace,
            policy,
            ...metricsJson(result.results[policy]!),
            settings,
          }) + '\n',
        );
      }
    } else {
      printTable(result, policies, options.decisions ?? 0);
      if (options.plot) process.stdout.write(`plot written to ${options.plot}\n`);
    }
    return ExitCode.Ok;
  } catch (err) {
    if (isUnderstudyError(err, ErrorCode.PredictInput)) {
      process.stderr.write(`understudy: invalid trace: ${err.message}\n`);
      return ExitCode.Usage;
    }
    return reportError(err);
  }
}

function printTable(result: ScenarioResult, policies: readonly PolicyName[], decisions: number): void {
  const s = result.settings;
  process.stdout.write(
    `trace ${result.source}: ${(result.results[policies[0]!]!.metrics.hours / 24).toFixed(1)} days, mean ${s.meanLoad.toFixed(0)} req/s, peak ${s.peakLoad.toFixed(0)} req/s (×${s.scale.toPrecision(4)} per trace unit)\n` +
      `capacity ${s.capacityPerInstance} req/s per instance, target utilisation ${s.targetUtilization}, cold start ${s.coldStartMs / 1000}s, warm start ${s.warmStartMs / 1000}s, tick ${s.tickMs / 1000}s, forecast step ${s.forecastStepMs / 1000}s, static ${s.staticCount} instances\n\n`,
  );
  const rows = policies.map((p) => {
    const r = result.results[p]!;
    const m = r.metrics;
    return [
      p,
      m.sloViolationMin.toFixed(1),
      m.instanceHours.toFixed(1),
      String(m.actions),
      m.thetaU.toFixed(2),
      m.thetaO.toFixed(1),
      m.tauU.toFixed(2),
      m.tauO.toFixed(1),
      m.instability.toFixed(1),
      m.droppedPct.toFixed(3),
      m.meanQueueDelayMs.toFixed(0),
      String(r.promotions),
    ];
  });
  process.stdout.write(
    table(
      [
        'POLICY',
        'SLO-VIOL MIN',
        'INST-HOURS',
        'ACTIONS',
        'θU %',
        'θO %',
        'τU %',
        'τO %',
        'INSTAB %',
        'DROPPED %',
        'QUEUE MS',
        'PROMOTIONS',
      ],
      rows,
    ),
  );
  if (decisions > 0) {
    for (const p of policies) {
      const ds = result.results[p]!.decisions;
      if (ds.length === 0) continue;
      process.stdout.write(`\nfirst ${ds.length} decisions of ${p}:\n`);
      for (const d of ds)
        process.stdout.write(
          `  ${new Date(d.at).toISOString()} ${d.kind} ${d.from}→${d.to}${d.applied ? '' : ' (not applied)'}: ${d.reason}\n`,
        );
    }
  }
}

async function writePlot(
  path: string,
  result: ScenarioResult,
  policies: readonly PolicyName[],
): Promise<void> {
  // One policy, or the first compared with the HPA: more lines would not read at a glance.
  const order =
    policies.length === 1
      ? [...policies]
      : [policies[0]!, ...policies.filter((p) => p === 'hpa' && p !== policies[0])];
  const runs: PlotRun[] = order.map((p) => ({ label: p, series: result.results[p]!.series! }));
  const head = result.results[order[0]!]!.metrics;
  const s = result.settings;
  const svg = renderPlotSvg(runs, {
    title: `${result.source.split('/').pop()} — load, capacity and forecast`,
    subtitle: `${order[0]}: ${head.sloViolationMin.toFixed(0)} SLO-violation min, ${head.instanceHours.toFixed(0)} instance-hours, ${head.actions} actions · ${s.capacityPerInstance} req/s per instance, target ${s.targetUtilization}, cold start ${s.coldStartMs / 1000}s`,
  });
  try {
    await writeFile(path, svg);
  } catch (err) {
    throw new UnderstudyError(
      ErrorCode.Usage,
      `--plot ${path}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      { cause: err },
    );
  }
}
