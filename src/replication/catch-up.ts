// Catch-up of an echo from the durable mutation log on disk (docs/failover.md, "The durable mutation
// log"): the replay that precedes the live stream when memory no longer holds the echo's position.
import type { EchoReplicator } from './echo-replicator.js';
import type { DurableMutationLog } from './mutation-log-durable.js';

/** Where a catching-up echo stands: its last enqueued seq, and whether the catch-up was abandoned. */
export interface CatchUpState {
  pos: number;
  stop: boolean;
}

/** Mutations enqueued to a catching-up echo and not yet applied, at most. */
const MAX_QUEUED = 1024;

/**
 * Replays the log after `state.pos` to `echo`, page by page from disk with at most {@link MAX_QUEUED}
 * pending, until memory holds the rest (enqueued too) or `state.stop`. The caller then joins the echo to
 * the live stream — enqueueing what was logged since `state.pos` in the same synchronous step.
 */
export async function catchUpFromLog(
  log: DurableMutationLog,
  echo: EchoReplicator,
  state: CatchUpState,
): Promise<void> {
  for await (const m of log.since(state.pos)) {
    if (state.stop) return;
    while (echo.stats().pending >= MAX_QUEUED && !state.stop) await new Promise((r) => setTimeout(r, 5));
    echo.enqueue(m);
    state.pos = m.seq;
    // Hand over to the live stream as soon as memory holds the rest (synchronously: nothing is missed).
    const rest = log.recent(state.pos);
    if (rest) {
      for (const r of rest) echo.enqueue(r);
      state.pos = log.lastSeq;
      break;
    }
  }
}
