// Resuming replication over a durable log that an earlier (killed) process wrote: how far seqs move
// ahead so that none is handed out twice, which echo positions can be replayed, and (pipelined order)
// waiting for the primary's position before any seq is handed out. Used by ServiceReplication.
import { askAppliedSeq, type AppliedSeqProbe } from './applied-seq.js';
import type { EchoTarget } from './echo-replicator.js';
import type { DurableMutationLog } from './mutation-log-durable.js';
import type { MutationRules } from './replication-types.js';

/**
 * How far a restarted serial log moves its seqs ahead: more than the mutations one process can hold
 * handed out and not yet durable (each holds a buffer of ≥ 36 bytes plus its object, so 2^32 of them
 * need hundreds of GiB). Seqs stay safe integers for 2^21 restarts.
 */
export const RESTART_SEQ_LEAP = 2 ** 32;

/**
 * Pipelined order: at most this many seqs lost from the log's unwritten tail are logged as skip entries
 * (ServiceReplication.skipTo); more make a gap instead (echoes behind it need a full copy).
 */
export const MAX_SKIP_ENTRIES = 100_000;

/** Pipelined order over a reopened log: how long sequencing waits for the primary to say its position, ms. */
export const POSITION_PATIENCE_MS = 10_000;

/** Whether an echo at an applied seq can be resumed by replay, from where, and why. */
export interface ReplayVerdict {
  replay: boolean;
  fromSeq: number;
  why: string;
}

/**
 * Whether an echo whose state has applied every mutation up to `appliedSeq` can be brought up to date
 * by replaying `log` (instead of a full copy of the primary's state), and why. An echo ahead of the log
 * (pipelined order: the log's unwritten tail died with an earlier control process, the echo had applied
 * it) moves the log past its position with `skipTo`.
 */
export async function replayVerdictOf(
  log: DurableMutationLog,
  rules: MutationRules,
  appliedSeq: number,
  skipTo: (seq: number) => Promise<void>,
): Promise<ReplayVerdict> {
  if (rules.partitionBy)
    return {
      replay: false,
      fromSeq: appliedSeq,
      why: `mutations are ordered per ${'header' in rules.partitionBy ? 'header' : 'path segment'} key, so its highest applied seq ${appliedSeq} does not mean every earlier one was applied`,
    };
  if (appliedSeq > log.lastSeq) {
    const last = log.lastSeq;
    await skipTo(appliedSeq);
    return {
      replay: true,
      fromSeq: appliedSeq,
      why: `it applied up to seq ${appliedSeq}, past the log's last durable seq ${last} (the log's unwritten tail died with the earlier control process); the log continues after ${appliedSeq}`,
    };
  }
  if (log.isSkipped(appliedSeq))
    return {
      replay: true,
      fromSeq: appliedSeq,
      why: `it applied up to seq ${appliedSeq}, handed out by the earlier control process past the log's last durable seq (the log moved past every such seq on its restart, so none names a new mutation): replay every mutation logged since (the log keeps ${log.firstKeptSeq}..${log.lastSeq})`,
    };
  if (log.canReplayFrom(appliedSeq))
    return {
      replay: true,
      fromSeq: appliedSeq,
      why: `its applied seq ${appliedSeq} is in the mutation log (which keeps ${log.firstKeptSeq}..${log.lastSeq}): replay the ${log.lastSeq - appliedSeq} mutations after it`,
    };
  return {
    replay: false,
    fromSeq: appliedSeq,
    why: `its applied seq ${appliedSeq} is older than the mutation log keeps (${log.firstKeptSeq}..${log.lastSeq}${log.durable ? '' : ', in memory only'})`,
  };
}

/**
 * Pipelined order over a reopened log: asks the primary `target` which seq it consumed last (retrying
 * while `current()`) and moves the log past it with `skipTo`. Resolves true once sequencing may resume:
 * the primary answered, or it did not within {@link POSITION_PATIENCE_MS} (a primary that does not
 * serve the probe must not hold writes forever; seqs then continue after the log's last one, as without
 * the probe). Resolves false when it stopped being current.
 */
export async function positionAfterRestart(o: {
  target: EchoTarget;
  probe: AppliedSeqProbe;
  current: () => boolean;
  skipTo: (seq: number) => Promise<void>;
}): Promise<boolean> {
  const deadline = Date.now() + POSITION_PATIENCE_MS;
  let backoff = 20;
  while (o.current()) {
    const seen = await askAppliedSeq(o.target.host, o.target.port, o.probe);
    if (!o.current()) return false;
    if ('seq' in seen) {
      await o.skipTo(seen.seq);
      return true;
    }
    if (Date.now() > deadline) return true;
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 500);
  }
  return false;
}
