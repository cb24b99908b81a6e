// Loads the NAB corpus for the benches: prefers the in-repo copy (bench/data/nab), falls back to
// ../shared/data/nab when present.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NabCostMatrix } from './nab-scorer.js';

const here = dirname(fileURLToPath(import.meta.url));

/** The NAB root directory, or undefined when neither copy exists. */
export function nabRoot(): string | undefined {
  const candidates = [
    resolve(here, '../data/nab'),
    resolve(here, '../../../shared/data/nab'),
    resolve(process.cwd(), '../shared/data/nab'),
  ];
  return candidates.find((c) => existsSync(join(c, 'labels/combined_windows.json')));
}

/** The crane traces directory, or undefined. */
export function craneRoot(): string | undefined {
  const candidates = [
    resolve(here, '../data/traces/crane'),
    resolve(here, '../../../shared/data/traces/crane'),
    resolve(process.cwd(), '../shared/data/traces/crane'),
  ];
  return candidates.find((c) => existsSync(join(c, 'cpu_0.csv')));
}

/** Parses NAB's `YYYY-MM-DD HH:MM:SS[.ffffff]` as UTC milliseconds. */
export function parseNabTime(s: string): number {
  return Date.parse(`${s.slice(0, 19).replace(' ', 'T')}Z`);
}

/** A NAB data file: `category/file.csv`, timestamps (ms), raw timestamp strings, values. */
export interface NabSeries {
  name: string;
  timestamps: number[];
  rawTimestamps: string[];
  values: number[];
}

function readText(path: string): string {
  if (existsSync(path)) return readFileSync(path, 'utf8');
  if (existsSync(`${path}.gz`)) return gunzipSync(readFileSync(`${path}.gz`)).toString('utf8');
  throw new Error(`missing ${path}`);
}

/** Reads a two-column CSV with a header; returns the raw first column and the numeric second. */
export function readCsv(path: string): { keys: string[]; values: number[] } {
  const lines = readText(path).split('\n');
  const keys: string[] = [];
  const values: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const c = line.indexOf(',');
    keys.push(line.slice(0, c));
    values.push(Number(line.slice(c + 1)));
  }
  return { keys, values };
}

/** All 58 NAB data files, sorted by name. */
export function loadNabSeries(root: string, categories?: readonly string[]): NabSeries[] {
  const out: NabSeries[] = [];
  for (const cat of readdirSync(join(root, 'data')).sort()) {
    if (categories && !categories.includes(cat)) continue;
    for (const f of readdirSync(join(root, 'data', cat)).sort()) {
      if (!f.endsWith('.csv')) continue;
      const { keys, values } = readCsv(join(root, 'data', cat, f));
      out.push({ name: `${cat}/${f}`, timestamps: keys.map(parseNabTime), rawTimestamps: keys, values });
    }
  }
  return out;
}

/** Label windows per file as [startMs, endMs]. */
export function loadNabWindows(root: string): Map<string, [number, number][]> {
  const raw = JSON.parse(readFileSync(join(root, 'labels/combined_windows.json'), 'utf8')) as Record<
    string,
    [string, string][]
  >;
  const out = new Map<string, [number, number][]>();
  for (const [k, ws] of Object.entries(raw))
    out.set(
      k,
      ws.map(([a, b]) => [parseNabTime(a), parseNabTime(b)]),
    );
  return out;
}

/** The three NAB cost profiles. */
export function loadNabProfiles(root: string): Record<string, NabCostMatrix> {
  const raw = JSON.parse(readFileSync(join(root, 'config/profiles.json'), 'utf8')) as Record<
    string,
    { CostMatrix: NabCostMatrix }
  >;
  const out: Record<string, NabCostMatrix> = {};
  for (const [k, v] of Object.entries(raw))
    out[k] = {
      tpWeight: v.CostMatrix.tpWeight,
      fpWeight: v.CostMatrix.fpWeight,
      fnWeight: v.CostMatrix.fnWeight,
    };
  return out;
}

/** A published detector's scores for one file (reference-results layout, optionally gzipped). */
export function loadReferenceScores(root: string, detector: string, fileName: string): number[] {
  const [cat, f] = fileName.split('/') as [string, string];
  return readCsv(join(root, 'reference-results', detector, cat, `${detector}_${f}`)).values;
}
