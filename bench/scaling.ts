// Predictive scaling against reactive scaling with the same warm pool, the Kubernetes HPA, static
// peak provisioning and an oracle, replaying
// every crane CPU trace plus NAB's nyc_taxi, elb_request_count_8c0756 and realTweets series through
// the simulator with identical capacity and start latencies; then the scale test (10,000 instances
// × 7 days of 1-minute ticks). `npm run bench -- scaling [--quick]`; last line is one JSON object.
import { combineMetrics, POLICY_NAMES, readTraceFile, runScenario } from '../src/sim/index.js';
import type { ElasticityMetrics, PolicyName, ScenarioOptions, Trace } from '../src/sim/index.js';
import { runScaleTest } from './lib/scaling-scale.js';
import { aggregateOf, goalsOf, lossesToReactivePool, medianRatios } from './lib/scaling-report.js';
import type { TraceRun } from './lib/scaling-report.js';
import { scalingTracePaths, traceLabel, traceSet } from './lib/scaling-traces.js';

const quick = process.argv.includes('--quick');
// The simulated platform every policy gets (printed below).
const SETTINGS = {
  capacityPerInstance: 100,
  targetUtilization: 0.7,
  coldStartMs: 120_000,
  warmStartMs: 5_000,
  tickMs: 15_000,
  meanInstances: 10,
} satisfies ScenarioOptions;
const QUICK_DAYS = 4;

function truncate(t: Trace, days: number): Trace {
  const end = t.times[0]! + days * 86_400_000;
  let n = 0;
  while (n < t.times.length && t.times[n]! < end) n++;
  return { ...t, times: t.times.slice(0, n), values: t.values.slice(0, n) };
}

const f1 = (x: number): string => (Math.abs(x) >= 1000 ? x.toFixed(0) : x.toFixed(1));
const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : a > 0 ? 'inf' : '-');
const pad = (s: string, n: number): string => s.padStart(n);

const { paths, missing } = scalingTracePaths();
if (paths.length === 0) {
  process.stdout.write(
    `scaling: no traces found (bench/data or ../shared/data); missing ${missing.join(', ')}\n`,
  );
  process.stdout.write(`${JSON.stringify({ bench: 'scaling', error: 'no data' })}\n`);
  process.exit(1);
}
const t0 = performance.now();
process.stdout.write(
  `scaling: ${paths.length} traces${quick ? ` (quick: first ${QUICK_DAYS} days of each)` : ''}${missing.length ? `; missing ${missing.join(', ')}` : ''}\n` +
    `simulated platform, identical for every policy: ${SETTINGS.capacityPerInstance} req/s per instance, target utilisation ${SETTINGS.targetUtilization}, ` +
    `cold start ${SETTINGS.coldStartMs / 1000} s, warm echo promotion ${SETTINGS.warmStartMs / 1000} s (predictive and reactive-pool: they keep the warm pool, whose echoes cost their size), ` +
    `tick ${SETTINGS.tickMs / 1000} s (the HPA sync period), queue bound 30 s; each trace scaled so that its mean load needs ${SETTINGS.meanInstances} instances at the target\n` +
    `policies: predictive (src/policy PredictiveScaler: auto forecaster; max of the reactive rule and the forecast at the lead time — mean at the target, 70 % interval's upper bound at 100 %; ` +
    `scale-in held by the forecast (while confident instead of a fixed window; while not, below the window down to the forecast's upper bound); ` +
    `with a ready echo the serving set keeps what the forecast needs over a promotion and the warm pool what it needs over a cold start beyond that (warm hold), and, while unsure, the instances the scale-in window holds wait as warm echoes (warm window); warm pool sized by the forecast's peak and the 0.7-quantile of growth within a cold start learned from history, refilled by scale-ins), reactive-pool (AWS target tracking + a warm pool: the same step and warm pool, the forecast never counting for the serving set), hpa (Kubernetes autoscaling/v2 defaults on a per-pod load metric), ` +
    `static (peak / target), oracle (knows the load, same cold-start lead time)\n\n`,
);

