import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runSim } from './sim.js';

let dir: string;
let out: string[];
let err: string[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'understudy-sim-'));
  out = [];
  err = [];
  vi.spyOn(process.stdout, 'write').mockImplementation(
    (c: string | Uint8Array) => (out.push(String(c)), true),
  );
  vi.spyOn(process.stderr, 'write').mockImplementation(
    (c: string | Uint8Array) => (err.push(String(c)), true),
  );
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(dir, { recursive: true, force: true });
});

function writeTrace(name: string, rows: number): string {
  const lines = ['timestamp,value'];
  for (let i = 0; i < rows; i++)
    lines.push(`${1_600_000_000 + i * 60},${(Math.floor(i / 30) % 2 ? 90 : 30) + (i % 5)}`);
  const p = join(dir, name);
  writeFileSync(p, lines.join('\n') + '\n');
  return p;
}

describe('runSim', () => {
  it('prints one JSON object with the benchmark field names', async () => {
    const trace = writeTrace('t.csv', 600);
    expect(await runSim({ trace, policy: 'hpa', output: 'json' })).toBe(0);
    const j = JSON.parse(out.join('')) as Record<string, unknown>;
    for (const k of [
      'sloViolationMin',
      'instanceHours',
      'actions',
      'thetaU',
      'thetaO',
      'tauU',
      'tauO',
      'instability',
    ])
      expect(typeof j[k]).toBe('number');
    expect(j.policy).toBe('hpa');
  });
  it('compares all policies in a table and writes an SVG plot with axes and a legend', async () => {
    const trace = writeTrace('t.csv', 600);
    const plot = join(dir, 'p.svg');
    expect(await runSim({ trace, policy: 'all', plot })).toBe(0);
    const text = out.join('');
    for (const p of ['predictive', 'reactive-pool', 'hpa', 'static', 'oracle'])
      expect(text).toMatch(new RegExp(`^${p} `, 'm'));
    const svg = readFileSync(plot, 'utf8');
    expect(svg).toMatch(/^<svg /);
    expect(svg).toContain('requests/s');
    expect(svg).toContain('hpa capacity');
    expect(svg).toContain('predictive forecast band');
  });
  it('exits 2 naming the file and line of a malformed trace', async () => {
    const p = join(dir, 'bad.csv');
    writeFileSync(p, 'ts,value\n1,2\n2,oops\n');
    expect(await runSim({ trace: p })).toBe(2);
    expect(err.join('')).toContain(`${p}:3: value 'oops' is not a number`);
    expect(out.join('')).toBe('');
  });
  it('exits 2 for an unknown policy', async () => {
    const trace = writeTrace('t.csv', 10);
    expect(await runSim({ trace, policy: 'magic' as 'hpa' })).toBe(2);
    expect(err.join('')).toMatch(/--policy must be one of/);
  });
});
