import { get, SessionEnded } from './api.js';
import { decisionTable } from './decision-log.js';
import { ago, fill, h } from './dom.js';
import type { DecisionFeed } from './events.js';
import type { Service } from './types.js';

function roles(s: Service): string {
  const n = (role: string): number =>
    s.instances.filter((i) => i.role === role && i.phase !== 'stopped').length;
  return `${n('primary')} primary · ${n('echo')} echo · ${n('shadow')} shadow`;
}

function health(s: Service): { text: string; ok: boolean } {
  const checked = s.instances.filter((i) => i.health);
  const bad = checked.filter((i) => !i.health!.healthy);
  if (checked.length === 0) return { text: 'no checks', ok: true };
  return bad.length
    ? { text: `${bad.length} unhealthy`, ok: false }
    : { text: `${checked.length} healthy`, ok: true };
}

/** The services at a glance: roles, epochs, health, degraded, last failover; and recent decisions. */
export class Overview {
  readonly element: HTMLElement;
  readonly #body = h('tbody');
  readonly #empty = h('p', { class: 'muted', hidden: true }, 'The control plane runs no services.');
  readonly #log = decisionTable('Recent decisions, all services');
  readonly #timer: number;
  readonly #unsubscribe: () => void;
  readonly #onSessionEnd: () => void;

  constructor(feed: DecisionFeed, onSessionEnd: () => void) {
    this.#onSessionEnd = onSessionEnd;
    this.element = h(
      'div',
      { class: 'overview' },
      h('h1', {}, 'Services'),
      h(
        'section',
        { class: 'panel' },
        h(
          'table',
          { class: 'grid services' },
          h('caption', { class: 'sr-only' }, 'Services'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Service', 'Epoch', 'Instances', 'Health', 'Redundancy', 'Last failover'].map((c) =>
                h('th', { scope: 'col' }, c),
              ),
            ),
          ),
          this.#body,
        ),
        this.#empty,
      ),
      this.#log.element,
    );
    this.#log.render(feed.list());
    this.#unsubscribe = feed.subscribe(() => this.#log.render(feed.list()));
    void this.#poll();
    this.#timer = window.setInterval(() => void this.#poll(), 2000);
  }

  async #poll(): Promise<void> {
    try {
      const { services } = await get<{ services: Service[] }>('/v1/services');
      this.#render(services);
    } catch (err) {
      if (err instanceof SessionEnded) this.#onSessionEnd();
    }
  }

  #render(services: Service[]): void {
    this.#empty.hidden = services.length > 0;
    this.#body.replaceChildren(
      ...services.map((s) => {
        const hl = health(s);
        const last = s.lastFailover;
        const row = h(
          'tr',
          { 'data-service': s.name },
          h('th', { scope: 'row' }, h('a', { href: `#/service/${encodeURIComponent(s.name)}` }, s.name)),
          h('td', {}, String(s.epoch)),
          h('td', {}, roles(s)),
          h('td', {}, h('span', { class: `badge ${hl.ok ? 'ok' : 'bad'}` }, hl.text)),
          h(
            'td',
            {},
            s.degraded
              ? h('span', { class: 'badge bad' }, 'degraded')
              : h('span', { class: 'badge ok' }, 'redundant'),
          ),
          h('td', {}, last ? `${last.kind} ${ago(last.at)} (${last.from} → ${last.to})` : 'none'),
        );
        return row;
      }),
    );
  }

  close(): void {
    window.clearInterval(this.#timer);
    this.#unsubscribe();
  }
}

/** What the page shows when there is no session: how to get one. */
export function loginNeeded(main: HTMLElement): void {
  fill(
    main,
    h(
      'section',
      { class: 'notice' },
      h('h1', {}, 'Log in to see the dashboard'),
      h('p', {}, 'The dashboard needs a session. On the machine running Understudy, run'),
      h('pre', {}, 'understudy dashboard'),
      h('p', {}, 'and open the one-time link it prints (it works once, within a minute).'),
    ),
  );
}
