import type { ControlDecision, DecisionOutcome } from '../control/index.js';

/** An outcome as people read it: `ok`, `failed: <detail>`, … */
export function formatOutcome(o: DecisionOutcome): string {
  return o.detail === undefined ? o.status : `${o.status}: ${o.detail}`;
}

/** One line per decision: time, kind, subject, what, why and outcome. */
export function formatDecision(d: ControlDecision): string {
  const time = new Date(d.at).toISOString().slice(11, 23);
  const subject = d.instance ?? d.service;
  const outcome = d.outcome.status === 'recorded' ? '' : ` [${formatOutcome(d.outcome)}]`;
  return `${time} ${d.kind.padEnd(9)} ${subject.padEnd(10)} ${d.what} — ${d.why}${outcome}`;
}
