import type uPlot from 'uplot';
import { get, post, SessionEnded } from './api.js';
import { TimeChart, type Mark } from './charts.js';
import { decisionTable } from './decision-log.js';
import { ago, fill, h, num } from './dom.js';
import type { DecisionFeed } from './events.js';
import { renderProfile, type Profile } from './profile-panel.js';
import type { AccuracySummary, Decision, Forecast, Sample, Service } from './types.js';

/** Samples kept in the page (the API's ring holds as many). */
const KEEP = 900;
/** Largest forecast horizon drawn ahead of now, in samples (seconds). */
const MAX_AHEAD = 300;

const secs = (ms: number): number => ms / 1000;

function failoverMarks(decisions: Decision[], view: Service | undefined): Mark[] {
  const marks: Mark[] = decisions
    .filter((d) => (d.kind === 'failover' || d.kind === 'switchover') && d.outcome.status !== 'failed')
    .map((d) => ({ at: d.at, label: d.kind }));
  const last = view?.lastFailover;
  if (last && !marks.some((m) => Math.abs(m.at - last.at) < 5000))
    marks.push({ at: last.at, label: `${last.kind} → epoch ${last.epoch}` });
  return marks;
}

function loadData(samples: Sample[]): uPlot.AlignedData {
  const n = samples.length;
  const lastF = [...samples].reverse().find((s) => s.forecast)?.forecast;
  const ahead = lastF ? Math.min(MAX_AHEAD, Math.round(lastF.horizonMs / 1000)) : 0;
  const lastAt = samples[n - 1]?.at ?? 0;
  const xs = samples.map((s) => secs(s.at));
  for (let k = 1; k <= ahead; k++) xs.push(secs(lastAt) + k);
  const pad = (a: (number | null)[]): (number | null)[] => [...a, ...Array<null>(ahead).fill(null)];
  const mean = Array<number | null>(n + ahead).fill(null);
  const upper = Array<number | null>(n + ahead).fill(null);
  const lower = Array<number | null>(n + ahead).fill(null);
  samples.forEach((s, i) => {
    // A forecast is drawn at the time it is for: made at t for horizon h, it is plotted at t + h.
    if (!s.forecast) return;
    const j = i + Math.round(s.forecast.horizonMs / 1000);
    if (j >= n + ahead) return;
    mean[j] = s.forecast.mean;
    upper[j] = s.forecast.upper;
    lower[j] = s.forecast.lower;
  });
  return [
    xs,
    pad(samples.map((s) => s.load ?? null)),
    pad(samples.map((s) => s.capacity ?? null)),
    mean,
    upper,
    lower,
  ];
}

function accuracyRow(name: string, s: AccuracySummary): HTMLTableRowElement {
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, name),
    h('td', {}, String(s.pairs)),
    h('td', {}, s.mase === undefined ? '–' : s.mase.toFixed(2)),
    h('td', {}, s.coverage === undefined ? '–' : `${Math.round(s.coverage * 100)} %`),
    h('td', {}, s.note),
  );
}

/** The page of one service: summary, live charts, forecast accuracy, instances and its decision log. */
export class ServicePage {
  readonly element: HTMLElement;
  readonly #name: string;
  readonly #onSessionEnd: () => void;
  #view: Service | undefined;
  #samples: Sample[] = [];
  #decisions: Decision[] = [];
  #timer: number | undefined;
  #ticks = 0;
  #closed = false;
  readonly #unsubscribe: () => void;

  readonly #title = h('h1', {});
  readonly #badges = h('span', { class: 'badges' });
  readonly #cards = h('dl', { class: 'cards' });
  readonly #instances = h('tbody');
  readonly #accuracy = h('div', { class: 'accuracy' });
  readonly #profile = h('div', { class: 'profile' });
  readonly #message = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
  readonly #charts: { load: TimeChart; counts: TimeChart; shadow: TimeChart; lag: TimeChart };
  readonly #log = decisionTable('Decision log');

