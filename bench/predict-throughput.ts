// Throughput of the prediction library: N concurrent series sampled at 1 Hz (virtual time), each
// with an auto forecaster, a 60-step forecast every 15 s. Reports the CPU fraction of one core
// that real-time operation would need and the memory per series; the peer in the same run is the
// plain last-value forecaster (same interval machinery, no model fitting).
// `npm run bench -- predict-throughput [--quick]`; last line is one JSON object.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  createAutoForecaster,
  createLastValueForecaster,
  createRandom,
  randomNormal,
} from '../src/predict/index.js';
import type { Forecaster } from '../src/predict/index.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const quick = process.argv.includes('--quick');
const SERIES = quick ? 2000 : 10_000;
const WARMUP_S = quick ? 300 : 1200;
const MEASURE_S = quick ? 300 : 900;
const FORECAST_EVERY_S = 15;
const HORIZON = 60;

interface Gen {
  next(t: number): number;
}

/** Per-series synthetic load: a period between 60 and 600 s, trend-free, noise, occasional bursts. */
function generators(n: number): Gen[] {
  const rnd = createRandom(2024);
  return Array.from({ length: n }, () => {
    const period = 60 + Math.floor(rnd() * 540);
    const amp = 5 + rnd() * 20;
    const base = 20 + rnd() * 60;
    const phase = rnd() * period;
    const noise = 0.5 + rnd() * 3;
    const r = createRandom(Math.floor(rnd() * 2 ** 31));
    return {
      next: (t: number) =>
        base +
        amp * Math.sin((2 * Math.PI * (t + phase)) / period) +
        noise * randomNormal(r) +
        (r() < 0.001 ? 50 : 0),
    };
  });
}

function heapMiB(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.arrayBuffers) / 2 ** 20;
}

function run(
  label: string,
  make: () => Forecaster,
): { cpuFraction: number; kibPerSeries: number; updatesPerS: number; forecasts: number } {
  const gens = generators(SERIES);
  const before = heapMiB();
  const fs = gens.map(make);
  let sink = 0;
  const step = (t: number): void => {
    for (let i = 0; i < SERIES; i++) fs[i]!.update(t * 1000, gens[i]!.next(t));
    if (t % FORECAST_EVERY_S === 0)
      for (let i = 0; i < SERIES; i++) sink += fs[i]!.forecast(HORIZON, 0.9)[HORIZON - 1]!.mean;
  };
  for (let t = 0; t < WARMUP_S; t++) step(t);
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  let forecasts = 0;
  for (let t = WARMUP_S; t < WARMUP_S + MEASURE_S; t++) {
    step(t);
    if (t % FORECAST_EVERY_S === 0) forecasts += SERIES;
  }
  const c = process.cpuUsage(c0);
  const wallS = (performance.now() - w0) / 1000;
  const cpuS = (c.user + c.system) / 1e6;
  const after = heapMiB();
  const kibPerSeries = ((after - before) * 1024) / SERIES;
  if (!Number.isFinite(sink)) process.stdout.write('(non-finite forecast seen)\n');
  const cpuFraction = cpuS / MEASURE_S;
  process.stdout.write(
    `${label.padEnd(12)} ${String(SERIES).padStart(6)} series  cpu ${cpuS.toFixed(2)} s for ${MEASURE_S} s of 1 Hz data → ${(100 * cpuFraction).toFixed(2)} % of a core; ${((SERIES * MEASURE_S) / wallS / 1e3).toFixed(0)}k updates/s; ${kibPerSeries.toFixed(1)} KiB/series\n`,
  );
  fs.length = 0;
  return { cpuFraction, kibPerSeries, updatesPerS: (SERIES * MEASURE_S) / wallS, forecasts };
}

process.stdout.write(
  `predict-throughput: ${SERIES} series at 1 Hz, ${HORIZON}-step forecast every ${FORECAST_EVERY_S} s; warm-up ${WARMUP_S} s, measured ${MEASURE_S} s (virtual)${quick ? ' (quick)' : ''}\n`,
);
const auto = run('understudy', () => createAutoForecaster());
const peer = run('last-value', () => createLastValueForecaster());
const ok = auto.cpuFraction < 0.1 * (SERIES / 10_000) && auto.kibPerSeries < 50;
process.stdout.write(
  `goal (10,000 series < 10 % of a core, < 50 KiB/series): ${ok ? 'met' : 'NOT met'}; CPU ratio to last-value: ${(auto.cpuFraction / peer.cpuFraction).toFixed(2)}\n`,
);
process.stdout.write(
  `${JSON.stringify({
    bench: 'predict-throughput',
    quick,
    series: SERIES,
    hz: 1,
    forecastEverySeconds: FORECAST_EVERY_S,
    horizon: HORIZON,
    cpuFractionOfCore: Number(auto.cpuFraction.toFixed(4)),
    cpuFractionPer10kSeries: Number(((auto.cpuFraction * 10_000) / SERIES).toFixed(4)),
    kibPerSeries: Number(auto.kibPerSeries.toFixed(2)),
    updatesPerSecond: Math.round(auto.updatesPerS),
    peerLastValue: {
      cpuFractionOfCore: Number(peer.cpuFraction.toFixed(4)),
      kibPerSeries: Number(peer.kibPerSeries.toFixed(2)),
    },
    cpuRatioToLastValue: Number((auto.cpuFraction / peer.cpuFraction).toFixed(2)),
  })}\n`,
);
