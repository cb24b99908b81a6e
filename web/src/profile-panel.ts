// The service's profile (seed 001): expected use per hour of day, dependencies, how echoes are sized.
import { fill, h } from './dom.js';

interface Percentiles {
  p50: number;
  p95: number;
  max: number;
}

/** What `GET /v1/services/:name/profile` answers (the fields shown here). */
export interface Profile {
  version: number;
  minSamples: number;
  now: { hour: number; echo: { source: string; detail: string } };
  hours: Array<{
    hour: number;
    samples: number;
    enough: boolean;
    resources: Partial<Record<'cpu' | 'memory' | 'diskRead' | 'diskWrite' | 'network', Percentiles>>;
  }>;
  dependencies: { listening: number[]; connected: string[]; libraries: string[]; files: string[] };
}

const bytes = (v: number): string =>
  v >= 1 << 30
    ? `${(v / (1 << 30)).toFixed(1)} GiB`
    : v >= 1 << 20
      ? `${(v / (1 << 20)).toFixed(1)} MiB`
      : v >= 1024
        ? `${(v / 1024).toFixed(1)} KiB`
        : `${Math.round(v)} B`;
const cell = (p: Percentiles | undefined, f: (v: number) => string): string =>
  p ? `${f(p.p50)} / ${f(p.p95)} / ${f(p.max)}` : '–';
const list = (xs: ReadonlyArray<string | number>, n: number): string =>
  xs.length === 0 ? '–' : xs.slice(0, n).join(', ') + (xs.length > n ? ` … (${xs.length})` : '');

/** Renders a profile into `el`: one row per hour with samples, the dependencies, the sizing now. */
export function renderProfile(el: Element, p: Profile): void {
  const rows = p.hours.map((hr) =>
    h(
      'tr',
      { 'data-hour': String(hr.hour) },
      h('td', {}, `${String(hr.hour).padStart(2, '0')}:00`),
      h('td', {}, `${hr.samples}${hr.enough ? '' : ' (few)'}`),
      h(
        'td',
        {},
        cell(hr.resources.cpu, (v) => v.toFixed(2)),
      ),
      h('td', {}, cell(hr.resources.memory, bytes)),
      h(
        'td',
        {},
        cell(hr.resources.diskWrite, (v) => `${bytes(v)}/s`),
      ),
      h(
        'td',
        {},
        cell(hr.resources.network, (v) => `${bytes(v)}/s`),
      ),
    ),
  );
  const d = p.dependencies;
  fill(
    el,
    rows.length === 0
      ? h('p', { class: 'muted' }, 'No samples yet.')
      : h(
          'table',
          { class: 'grid' },
          h('caption', { class: 'sr-only' }, 'Use of one serving instance by hour of day (UTC)'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Hour (UTC)', 'Samples', 'CPU cores', 'Memory', 'Disk writes', 'Network'].map((c) =>
                h('th', { scope: 'col' }, c),
              ),
            ),
          ),
          h('tbody', {}, ...rows),
        ),
    h(
      'p',
      { class: 'muted' },
      `p50 / p95 / max per serving instance, version ${p.version}. Listening: ${list(d.listening, 8)}. Connected: ${list(d.connected, 6)}. Open files: ${list(d.files, 4)}. Libraries: ${d.libraries.length}.`,
    ),
    h('p', { class: 'muted', 'data-sizing': p.now.echo.source }, `New echoes: ${p.now.echo.detail}.`),
  );
}
