// The contract of a service's replication: the rules it is configured with, the requests the router
// hands it, and what write-through reports back (the implementation is ServiceReplication).
import type { AppliedSeqProbe } from './applied-seq.js';
import type { BatchRules } from './batch.js';
import type { EchoReplicationStats } from './echo-replicator.js';
import type { DurableMutationLogOptions } from './mutation-log-durable.js';

/** What counts as a mutation and how it is ordered (the spec's `echo.mutations`, resolved). */
export interface MutationRules {
  methods: string[];
  /** Path prefixes. */
  paths: string[];
  partitionBy?: { header: string } | { pathSegment: number };
  /** An echo that has not applied a mutation within this time leaves the synchronous set, ms. */
  timeoutMs: number;
  /** Write-through only: refuse to acknowledge a write no echo applied. */
  strict: boolean;
  /**
   * `serial`: one mutation in flight per partition (the primary's order is the order of answers);
   * `pipelined`: the router numbers every mutation at arrival and many are in flight, each instance
   * applying them in seq order (docs/failover.md, the instance contract). @default 'serial'
   */
  order?: 'serial' | 'pipelined';
  /**
   * Pipelined order only: replicate to each echo in batches (docs/failover.md, "Batched replication"):
   * up to `max` mutations in one POST to `path`, which the instance applies in seq order and answers
   * per mutation. @default unset: one request per mutation
   */
  batch?: BatchRules;
}

/** A mutating request as the router received it (what is logged and replayed). */
export interface MutationRequest {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /**
   * Epoch the request was stamped with: pipelined order, at arrival (sent on every attempt); serial order,
   * the epoch of the primary that applied it (the router stamps each attempt with its backend's epoch).
   */
  epoch?: number;
}

/** Options of {@link ServiceReplication}. */
export interface ServiceReplicationOptions {
  service: string;
  rules: MutationRules;
  consistency: 'write-through' | 'async';
  /** The service's current epoch, stamped on every mutation. */
  epoch: () => number;
  /** Called when an echo leaves or rejoins the synchronous set (for decisions/events). */
  onEchoSyncChange?: (instanceId: string, inSync: boolean, reason: string) => void;
  /** Bytes of mutation bodies kept for replay in memory. @default 64 MiB (16 MiB beside a durable log) */
  logMaxBytes?: number;
  /**
   * The durable mutation log ({@link DurableMutationLog}): with a `dir`, mutations are kept on disk and
   * write-through acknowledges only durable ones. Use {@link ServiceReplication.open} to open it.
   * @default in memory only
   */
  log?: DurableMutationLogOptions;
  /**
   * Pipelined order: the name of this router's seq stream (`x-understudy-stream`); an instance that sees a
   * new stream starts counting at its seq 1. A durable log resuming after a restart passes its own.
   * @default a random UUID
   */
  stream?: string;
  /** Pipelined order: mutations in flight to one echo at once. @default 128 */
  window?: number;
  /**
   * How to ask an instance which seq it consumed last (the spec's `echo.mutations.appliedSeq`).
   * Pipelined order over a reopened durable log: no seq is handed out until the primary has been asked
   * (the seqs it consumed beyond the log are logged as skips first), so that none is handed out twice.
   * @default unset: seqs continue after the log's last one at once
   */
  appliedSeq?: AppliedSeqProbe;
}

/** A mutation in progress: hold its partition until {@link ServiceReplication.commit} or {@link ServiceReplication.abort}. */
export interface MutationTicket {
  partition: string;
  release: () => void;
}

/** Outcome of waiting for echoes before acknowledging a write. */
export interface WriteThroughOutcome {
  /** Acknowledge the client (false only in strict mode with no echo applied). */
  acknowledge: boolean;
  /** Echoes that applied it. */
  appliedBy: string[];
  /** Echoes that did not within the timeout. */
  missedBy: string[];
  /** The durable log could not write it (disk full): `<code>: <message>`, the code `UNDERSTUDY_ERR_MUTATION_LOG_WRITE`. */
  logError?: string;
}

/** Replication state of one service: its mutation log and every echo ({@link ServiceReplication.stats}). */
export interface ServiceReplicationStats {
  lastSeq: number;
  logBytes: number;
  strictRefusals: number;
  log: {
    durable: boolean;
    durableSeq: number;
    firstKeptSeq: number;
    /** Batches written to disk (appends / writes: the mean group commit). */
    writes: number;
    writeFailures: number;
    /** The last failed write's errno and message (disk full: `ENOSPC …`). */
    lastWriteError?: string;
    refusals: number;
  };
  echoes: EchoReplicationStats[];
  order: 'serial' | 'pipelined';
  /** Pipelined: seqs handed out whose outcome is not known yet (a stuck one holds back the log). */
  unresolved: number;
}
