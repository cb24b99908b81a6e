// Rolling-origin forecast evaluation on the crane CPU traces and NAB's realAWSCloudwatch,
// realKnownCause and realTraffic series, horizons 1/5/15/60 steps. Understudy's auto forecaster
// against last-value and seasonal-naive baselines in the same run.
// `npm run bench -- forecast [--quick]`; last line is one JSON object.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createAutoForecaster,
  createLastValueForecaster,
  createSeasonalNaiveForecaster,
} from '../src/predict/index.js';
import type { Forecaster } from '../src/predict/index.js';
import { craneRoot, loadNabSeries, nabRoot, readCsv } from './lib/nab-data.js';

const quick = process.argv.includes('--quick');
const HORIZONS = [1, 5, 15, 60] as const;
const COVERAGE = 0.9;

interface Series {
  name: string;
  values: number[];
  /** Daily season in steps, from the median sampling step. */
  period: number;
}

function medianStep(ts: readonly number[]): number {
  const d: number[] = [];
  for (let i = 1; i < ts.length; i++) d.push(ts[i]! - ts[i - 1]!);
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)] ?? 60_000;
}

function loadSeries(): Series[] {
  const out: Series[] = [];
  const crane = craneRoot();
  if (crane) {
    for (const f of readdirSync(crane)
      .filter((x) => x.endsWith('.csv'))
      .sort()) {
      const { keys, values } = readCsv(join(crane, f));
      const ts = keys.map((k) => Number(k) * 1000);
      out.push({ name: `crane/${f}`, values, period: Math.round(86_400_000 / medianStep(ts)) });
    }
  }
  const nab = nabRoot();
  if (nab) {
    for (const s of loadNabSeries(nab, ['realAWSCloudwatch', 'realKnownCause', 'realTraffic'])) {
      out.push({ name: s.name, values: s.values, period: Math.round(86_400_000 / medianStep(s.timestamps)) });
    }
  }
  return out;
}

interface Acc {
  absErr: number[];
  smape: number[];
  covered: number[];
  n: number[];
}

const newAcc = (): Acc => ({
  absErr: HORIZONS.map(() => 0),
  smape: HORIZONS.map(() => 0),
  covered: HORIZONS.map(() => 0),
  n: HORIZONS.map(() => 0),
});

interface SeriesResult {
  name: string;
  period: number;
  detected: number;
  mase: Record<string, number[]>;
  smape: number[];
  coverage: number[];
  coverageBaselines: Record<string, number[]>;
}

function evaluate(s: Series): SeriesResult {
  const y = s.values;
  const n = y.length;
  const m = Math.max(2, Math.min(s.period, Math.floor(n / 4)));
  // MASE scale: in-sample one-step seasonal-naive MAE over the first half (the training part).
  const trainEnd = Math.floor(n / 2);
  let scaleSum = 0;
  let scaleN = 0;
  for (let t = m; t < trainEnd; t++) {
    scaleSum += Math.abs(y[t]! - y[t - m]!);
    scaleN++;
  }
  let scale = scaleN > 0 ? scaleSum / scaleN : 0;
  if (!(scale > 0)) {
    for (let t = 1; t < trainEnd; t++) scale += Math.abs(y[t]! - y[t - 1]!);
    scale = scale / Math.max(1, trainEnd - 1) || 1;
  }
  const methods: Record<string, Forecaster> = {
    understudy: createAutoForecaster(),
    lastValue: createLastValueForecaster(),
    seasonalNaive: createSeasonalNaiveForecaster(m, { capacity: Math.max(3072, m + 64) }),
  };
  const acc: Record<string, Acc> = { understudy: newAcc(), lastValue: newAcc(), seasonalNaive: newAcc() };
  const maxH = HORIZONS[HORIZONS.length - 1]!;
  const origins = quick ? 40 : 200;
  const stride = Math.max(1, Math.floor((n - trainEnd - maxH) / origins));
  for (let t = 0; t < n; t++) {
    for (const f of Object.values(methods)) f.update(t, y[t]!);
    if (t >= trainEnd && t + maxH < n && (t - trainEnd) % stride === 0) {
      for (const [name, f] of Object.entries(methods)) {
        const fc = f.forecast(maxH, COVERAGE);
        const a = acc[name]!;
        HORIZONS.forEach((h, i) => {
          const p = fc[h - 1]!;
          const actual = y[t + h]!;
          const e = Math.abs(actual - p.mean);
          a.absErr[i] = a.absErr[i]! + e;
          const den = Math.abs(actual) + Math.abs(p.mean);
          a.smape[i] = a.smape[i]! + (den > 0 ? (200 * e) / den : 0);
          a.covered[i] = a.covered[i]! + (actual >= p.lower && actual <= p.upper ? 1 : 0);
          a.n[i] = a.n[i]! + 1;
        });
      }
    }
  }
  const mase: Record<string, number[]> = {};
  const coverageBaselines: Record<string, number[]> = {};
  for (const [name, a] of Object.entries(acc)) {
    mase[name] = a.absErr.map((e, i) => e / Math.max(1, a.n[i]!) / scale);
    coverageBaselines[name] = a.covered.map((c, i) => c / Math.max(1, a.n[i]!));
  }
  const u = acc.understudy!;
  const auto = methods.understudy as ReturnType<typeof createAutoForecaster>;
  return {
    name: s.name,
    period: m,
    detected: auto.period,
    mase,
    smape: u.smape.map((v, i) => v / Math.max(1, u.n[i]!)),
    coverage: u.covered.map((c, i) => c / Math.max(1, u.n[i]!)),
    coverageBaselines,
  };
}

