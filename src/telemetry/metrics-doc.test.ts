import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { metricsTable, parseMetricsTable, replaceMetricsTable } from './metrics-doc.js';
import { Telemetry } from './telemetry.js';

const doc = readFileSync(new URL('../../docs/metrics.md', import.meta.url), 'utf8');

describe('docs/metrics.md', () => {
  it('lists every metric of the registry and nothing else, with its type, labels and help', () => {
    const registry = new Telemetry().describe();
    const documented = parseMetricsTable(doc).sort((a, b) => a.name.localeCompare(b.name));
    expect(documented.map((m) => m.name)).toEqual(registry.map((m) => m.name));
    expect(documented).toEqual(registry);
  });
});

describe('the generated metrics table', () => {
  const metrics = [
    { name: 'understudy_a_total', type: 'counter', labels: ['service'], help: 'A | pipe and more.' },
    { name: 'understudy_b', type: 'gauge', labels: [], help: 'No labels.' },
  ];

  it('parses back to the metrics it was generated from, pipes in help included', () => {
    expect(parseMetricsTable(metricsTable(metrics))).toEqual(metrics);
  });

  it('replaces only the table between the markers, and appends one when they are missing', () => {
    const page = `# Title\n\n${metricsTable([])}\n\nAfter.\n`;
    const updated = replaceMetricsTable(page, metrics);
    expect(updated.startsWith('# Title\n\n')).toBe(true);
    expect(updated.endsWith('\n\nAfter.\n')).toBe(true);
    expect(parseMetricsTable(updated)).toEqual(metrics);
    expect(parseMetricsTable(replaceMetricsTable('# Bare\n', metrics))).toEqual(metrics);
  });

  it('finds no metrics in a page without the markers', () => {
    expect(parseMetricsTable('| `understudy_x` | gauge | | help |')).toEqual([]);
  });
});
