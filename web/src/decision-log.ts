import { clock, h } from './dom.js';
import type { Decision } from './types.js';

/** Rows shown (newest first). */
const ROWS = 100;

function inputsText(inputs: Record<string, unknown>): string {
  return Object.entries(inputs)
    .filter(([, v]) => v !== undefined)
    .map(
      ([k, v]) =>
        `${k} = ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toFixed(3)) : JSON.stringify(v)}`,
    )
    .join('\n');
}

/** One row of the decision log: time, kind, what and why, the inputs folded open on request. */
function row(d: Decision): HTMLTableRowElement {
  const status = d.outcome.status;
  const inputs = inputsText(d.inputs);
  return h(
    'tr',
    { 'data-seq': d.seq, 'data-kind': d.kind, class: `k-${d.kind.replace(/[^a-z-]/g, '')}` },
    h('td', { class: 'time' }, h('time', { datetime: new Date(d.at).toISOString() }, clock(d.at))),
    h(
      'td',
      {},
      h(
        'span',
        { class: `kind ${d.kind === 'failover' || d.kind === 'switchover' ? 'kind-failover' : ''}` },
        d.kind,
      ),
    ),
    h(
      'td',
      {},
      h('div', { class: 'what' }, d.what),
      h('div', { class: 'why' }, d.why),
      inputs ? h('details', {}, h('summary', {}, 'inputs'), h('pre', {}, inputs)) : null,
    ),
    h(
      'td',
      {},
      h('span', { class: `status s-${status}` }, status),
      d.outcome.error ? h('div', { class: 'why' }, d.outcome.error) : null,
    ),
  );
}

/** The decision log table of a service (or all services), kept in place as decisions arrive. */
export function decisionTable(caption: string): { element: HTMLElement; render: (ds: Decision[]) => void } {
  const body = h('tbody');
  const empty = h('p', { class: 'muted' }, 'No decisions recorded yet.');
  const table = h(
    'table',
    { class: 'log' },
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, 'Time'),
        h('th', { scope: 'col' }, 'Kind'),
        h('th', { scope: 'col' }, 'What and why'),
        h('th', { scope: 'col' }, 'Outcome'),
      ),
    ),
    body,
  );
  const element = h(
    'section',
    { class: 'panel', 'aria-label': caption },
    h('div', { class: 'scroll', role: 'region', tabindex: 0, 'aria-label': `${caption} (scrolls)` }, table),
    empty,
  );
  return {
    element,
    render: (ds) => {
      const shown = ds.slice(-ROWS).reverse();
      // Keep the rows a person has opened (details) open across updates.
      const open = new Set(
        [...body.querySelectorAll('tr')]
          .filter((r) => r.querySelector('details[open]'))
          .map((r) => r.dataset.seq),
      );
      body.replaceChildren(
        ...shown.map((d) => {
          const r = row(d);
          if (open.has(String(d.seq))) r.querySelector('details')?.setAttribute('open', '');
          return r;
        }),
      );
      empty.hidden = shown.length > 0;
    },
  };
}
