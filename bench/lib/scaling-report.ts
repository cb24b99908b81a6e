// Per-set summaries of `npm run bench -- scaling`: aggregates (sums), the median of per-trace
// ratios (so that one trace cannot carry the result) and the goals of issue 18.
import { combineMetrics } from '../../src/sim/index.js';
import type { ElasticityMetrics, PolicyName } from '../../src/sim/index.js';

/** One trace's outcome: every policy's metrics and every ablation's. */
export interface TraceRun {
  label: string;
  set: 'tuning' | 'evaluation';
  m: Record<PolicyName, ElasticityMetrics>;
  ablations: Record<string, ElasticityMetrics>;
}

/** a / b, with 0 / 0 = 1 (a tie) and x / 0 = ∞. */
export function ratioOf(a: number, b: number): number {
  if (b > 0) return a / b;
  return a > 0 ? Number.POSITIVE_INFINITY : 1;
}

/** Median of the values (mean of the middle two for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const k = s.length >> 1;
  return s.length % 2 ? s[k]! : (s[k - 1]! + s[k]!) / 2;
}

/** Medians of per-trace ratios of predictive (or an ablation) to the baselines. */
export interface MedianRatios {
  sloVsHpa: number;
  sloVsReactivePool: number;
  costVsHpa: number;
  costVsReactivePool: number;
}

/** The medians of `pick(run)`'s per-trace ratios to the HPA and reactive-pool. */
export function medianRatios(
  runs: readonly TraceRun[],
  pick: (r: TraceRun) => ElasticityMetrics = (r) => r.m.predictive,
): MedianRatios {
  const by = (f: (r: TraceRun) => number): number => median(runs.map(f));
  return {
    sloVsHpa: by((r) => ratioOf(pick(r).sloViolationMin, r.m.hpa.sloViolationMin)),
    sloVsReactivePool: by((r) => ratioOf(pick(r).sloViolationMin, r.m['reactive-pool'].sloViolationMin)),
    costVsHpa: by((r) => ratioOf(pick(r).instanceHours, r.m.hpa.instanceHours)),
    costVsReactivePool: by((r) => ratioOf(pick(r).instanceHours, r.m['reactive-pool'].instanceHours)),
  };
}

/** Aggregate (sums) of every policy over the runs. */
export function aggregateOf(
  runs: readonly TraceRun[],
  policies: readonly PolicyName[],
): Record<PolicyName, ElasticityMetrics> {
  return Object.fromEntries(policies.map((p) => [p, combineMetrics(runs.map((r) => r.m[p]))])) as Record<
    PolicyName,
    ElasticityMetrics
  >;
}

/** One goal: its name, the measured value, and whether it is met. */
export interface Goal {
  name: string;
  value: number;
  met: boolean;
}

/** Traces where predictive is worse than reactive-pool on both SLO-violation minutes and cost. */
export function lossesToReactivePool(runs: readonly TraceRun[]): string[] {
  return runs
    .filter(
      (r) =>
        r.m.predictive.sloViolationMin > r.m['reactive-pool'].sloViolationMin &&
        r.m.predictive.instanceHours > r.m['reactive-pool'].instanceHours,
    )
    .map((r) => r.label);
}

/**
 * The goals of issue 18 on a set of runs (aggregate and median of per-trace ratios); "no trace worse
 * than reactive-pool on both" is judged on `allRuns` (every trace, both sets).
 */
export function goalsOf(
  runs: readonly TraceRun[],
  policies: readonly PolicyName[],
  allRuns: readonly TraceRun[] = runs,
): Goal[] {
  const a = aggregateOf(runs, policies);
  const P = a.predictive;
  const R = a['reactive-pool'];
  const H = a.hpa;
  const O = a.oracle;
  const md = medianRatios(runs);
  const le = (name: string, value: number, bound: number): Goal => ({ name, value, met: value <= bound });
  return [
    le(
      'aggregate SLO-violation min / reactive-pool ≤ 0.5',
      ratioOf(P.sloViolationMin, R.sloViolationMin),
      0.5,
    ),
    le('aggregate instance-hours / reactive-pool ≤ 1.05', ratioOf(P.instanceHours, R.instanceHours), 1.05),
    le('median SLO-violation min / reactive-pool ≤ 0.5', md.sloVsReactivePool, 0.5),
    le('median instance-hours / reactive-pool ≤ 1.05', md.costVsReactivePool, 1.05),
    le('aggregate SLO-violation min / HPA ≤ 0.5', ratioOf(P.sloViolationMin, H.sloViolationMin), 0.5),
    le('aggregate instance-hours / HPA ≤ 1.1', ratioOf(P.instanceHours, H.instanceHours), 1.1),
    le('median SLO-violation min / HPA ≤ 0.5', md.sloVsHpa, 0.5),
    le('median instance-hours / HPA ≤ 1.1', md.costVsHpa, 1.1),
    le('traces (all) worse than reactive-pool on both = 0', lossesToReactivePool(allRuns).length, 0),
    le('aggregate instance-hours / oracle ≤ 1.15', ratioOf(P.instanceHours, O.instanceHours), 1.15),
    {
      name: 'aggregate actions / HPA < 1',
      value: ratioOf(P.actions, H.actions),
      met: P.actions < H.actions,
    },
  ];
}
