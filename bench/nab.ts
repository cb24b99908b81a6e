// NAB v1.1: first proves the scorer port against the published numenta and windowedGaussian
// results, then scores Understudy's online anomaly detector on all 58 files and 3 profiles.
// `npm run bench -- nab [--quick] [--out DIR] [--workers N]`; last line is one JSON object.
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { detectSeries } from './lib/nab-detect.js';
import {
  loadNabProfiles,
  loadNabSeries,
  loadNabWindows,
  loadReferenceScores,
  nabRoot,
} from './lib/nab-data.js';
import type { NabSeries } from './lib/nab-data.js';
import { scoreCorpus } from './lib/nab-scorer.js';
import type { NabFileInput } from './lib/nab-scorer.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const outDir = flag('--out');
const workers = Math.max(1, Number(flag('--workers') ?? Math.min(2, availableParallelism())));
const PUBLISHED: Record<string, Record<string, number>> = {
  numenta: { standard: 70.1, reward_low_FP_rate: 63.21, reward_low_FN_rate: 74.32 },
  windowedGaussian: { standard: 39.65, reward_low_FP_rate: 20.87, reward_low_FN_rate: 47.41 },
};
const PROFILES = ['standard', 'reward_low_FP_rate', 'reward_low_FN_rate'] as const;
const round2 = (v: number): number => Math.round(v * 100) / 100;

const root = nabRoot();
if (!root) {
  process.stdout.write('nab: NAB data not found (bench/data/nab or ../shared/data/nab)\n');
  process.stdout.write(`${JSON.stringify({ bench: 'nab', error: 'no data' })}\n`);
  process.exit(1);
}
const series = loadNabSeries(root);
const windows = loadNabWindows(root);
const profiles = loadNabProfiles(root);
process.stdout.write(
  `NAB v1.1 corpus: ${series.length} files, ${series.reduce((a, s) => a + s.values.length, 0)} points, ${[...windows.values()].reduce((a, w) => a + w.length, 0)} windows (${root})\n\n`,
);

// 1. Scorer check against the published results.
const scorerCheck: Record<string, Record<string, number>> = {};
let checkPass = true;
process.stdout.write('scorer check (reference-results → normalised score; published; |Δ| ≤ 0.05)\n');
for (const det of Object.keys(PUBLISHED)) {
  const files: NabFileInput[] = series.map((s) => ({
    name: s.name,
    timestamps: s.timestamps,
    scores: loadReferenceScores(root, det, s.name),
    windows: windows.get(s.name) ?? [],
  }));
  scorerCheck[det] = {};
  for (const p of PROFILES) {
    const r = scoreCorpus(files, profiles[p]!);
    const ok = Math.abs(r.normalised - PUBLISHED[det]![p]!) <= 0.05;
    checkPass &&= ok;
    scorerCheck[det]![p] = round2(r.normalised);
    process.stdout.write(
      `  ${det.padEnd(17)} ${p.padEnd(19)} ${r.normalised.toFixed(3).padStart(7)}  published ${PUBLISHED[det]![p]!.toFixed(2).padStart(6)}  ${ok ? 'ok' : 'MISMATCH'}  (threshold ${r.threshold})\n`,
    );
  }
}
process.stdout.write(`scorer check: ${checkPass ? 'PASS' : 'FAIL'}\n\n`);

