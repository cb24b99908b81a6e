import type { Decision } from '../control/index.js';

/** One line per decision: time, kind, subject, what, why and outcome. */
export function formatDecision(d: Decision): string {
  const time = new Date(d.at).toISOString().slice(11, 23);
  const subject = d.instance ?? d.service;
  const outcome = d.outcome === 'recorded' ? '' : ` [${d.outcome}]`;
  return `${time} ${d.kind.padEnd(9)} ${subject.padEnd(10)} ${d.what} — ${d.why}${outcome}`;
}
