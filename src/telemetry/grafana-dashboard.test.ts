import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Telemetry } from './telemetry.js';

interface Dashboard {
  panels: { id: number; title: string; targets: { expr: string }[] }[];
  templating: { list: { name: string; query: unknown }[] };
}

const dashboard = JSON.parse(
  readFileSync(new URL('../../deploy/grafana/understudy.json', import.meta.url), 'utf8'),
) as Dashboard;

/** The metric names a PromQL expression reads (a histogram's `_bucket`, `_sum`, `_count` by its name). */
function metricsOf(expr: string): string[] {
  return [...expr.matchAll(/\bunderstudy_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

describe('the Grafana dashboard (deploy/grafana/understudy.json)', () => {
  it('queries only metrics the registry has', () => {
    const known = new Set(new Telemetry().describe().map((m) => m.name));
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    exprs.push(JSON.stringify(dashboard.templating.list.map((v) => v.query)));
    const unknown = exprs.flatMap(metricsOf).filter((name) => !known.has(name));
    expect(unknown).toEqual([]);
  });

  it('has a unique id and at least one query per panel', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) expect(p.targets.length, p.title).toBeGreaterThan(0);
  });
});
