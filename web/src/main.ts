import 'uplot/dist/uPlot.min.css';
import '../app.css';
import { get, SessionEnded } from './api.js';
import { fill, h } from './dom.js';
import { DecisionFeed } from './events.js';
import { loginNeeded, Overview } from './overview.js';
import { ServicePage } from './service-page.js';

const main = document.getElementById('app')!;
const conn = document.getElementById('conn')!;

function status(text: string, ok: boolean): void {
  conn.textContent = text;
  conn.className = `conn ${ok ? 'up' : 'down'}`;
}

let current: { close(): void } | undefined;
let feed: DecisionFeed | undefined;

function sessionEnded(): void {
  current?.close();
  current = undefined;
  feed?.close();
  status('not logged in', false);
  loginNeeded(main);
}

/** Shows the page the location's hash names: `#/` the overview, `#/service/<name>` a service. */
function route(): void {
  if (!feed) return;
  current?.close();
  const m = /^#\/service\/(.+)$/.exec(location.hash);
  const page = m
    ? new ServicePage(decodeURIComponent(m[1]!), feed, sessionEnded)
    : new Overview(feed, sessionEnded);
  current = page;
  fill(main, page.element);
  document.title = m ? `${decodeURIComponent(m[1]!)} · Understudy` : 'Services · Understudy';
}

async function start(): Promise<void> {
  try {
    await get('/v1/status');
  } catch (err) {
    if (err instanceof SessionEnded) return sessionEnded();
    status('unreachable', false);
    fill(main, h('p', { class: 'message' }, `The control plane did not answer: ${(err as Error).message}`));
    return;
  }
  feed = new DecisionFeed(status);
  await feed.start();
  window.addEventListener('hashchange', route);
  route();
}

void start();
