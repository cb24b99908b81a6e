import type { ControlDecision } from './records.js';

/** One failover or switchover of a service, as `understudy history` shows it. */
export interface FailoverHistoryEntry {
  /** Sequence number of its decision. */
  seq: number;
  kind: 'failover' | 'switchover';
  /** When it began, ms since the epoch. */
  at: number;
  /** The primary replaced ('' when the service had none). */
  from: string;
  /** The echo promoted ('' when none could be). */
  to: string;
  /** The epoch it set (absent when it did not complete). */
  epoch?: number;
  /** Failure to detection, ms (when the failure time is known). */
  detectionMs?: number;
  /** Detection (or request) to the new primary serving, ms. */
  promotionMs?: number;
  /** Why: the cause (`crash: …`, `forced: …`) or the request. */
  reason: string;
  /** `ok`, `failed`, `skipped` (paused), or `pending` (under way). */
  outcome: ControlDecision['outcome'];
}

/**
 * The failovers and switchovers among `decisions` (oldest first), with their epochs, instances and
 * timings as the failover recorded them in the decision's inputs.
 */
export function failoverHistory(decisions: readonly ControlDecision[]): FailoverHistoryEntry[] {
  const out: FailoverHistoryEntry[] = [];
  for (const d of decisions) {
    if (d.kind !== 'failover' && d.kind !== 'switchover') continue;
    const i = d.inputs;
    const timings = (i.timings ?? {}) as { detectionMs?: number; promotionMs?: number };
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    const candidates = Array.isArray(i.candidates) ? (i.candidates as unknown[]) : [];
    out.push({
      seq: d.seq,
      kind: d.kind,
      at: d.at,
      from: str(i.from) ?? d.instance ?? '',
      to: str(i.to) ?? str(candidates[0]) ?? '',
      ...(typeof i.epoch === 'number' ? { epoch: i.epoch } : {}),
      ...(typeof timings.detectionMs === 'number' ? { detectionMs: timings.detectionMs } : {}),
      ...(typeof timings.promotionMs === 'number' ? { promotionMs: timings.promotionMs } : {}),
      reason: d.why,
      outcome: d.outcome,
    });
  }
  return out;
}
