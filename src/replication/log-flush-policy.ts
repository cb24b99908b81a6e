// When a service's durable mutation log writes its batches (group commit), by consistency: nobody waits
// for an async service's log; a write-through client waits for it beside the echo.
import type { DurableMutationLogOptions } from './mutation-log-durable.js';

/**
 * Async replication: least time between two batch writes of the durable mutation log, ms (fewer, larger
 * writes: a sync per batch costs the control process CPU, about half per write at ~2500/s).
 */
export const ASYNC_LOG_FLUSH_INTERVAL_MS = 10;

/**
 * Write-through under concurrent load: least time between the starts of two batch writes of the durable
 * mutation log, ms, once a batch held at least {@link WRITE_THROUGH_LOG_BUSY_BATCH} appends. The log
 * is written beside the echo's batch, which takes longer, so the wait rarely delays an acknowledgement,
 * and a lone writer's append is written at once.
 */
export const WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS = 2;
/** Appends in a write-through log batch from which the next one waits ({@link WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS}). */
export const WRITE_THROUGH_LOG_BUSY_BATCH = 4;

/** The log's flush options for a service of this consistency. */
export function logFlushOptions(
  consistency: 'write-through' | 'async',
): Pick<DurableMutationLogOptions, 'flushIntervalMs' | 'flushIntervalMinBatch'> {
  return consistency === 'async'
    ? { flushIntervalMs: ASYNC_LOG_FLUSH_INTERVAL_MS }
    : {
        flushIntervalMs: WRITE_THROUGH_LOG_FLUSH_INTERVAL_MS,
        flushIntervalMinBatch: WRITE_THROUGH_LOG_BUSY_BATCH,
      };
}