// Ablations of the predictive policy, same runs otherwise: what each part adds (reactive-pool, in
// the main run, is the forecast ignored for the serving set).
const BEFORE_WARM_HOLD = { warmHold: false, unconfidentHold: false };
const ABLATIONS = {
  'predictive, no growth quantile in the pool': { poolGrowthQuantile: false },
  'predictive before issue 18 (coverage 0.8, no growth quantile)': {
    poolGrowthQuantile: false,
    coverage: 0.8,
    ...BEFORE_WARM_HOLD,
  },
  'predictive before the warm hold (scale-in as before)': BEFORE_WARM_HOLD,
  'predictive, no warm hold (scale-in held over a cold start)': { warmHold: false },
  'predictive, no warm window (the window holds serving instances)': { warmWindow: false },
  'predictive, no unconfident hold (the window while unsure)': { unconfidentHold: false },
  'predictive, serving set reactive (forecast sizes the pool only)': {
    minConfidence: 2,
    unconfidentHold: false,
  },
  'predictive, no warm pool (forecast + cold starts)': { warmPool: false },
  'predictive + seasonal scale-in hold (a candidate, off)': { seasonalHold: true },
} satisfies Record<string, ScenarioOptions['predictive']>;
process.stdout.write(
  `split (fixed; tuned on tuning only, goals judged on evaluation):\n  tuning:     ${paths
    .filter((p) => traceSet(p) === 'tuning')
    .map(traceLabel)
    .join(', ')}\n  evaluation: ${paths
    .filter((p) => traceSet(p) === 'evaluation')
    .map(traceLabel)
    .join(', ')}\n\n`,
);
const header = `${'trace'.padEnd(48)} ${pad('set', 4)} ${pad('days', 5)} ${pad('pool', 5)}  ${POLICY_NAMES.map((p) => `${p} slo/ih/act`.padStart(24)).join('')}  ${pad('slo P/R', 8)} ${pad('ih P/R', 7)} ${pad('slo P/H', 8)} ${pad('ih P/H', 7)} ${pad('ih P/O', 7)}\n`;
process.stdout.write(header);
const runs: TraceRun[] = [];
for (const path of paths) {
  let trace = await readTraceFile(path);
  if (quick) trace = truncate(trace, QUICK_DAYS);
  const r = runScenario(trace, { ...SETTINGS });
  const m = Object.fromEntries(POLICY_NAMES.map((p) => [p, r.results[p]!.metrics])) as Record<
    PolicyName,
    ElasticityMetrics
  >;
  const ablations: Record<string, ElasticityMetrics> = {};
  for (const [k, predictive] of Object.entries(ABLATIONS))
    ablations[k] = runScenario(trace, {
      ...SETTINGS,
      policies: ['predictive'],
      predictive,
    }).results.predictive!.metrics;
  const set = traceSet(path);
  runs.push({ label: traceLabel(path), set, m, ablations });
  const cells = POLICY_NAMES.map((p) =>
    `${f1(m[p].sloViolationMin)}/${f1(m[p].instanceHours)}/${m[p].actions}`.padStart(24),
  ).join('');
  const P = m.predictive;
  const R = m['reactive-pool'];
  const H = m.hpa;
  const O = m.oracle;
  process.stdout.write(
    `${traceLabel(path).padEnd(48)} ${pad(set === 'tuning' ? 'tune' : 'eval', 4)} ${pad((P.hours / 24).toFixed(1), 5)} ${pad(String(r.results.predictive!.promotions), 5)}  ${cells}  ${pad(ratio(P.sloViolationMin, R.sloViolationMin), 8)} ${pad(ratio(P.instanceHours, R.instanceHours), 7)} ${pad(ratio(P.sloViolationMin, H.sloViolationMin), 8)} ${pad(ratio(P.instanceHours, H.instanceHours), 7)} ${pad(ratio(P.instanceHours, O.instanceHours), 7)}\n`,
  );
}

const sets = {
  all: runs,
  tuning: runs.filter((r) => r.set === 'tuning'),
  evaluation: runs.filter((r) => r.set === 'evaluation'),
};
const fr = (x: number): string => (Number.isFinite(x) ? x.toFixed(3) : String(x));
for (const [name, rs] of Object.entries(sets)) {
  if (rs.length === 0) continue;
  const agg = aggregateOf(rs, POLICY_NAMES);
  process.stdout.write(
    `\n${name}: aggregate over ${rs.length} traces (sums; θ/τ/instability time-weighted %)\n`,
  );
  process.stdout.write(
    `${'policy'.padEnd(14)} ${pad('SLO-viol min', 13)} ${pad('inst-hours', 11)} ${pad('actions', 8)} ${pad('θU %', 7)} ${pad('θO %', 7)} ${pad('τU %', 7)} ${pad('τO %', 7)} ${pad('instab %', 9)} ${pad('dropped %', 10)}\n`,
  );
  for (const p of POLICY_NAMES) {
    const a = agg[p];
    process.stdout.write(
      `${p.padEnd(14)} ${pad(a.sloViolationMin.toFixed(0), 13)} ${pad(a.instanceHours.toFixed(0), 11)} ${pad(String(a.actions), 8)} ${pad(a.thetaU.toFixed(3), 7)} ${pad(a.thetaO.toFixed(1), 7)} ${pad(a.tauU.toFixed(2), 7)} ${pad(a.tauO.toFixed(1), 7)} ${pad(a.instability.toFixed(1), 9)} ${pad(a.droppedPct.toFixed(4), 10)}\n`,
    );
  }
  const md = medianRatios(rs);
  process.stdout.write(
    `median of per-trace ratios: SLO P/HPA ${fr(md.sloVsHpa)}, SLO P/reactive-pool ${fr(md.sloVsReactivePool)}, ih P/HPA ${fr(md.costVsHpa)}, ih P/reactive-pool ${fr(md.costVsReactivePool)}\n`,
  );
  process.stdout.write(
    `ablations (${name}; aggregate SLO-viol min and instance-hours ratios to reactive-pool, then to HPA; median SLO ratio to reactive-pool)\n`,
  );
  const R = agg['reactive-pool'];
  const H = agg.hpa;
  for (const k of ['predictive (everything)', ...Object.keys(ABLATIONS)]) {
    const pickA = (r: TraceRun): ElasticityMetrics =>
      k === 'predictive (everything)' ? r.m.predictive : r.ablations[k]!;
    const a = combineMetrics(rs.map(pickA));
    process.stdout.write(
      `  ${k.padEnd(64)} ${ratio(a.sloViolationMin, R.sloViolationMin).padStart(6)} ${ratio(a.instanceHours, R.instanceHours).padStart(6)}   ${ratio(a.sloViolationMin, H.sloViolationMin).padStart(6)} ${ratio(a.instanceHours, H.instanceHours).padStart(6)}   ${fr(medianRatios(rs, pickA).sloVsReactivePool).padStart(6)}\n`,
    );
  }
}
const goals = goalsOf(sets.evaluation, POLICY_NAMES, runs);
process.stdout.write(
  `\ngoals (evaluation set, ${sets.evaluation.length} traces the policy was not tuned on)\n`,
);
for (const g of goals)
  process.stdout.write(`  ${g.name.padEnd(52)} ${fr(g.value).padStart(7)}  ${g.met ? 'met' : 'NOT met'}\n`);
