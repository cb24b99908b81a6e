// Regenerates the metrics table of docs/metrics.md from the registry (`npm run docs:metrics`).
// src/telemetry/metrics-doc.test.ts fails when the table and the registry disagree.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { format } from 'prettier';
import { replaceMetricsTable, Telemetry } from '../src/telemetry/index.js';

const file = fileURLToPath(new URL('../docs/metrics.md', import.meta.url));
const before = readFileSync(file, 'utf8');
const updated = replaceMetricsTable(before, new Telemetry().describe());
const formatted = await format(updated, {
  filepath: file,
  singleQuote: true,
  printWidth: 110,
  trailingComma: 'all',
});
writeFileSync(file, formatted);
process.stdout.write(`docs/metrics.md: ${before === formatted ? 'unchanged' : 'updated'}\n`);
