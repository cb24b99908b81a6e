// What the primary reports about each echo: counters and gauges, initial-sync progress, and the
// per-batch timeline a tracer can ask for.

/** Sync counters and gauges of one echo, as seen from the primary. */
export interface SyncStats {
  readonly echo: string;
  readonly connected: boolean;
  /** Age of the oldest change not yet applied on the echo (0 when caught up). */
  readonly lagSeconds: number;
  /** Bytes sent or being sent but not yet acknowledged. */
  readonly lagBytes: number;
  /** Changed bytes per second on the primary (delta bytes, 10 s window). */
  readonly changeRateBytesPerSec: number;
  /** Changed files per second on the primary (10 s window). */
  readonly changeRateFilesPerSec: number;
  /** Bytes written to the wire to this echo (frames, all overheads). */
  readonly wireBytes: number;
  /** Bytes received from this echo (handshake, manifest, acknowledgements). */
  readonly wireBytesIn: number;
  /** Batch data and metadata bytes before compression. */
  readonly rawBytes: number;
  /** Uncompressed / compressed payload bytes (1 when nothing compressed). */
  readonly compressionRatio: number;
  readonly batchesSent: number;
  readonly batchesAcked: number;
  readonly lastAckedSeq: number;
  readonly errors: number;
  readonly lastError: string | null;
  /** Connections of this echo closed because a newer authenticated one replaced them. */
  readonly supersededConnections: number;
  /** Initial (full) sync progress, null once complete. */
  readonly initialSync: InitialSyncProgress | null;
}

/** How far an echo's initial (full) sync is. */
export interface InitialSyncProgress {
  /** Content bytes applied on the echo (acknowledged batches). */
  readonly doneBytes: number;
  /** Content bytes sent so far, applied or not (advances per data frame, ahead of `doneBytes`). */
  readonly sentBytes: number;
  /** Content bytes to make current. */
  readonly totalBytes: number;
  /** Files applied on the echo. */
  readonly doneFiles: number;
  /** Files to make current. */
  readonly totalFiles: number;
}

/**
 * Source-side timeline of one batch, emitted as `trace` after its acknowledgement when a listener
 * exists. Times are milliseconds since the epoch at sub-millisecond resolution
 * (`performance.timeOrigin + performance.now()`), comparable with an echo's `AppliedEvent` timings.
 */
export interface BatchTrace {
  readonly echo: string;
  readonly seq: number;
  readonly files: number;
  readonly dataBytes: number;
  /** When each change it carries was reported by the watcher (first 256). */
  readonly changeAt: readonly number[];
  /** The batch was cut: its dirty paths taken for building. */
  readonly cutAt: number;
  /** Built and encoded (paths examined, content read and diffed). */
  readonly builtAt: number;
  /** Its last frame was written to the socket. */
  readonly sentAt: number;
  /** Its acknowledgement arrived. */
  readonly ackedAt: number;
}

/** Epoch milliseconds at sub-millisecond resolution. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