const series = loadSeries();
if (series.length === 0) {
  process.stdout.write('forecast: no data (bench/data or ../shared/data)\n');
  process.stdout.write(`${JSON.stringify({ bench: 'forecast', error: 'no data' })}\n`);
  process.exit(1);
}
const t0 = performance.now();
const results = series.map(evaluate);
const seconds = (performance.now() - t0) / 1000;

const f3 = (v: number): string => v.toFixed(3);
process.stdout.write(
  `forecast: ${results.length} series, rolling origin, horizons ${HORIZONS.join('/')}${quick ? ' (quick)' : ''}\n`,
);
process.stdout.write(
  `${'series'.padEnd(58)} ${'m'.padStart(5)} ${'det'.padStart(5)}  ${HORIZONS.map((h) => `MASE@${h} us/lv/sn`.padEnd(22)).join('')} cov90@1..60\n`,
);
let worseThanLv = 0;
for (const r of results) {
  const cells = HORIZONS.map((_, i) =>
    `${f3(r.mase.understudy![i]!)}/${f3(r.mase.lastValue![i]!)}/${f3(r.mase.seasonalNaive![i]!)}`.padEnd(22),
  ).join('');
  const bad = HORIZONS.some((_, i) => r.mase.understudy![i]! > 1.1 * r.mase.lastValue![i]!);
  if (bad) worseThanLv++;
  process.stdout.write(
    `${r.name.padEnd(58)} ${String(r.period).padStart(5)} ${String(r.detected).padStart(5)}  ${cells} ${r.coverage.map((c) => c.toFixed(2)).join(' ')}${bad ? '  (>10% worse than last value)' : ''}\n`,
  );
}
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const horizons = HORIZONS.map((h, i) => ({
  h,
  mase: Number(mean(results.map((r) => r.mase.understudy![i]!)).toFixed(4)),
  maseSeasonalNaive: Number(mean(results.map((r) => r.mase.seasonalNaive![i]!)).toFixed(4)),
  maseLastValue: Number(mean(results.map((r) => r.mase.lastValue![i]!)).toFixed(4)),
  ratioToSeasonalNaive: 0,
  smape: Number(mean(results.map((r) => r.smape[i]!)).toFixed(3)),
  coverage90: Number(mean(results.map((r) => r.coverage[i]!)).toFixed(4)),
  coverage90LastValue: Number(mean(results.map((r) => r.coverageBaselines.lastValue![i]!)).toFixed(4)),
}));
for (const h of horizons) h.ratioToSeasonalNaive = Number((h.mase / h.maseSeasonalNaive).toFixed(4));
process.stdout.write(
  '\naggregate (mean over series)\n h   MASE   MASE-SN  MASE-LV  ratio-SN  sMAPE   cov90\n',
);
for (const h of horizons) {
  process.stdout.write(
    `${String(h.h).padStart(2)}  ${f3(h.mase)}  ${f3(h.maseSeasonalNaive)}   ${f3(h.maseLastValue)}   ${f3(h.ratioToSeasonalNaive)}    ${h.smape.toFixed(2)}  ${h.coverage90.toFixed(3)}\n`,
  );
}
process.stdout.write(
  `series >10% worse than last value at some horizon: ${worseThanLv}/${results.length}; ${seconds.toFixed(1)} s\n`,
);
process.stdout.write(
  `${JSON.stringify({ bench: 'forecast', quick, series: results.length, horizons, seriesWorseThanLastValue: worseThanLv, seconds: Number(seconds.toFixed(1)) })}\n`,
);