// 2. Understudy's detector, files spread over worker threads.
async function runAll(list: NabSeries[]): Promise<Map<string, { scores: number[]; ms: number }>> {
  const out = new Map<string, { scores: number[]; ms: number }>();
  if (workers <= 1) {
    for (const s of list) out.set(s.name, detectSeries(s.timestamps, s.values));
    return out;
  }
  const buckets: NabSeries[][] = Array.from({ length: workers }, () => []);
  const loads = new Array<number>(workers).fill(0);
  for (const s of [...list].sort((a, b) => b.values.length - a.values.length)) {
    const i = loads.indexOf(Math.min(...loads));
    buckets[i]!.push(s);
    loads[i] = loads[i]! + s.values.length;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const results = await Promise.all(
    buckets.map(
      (b) =>
        new Promise<{ name: string; scores: number[]; ms: number }[]>((resolve, reject) => {
          // Register tsx inside the worker, then load the TypeScript entry.
          const entry = pathToFileURL(join(here, 'lib/nab-worker.ts')).href;
          const tsxApi = import.meta.resolve('tsx/esm/api');
          const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
          const w = new Worker(code, {
            eval: true,
            workerData: {
              files: b.map((s) => ({ name: s.name, timestamps: s.timestamps, values: s.values })),
            },
          });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  for (const r of results.flat()) out.set(r.name, { scores: r.scores, ms: r.ms });
  return out;
}

const wall0 = performance.now();
const detected = await runAll(series);
const wallS = (performance.now() - wall0) / 1000;
let detMs = 0;
let points = 0;
const files: NabFileInput[] = series.map((s) => {
  const d = detected.get(s.name)!;
  detMs += d.ms;
  points += s.values.length;
  return { name: s.name, timestamps: s.timestamps, scores: d.scores, windows: windows.get(s.name) ?? [] };
});
const usPerPoint = (detMs * 1000) / points;
const understudy: Record<string, number> = {};
const perProfile = Object.fromEntries(PROFILES.map((p) => [p, scoreCorpus(files, profiles[p]!)]));
for (const p of PROFILES) understudy[p] = round2(perProfile[p]!.normalised);

const std = perProfile.standard!;
process.stdout.write(
  `understudy detector, per file (standard profile, threshold ${std.threshold.toFixed(4)})\n`,
);
process.stdout.write(`  ${'file'.padEnd(58)} ${'score'.padStart(7)}  tp  fp  fn\n`);
for (const f of std.perFile)
  process.stdout.write(
    `  ${f.name.padEnd(58)} ${f.score.toFixed(3).padStart(7)} ${String(f.tp).padStart(3)} ${String(f.fp).padStart(3)} ${String(f.fn).padStart(3)}\n`,
  );
process.stdout.write('\n  profile              normalised  threshold   raw      numenta  ARTime\n');
const ART: Record<string, number> = { standard: 74.85, reward_low_FP_rate: 65.15, reward_low_FN_rate: 80.36 };
for (const p of PROFILES) {
  const r = perProfile[p]!;
  process.stdout.write(
    `  ${p.padEnd(20)} ${r.normalised.toFixed(2).padStart(9)}  ${r.threshold.toFixed(4).padStart(9)}  ${r.raw.toFixed(2).padStart(7)}  ${PUBLISHED.numenta![p]!.toFixed(2)}    ${ART[p]!.toFixed(2)}\n`,
  );
}
process.stdout.write(
  `  ratio to numenta (standard): ${(std.normalised / PUBLISHED.numenta!.standard!).toFixed(3)}\n`,
);
process.stdout.write(
  `  detector time: ${usPerPoint.toFixed(2)} µs/point over ${points} points; wall ${wallS.toFixed(1)} s with ${workers} worker(s)${quick ? ' (quick: the full run is this fast)' : ''}\n`,
);

if (outDir) {
  // NAB's results layout: DIR/<detector>/<category>/<detector>_<file>.csv with timestamp,anomaly_score.
  for (const s of series) {
    const [cat, f] = s.name.split('/') as [string, string];
    const dir = join(outDir, 'understudy', cat);
    mkdirSync(dir, { recursive: true });
    const scores = detected.get(s.name)!.scores;
    const lines = ['timestamp,anomaly_score', ...s.rawTimestamps.map((t, i) => `${t},${scores[i]!}`)];
    writeFileSync(join(dir, `understudy_${f}`), `${lines.join('\n')}\n`);
  }
  process.stdout.write(`  wrote NAB results layout to ${join(outDir, 'understudy')}\n`);
}

process.stdout.write(
  `${JSON.stringify({ bench: 'nab', scorerCheck: { ...scorerCheck, pass: checkPass }, understudy, usPerPoint: Number(usPerPoint.toFixed(3)) })}\n`,
);