const losses = lossesToReactivePool(runs);
process.stdout.write(
  `  traces (all) where predictive is worse than reactive-pool on both: ${losses.length ? losses.join(', ') : 'none'}\n`,
);
const traceSeconds = (performance.now() - t0) / 1000;

// Scale test.
const traces: Trace[] = [];
for (const p of paths.filter((x) => x.includes('/crane/'))) traces.push(await readTraceFile(p));
const scaleDays = quick ? 1 : 7;
const scale = runScaleTest({
  instances: 10_000,
  services: 100,
  days: scaleDays,
  traces: traces.length ? traces : [await readTraceFile(paths[0]!)],
  capacity: SETTINGS.capacityPerInstance,
  targetUtilization: SETTINGS.targetUtilization,
  coldStartMs: SETTINGS.coldStartMs,
  warmStartMs: SETTINGS.warmStartMs,
  forecastStepMs: 300_000,
});
process.stdout.write(
  `\nscale: ${scale.services} services × ~100 instances (mean ${scale.meanInstances.toFixed(0)} instance equivalents provisioned, peak sum ${scale.peakInstances}), ` +
    `${scaleDays} days of 1-minute ticks (${scale.ticks} ticks), predictive scaler per service (forecast step 5 min): ${scale.seconds.toFixed(1)} s ` +
    `(goal < 60 s for 7 days); ${scale.decisions} scaling actions, ${scale.sloViolationMin.toFixed(0)} SLO-violation min\n`,
);
process.stdout.write(`traces took ${traceSeconds.toFixed(1)} s\n`);

const pick = (m: ElasticityMetrics) => ({
  sloViolationMin: Math.round(m.sloViolationMin * 10) / 10,
  instanceHours: Math.round(m.instanceHours * 10) / 10,
  actions: m.actions,
  thetaU: Math.round(m.thetaU * 1000) / 1000,
  thetaO: Math.round(m.thetaO * 1000) / 1000,
});
const r3 = (x: number): number | null => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : null);
const summary = (rs: readonly TraceRun[]) => {
  const a = aggregateOf(rs, POLICY_NAMES);
  const md = medianRatios(rs);
  return {
    aggregate: {
      predictive: pick(a.predictive),
      reactivePool: pick(a['reactive-pool']),
      hpa: pick(a.hpa),
      static: pick(a.static),
      oracle: pick(a.oracle),
    },
    median: {
      sloVsHpa: r3(md.sloVsHpa),
      sloVsReactivePool: r3(md.sloVsReactivePool),
      costVsHpa: r3(md.costVsHpa),
      costVsReactivePool: r3(md.costVsReactivePool),
    },
  };
};
process.stdout.write(
  `${JSON.stringify({
    bench: 'scaling',
    quick,
    ...summary(runs),
    split: {
      tuning: sets.tuning.map((r) => r.label),
      evaluation: sets.evaluation.map((r) => r.label),
    },
    evaluation: {
      ...summary(sets.evaluation),
      goals: Object.fromEntries(goals.map((g) => [g.name, { value: r3(g.value), met: g.met }])),
    },
    tuning: summary(sets.tuning),
    perTrace: runs.map((r) => ({
      trace: r.label,
      set: r.set,
      predictive: pick(r.m.predictive),
      reactivePool: pick(r.m['reactive-pool']),
      hpa: pick(r.m.hpa),
      oracle: pick(r.m.oracle),
    })),
    scale: { instances: 10_000, days: scaleDays, seconds: Math.round(scale.seconds * 10) / 10 },
  })}\n`,
);