  constructor(name: string, feed: DecisionFeed, onSessionEnd: () => void) {
    this.#name = name;
    this.#onSessionEnd = onSessionEnd;
    const marks = (): Mark[] => failoverMarks(this.#decisions, this.#view);
    this.#charts = {
      load: new TimeChart({
        title: 'Load vs capacity, with the forecast band',
        description:
          'Requests per second through the router, the capacity of the serving set at its target, and the forecast with its interval',
        axes: [{ scale: 'rps', label: 'requests/s' }],
        series: [
          { label: 'load', stroke: '#1f5fbf', width: 2, format: (v) => `${num(v)} req/s` },
          {
            label: 'capacity at target',
            stroke: '#2e8540',
            dash: [8, 4],
            stepped: true,
            format: (v) => `${num(v)} req/s`,
          },
          { label: 'forecast', stroke: '#8a4fbf', width: 1.5, format: (v) => `${num(v)} req/s` },
          { label: 'upper', stroke: 'rgba(138,79,191,0.4)', width: 1, quiet: true },
          { label: 'lower', stroke: 'rgba(138,79,191,0.4)', width: 1, quiet: true },
        ],
        band: { upper: 4, lower: 5, fill: 'rgba(138,79,191,0.15)' },
        marks,
      }),
      counts: new TimeChart({
        title: 'Serving and warm pool',
        description: 'Number of serving instances and of echoes standing by in the warm pool',
        axes: [{ scale: 'n', label: 'instances' }],
        series: [
          { label: 'serving', stroke: '#1f5fbf', stepped: true },
          { label: 'warm pool', stroke: '#c77c02', stepped: true, dash: [6, 3] },
        ],
        marks,
      }),
      shadow: new TimeChart({
        title: 'Shadow vs live',
        description: 'CPU utilisation of the serving set, and the same as predicted from the shadow',
        axes: [{ scale: 'pct', label: '% CPU' }],
        series: [
          { label: 'live', stroke: '#1f5fbf', format: (v) => `${num(v)} %` },
          { label: 'shadow', stroke: '#b8336a', dash: [6, 3], format: (v) => `${num(v)} %` },
        ],
        marks,
      }),
      lag: new TimeChart({
        title: 'Replication and sync lag',
        description:
          'Largest replication lag over the echoes in milliseconds, and largest file-sync lag in seconds',
        axes: [
          { scale: 'ms', label: 'replication ms' },
          { scale: 's', label: 'file sync s', side: 1 },
        ],
        series: [
          { label: 'replication lag', stroke: '#1f5fbf', scale: 'ms', format: (v) => `${num(v, 0)} ms` },
          {
            label: 'file-sync lag',
            stroke: '#c77c02',
            scale: 's',
            dash: [6, 3],
            format: (v) => `${num(v, 2)} s`,
          },
        ],
        marks,
      }),
    };
    const failover = h('button', { type: 'button', class: 'danger' }, 'Force failover');
    failover.addEventListener('click', () => void this.#failover(failover));
    this.element = h(
      'div',
      { class: 'service-page' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Services'), ' / ', name),
      h('div', { class: 'title-row' }, this.#title, this.#badges, h('span', { class: 'spacer' }), failover),
      this.#message,
      this.#cards,
      h('div', { class: 'charts' }, ...Object.values(this.#charts).map((c) => c.element)),
      h(
        'div',
        { class: 'two' },
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'instances-title' },
          h('h2', { id: 'instances-title' }, 'Instances'),
          h(
            'table',
            { class: 'grid' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['Instance', 'Role', 'Phase', 'Health', 'Epoch', 'PID'].map((c) =>
                  h('th', { scope: 'col' }, c),
                ),
              ),
            ),
            this.#instances,
          ),
        ),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'accuracy-title' },
          h('h2', { id: 'accuracy-title' }, 'Forecast accuracy'),
          this.#accuracy,
        ),
        h(
          'section',
          { class: 'panel', 'aria-labelledby': 'profile-title' },
          h('h2', { id: 'profile-title' }, 'Profile'),
          this.#profile,
        ),
      ),
      this.#log.element,
    );
    fill(this.#title, name);
    this.#decisions = feed.list(name);
    this.#log.render(this.#decisions);
    this.#unsubscribe = feed.subscribe((d) => {
      if (d.service !== name) return;
      this.#decisions = feed.list(name);
      this.#log.render(this.#decisions);
      if (d.kind === 'failover' || d.kind === 'switchover') {
        for (const c of Object.values(this.#charts)) c.redraw();
        void this.#poll();
      }
    });
    this.#renderCharts();
    void this.#poll();
    this.#timer = window.setInterval(() => void this.#poll(), 1000);
  }

  async #failover(button: HTMLButtonElement): Promise<void> {
    if (
      !window.confirm(`Force a failover of ${this.#name}? Its best echo is promoted and the primary fenced.`)
    )
      return;
    button.disabled = true;
    try {
      await post(`/v1/services/${encodeURIComponent(this.#name)}/failover`, {
        reason: 'forced from the dashboard',
      });
      this.#message.textContent = 'Failover requested: see the decision log.';
    } catch (err) {
      if (err instanceof SessionEnded) return this.#onSessionEnd();
      this.#message.textContent = `Failover refused: ${(err as Error).message}`;
    } finally {
      button.disabled = false;
    }
  }

  async #poll(): Promise<void> {
    if (this.#closed) return;
    const base = `/v1/services/${encodeURIComponent(this.#name)}`;
    try {
      const after = this.#samples.at(-1)?.at ?? 0;
      const [view, history] = await Promise.all([
        get<Service>(base),
        get<{ samples: Sample[] }>(`${base}/samples?after=${after}`),
      ]);
      if (this.#closed) return;
      this.#view = view;
      this.#samples = [...this.#samples, ...history.samples].slice(-KEEP);
      this.#renderSummary();
      this.#renderCharts();
      if (this.#ticks % 5 === 0) renderProfile(this.#profile, await get<Profile>(`${base}/profile`));
      if (this.#ticks++ % 5 === 0) this.#renderAccuracy(await get<Forecast>(`${base}/forecast`));
    } catch (err) {
      if (err instanceof SessionEnded) return this.#onSessionEnd();
      this.#message.textContent = `Could not reach the control plane: ${(err as Error).message}`;
    }
  }

  #renderSummary(): void {
    const v = this.#view;
    if (!v) return;
    const count = (role: string): number => v.instances.filter((i) => i.role === role).length;
    const unhealthy = v.instances.filter((i) => i.health && !i.health.healthy).length;
    fill(
      this.#badges,
      v.degraded
        ? h('span', { class: 'badge bad' }, 'degraded')
        : h('span', { class: 'badge ok' }, 'redundant'),
      unhealthy ? h('span', { class: 'badge bad' }, `${unhealthy} unhealthy`) : null,
      v.scaling ? h('span', { class: 'badge' }, `scaling: ${v.scaling.policy}`) : null,
    );
    const last = v.lastFailover;
    const card = (label: string, value: string, detail?: string): Node[] => [
      h(
        'div',
        { class: 'card', 'data-card': label },
        h('dt', {}, label),
        h('dd', {}, value, detail ? h('small', {}, detail) : null),
      ),
    ];
    const s = v.scaling;
    fill(
      this.#cards,
      ...card('Epoch', String(v.epoch)),
      ...card('Primaries', `${count('primary')} / ${v.desired.primaries}`, 'running / desired'),
      ...card('Echoes', `${count('echo')} / ${v.desired.echoes}`, v.echoMode),
      ...card('Shadows', `${count('shadow')} / ${v.desired.shadows}`),
      ...card(
        'Load',
        s ? `${num(s.load)} req/s` : '–',
        s?.forecast
          ? `forecast ${num(s.forecast.mean)} (${num(s.forecast.lower)}–${num(s.forecast.upper)}) in ${Math.round(s.forecast.horizonMs / 1000)} s`
          : s
            ? 'no forecast yet'
            : 'not scaled',
      ),
      ...card(
        'Last failover',
        last ? ago(last.at) : 'none',
        last
          ? `${last.kind} ${last.from} → ${last.to}, epoch ${last.epoch}, promoted in ${last.promotionMs} ms`
          : undefined,
      ),
    );
    this.#instances.replaceChildren(
      ...v.instances.map((i) =>
        h(
          'tr',
          { 'data-role': i.role },
          h('th', { scope: 'row' }, i.id),
          h('td', {}, h('span', { class: `role role-${i.role}` }, i.role)),
          h('td', {}, i.phase),
          h('td', {}, i.health ? (i.health.healthy ? 'healthy' : `unhealthy: ${i.health.detail}`) : '–'),
          h('td', {}, String(i.epoch)),
          h('td', {}, i.pid === undefined ? '–' : String(i.pid)),
        ),
      ),
    );
  }

  #renderCharts(): void {
    const ss = this.#samples;
    const xs = ss.map((s) => secs(s.at));
    const v = this.#view;
    const waiting =
      ss.length === 0 ? 'Waiting for the first samples (the control plane takes one a second)…' : undefined;
    const last = ss.at(-1);
    const hasLoad = ss.some((s) => s.load !== undefined);
    this.#charts.load.update(
      loadData(ss),
      last?.load !== undefined
        ? `Load ${num(last.load)} requests/s, capacity at target ${num(last.capacity)}${last.forecast ? `, forecast ${num(last.forecast.mean)} (${num(last.forecast.lower)} to ${num(last.forecast.upper)})` : ''}.`
        : '',
      waiting ??
        (hasLoad
          ? undefined
          : v && !v.scaling
            ? 'This service neither scales nor forecasts (scaling.max equals scaling.min): no load series.'
            : 'No load measured yet.'),
    );
    this.#charts.counts.update(
      [xs, ss.map((s) => s.serving), ss.map((s) => s.warmPool)],
      last ? `${last.serving} serving, ${last.warmPool} in the warm pool.` : '',
      waiting,
    );
    const hasShadow = ss.some((s) => s.shadow);
    this.#charts.shadow.update(
      [
        xs,
        ss.map((s) => (s.shadow ? s.shadow.live * 100 : null)),
        ss.map((s) => (s.shadow ? s.shadow.shadow * 100 : null)),
      ],
      last?.shadow
        ? `Live ${num(last.shadow.live * 100)} % CPU, shadow predicts ${num(last.shadow.shadow * 100)} %.`
        : '',
      waiting ??
        (hasShadow
          ? undefined
          : 'No shadow is running for this service (shadow.count is 0 and no spike is forecast).'),
    );
    const hasLag = ss.some((s) => s.replicationLagMs !== undefined || s.syncLagSeconds !== undefined);
    this.#charts.lag.update(
      [xs, ss.map((s) => s.replicationLagMs ?? null), ss.map((s) => s.syncLagSeconds ?? null)],
      last
        ? `Replication lag ${num(last.replicationLagMs, 0)} ms, file-sync lag ${num(last.syncLagSeconds, 2)} s.`
        : '',
      waiting ??
        (hasLag ? undefined : `No replication or file sync to chart (echo mode ${v?.echoMode ?? '–'}).`),
    );
  }

  #renderAccuracy(f: Forecast): void {
    if (!f.forecasting) {
      fill(this.#accuracy, h('p', { class: 'muted' }, `No forecast: ${f.note}.`));
      return;
    }
    fill(
      this.#accuracy,
      h(
        'table',
        { class: 'grid' },
        h('caption', { class: 'sr-only' }, 'Forecast against actual'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['Window', 'Resolved', 'MASE', 'Coverage', 'Verdict'].map((c) => h('th', { scope: 'col' }, c)),
          ),
        ),
        h('tbody', {}, accuracyRow('last hour', f.hour), accuracyRow('last day', f.day)),
      ),
      h(
        'p',
        { class: 'muted' },
        `MASE below 1 beats the forecast "the load stays as it is"; coverage is the share of actuals inside the forecast interval. ${f.pending} forecast(s) not yet due.`,
      ),
    );
  }

  /** Stops polling and listening. */
  close(): void {
    this.#closed = true;
    window.clearInterval(this.#timer);
    this.#unsubscribe();
  }
}
