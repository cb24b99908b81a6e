import { constants } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, UnderstudyError } from '../errors/index.js';
import type { Mutation } from './mutation.js';
import { MutationLog } from './mutation-log.js';
import {
  FLAG_AFTER_GAP,
  FLAG_AFTER_SKIP,
  SEGMENT_HEADER_BYTES,
  encodeRecord,
  scanSegment,
  segmentHeader,
  segmentName,
} from './mutation-log-segment.js';
import { GENESIS_FILE, scanLogDir, type LogSegment } from './mutation-log-recover.js';
import {
  closeAsync,
  fsyncAsync,
  ftruncateAsync,
  nodeMutationLogIo,
  openAsync,
  pendingBatch,
  type MutationLogIo,
  type PendingBatch,
} from './mutation-log-io.js';

/**
 * How the active segment is opened with the real file writes: `O_DSYNC`, so the write of a batch is
 * durable when it returns — one trip to the thread pool per batch instead of a write and then an
 * fdatasync (the same guarantee: the data and what is needed to read it back are on disk).
 */
const APPEND_DSYNC = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_DSYNC;
const CREATE_DSYNC = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC;

export { nodeMutationLogIo, type MutationLogIo } from './mutation-log-io.js';

/** Options of {@link DurableMutationLog}. */
export interface DurableMutationLogOptions {
  /** Directory of the segment files (created owner-only). Unset: the log is kept in memory only. */
  dir?: string;
  /** Bytes of segments kept; the oldest segments are deleted past it (the active one is always kept). @default 256 MiB */
  maxBytes?: number;
  /** A segment whose newest mutation is older than this is deleted (the active one is always kept), ms. @default 24 h */
  maxAgeMs?: number;
  /** A segment is closed and a new one started once it holds this many bytes. @default 16 MiB */
  segmentBytes?: number;
  /** Bytes of recent mutations also kept in memory (replays from there need no disk read). @default 16 MiB */
  memoryBytes?: number;
  /** File writes (a seam for tests). @default {@link nodeMutationLogIo} */
  io?: MutationLogIo;
  /**
   * Least time between the starts of two batch writes, ms: appends meanwhile join the next batch (fewer,
   * larger writes and syncs). For a log nobody waits on (async replication acknowledges before the log
   * is durable); write-through keeps 0, a batch starting as soon as the previous one is durable.
   * @default 0
   */
  flushIntervalMs?: number;
  /**
   * The interval applies only after a batch of at least this many appends (PostgreSQL's
   * `commit_siblings` beside its `commit_delay`): a lone writer's append is written at once, while
   * under concurrent load appends share larger batches. @default 1 (always)
   */
  flushIntervalMinBatch?: number;
  /** Clock, ms. @default Date.now */
  now?: () => number;
  /** Test hook: called during a rotation by size, after the new segment's header is written and before it is synced. */
  onRotate?: () => void;
}

/** What opening the log found on disk. */
export interface MutationLogRecovery {
  /** Segments kept. */
  segments: number;
  /** Mutations in them. */
  records: number;
  lastSeq: number;
  firstKeptSeq: number;
  /** A torn last record (a crash during a write) that was cut off. */
  torn?: { file: string; offset: number; bytes: number };
  /** Segments deleted because a later one starts after a gap (mutations lost from the log by a failed write). */
  droppedBeforeGap: number;
  /**
   * Whether the directory already held a log (an earlier process wrote it): that process may have handed
   * out sequence numbers past {@link lastSeq} that never became durable (see
   * {@link DurableMutationLog.skipAhead}).
   */
  existing: boolean;
}

const MiB = 1024 * 1024;

/**
 * The per-service mutation log, durable: the primary's order of mutations in segment files under
 * `dir`, so that a lagging echo, a restarted echo, or a restarted control process can be brought up to
 * date by replay instead of a full state copy. Appends are written and fsynced in batches (group
 * commit: appends that arrive while a batch is being written share the next fsync); an append's promise
 * resolves once the mutation is durable, so write-through can acknowledge only durable mutations.
 * Segments rotate by size and are deleted past `maxBytes` or `maxAgeMs`. On open a torn last record is
 * cut off and reported; any other damage is refused ({@link ErrorCode.MutationLogCorrupt}). A failed
 * write (disk full) rejects its batch ({@link ErrorCode.MutationLogWrite}); the log continues in a new
 * segment after the gap once writes succeed again.
 */
export class DurableMutationLog {
  readonly #dir: string | undefined;
  readonly #maxBytes: number;
  readonly #maxAgeMs: number;
  readonly #segmentBytes: number;
  readonly #memoryBytes: number;
  readonly #io: MutationLogIo;
  /** Segments are opened `O_DSYNC` (the real file writes): a batch's write needs no separate fdatasync. */
  readonly #dsync: boolean;
  readonly #now: () => number;
  readonly #flushIntervalMs: number;
  readonly #flushIntervalMinBatch: number;
  /** Appends in the batch written last (the interval applies after a large enough one). */
  #lastBatchSize = 0;
  /** performance.now() when the last batch write started. */
  #lastFlushAt = -Infinity;
  readonly #onRotate: (() => void) | undefined;
  #tail: MutationLog;
  #segments: LogSegment[] = [];
  #fd: number | undefined;
  #pending: PendingBatch | undefined;
  #flushing: Promise<void> | undefined;
  #lastSeq = 0;
  #durableSeq = 0;
  /** The next batch starts a new segment flagged as following a gap. */
  #gap = false;
  #closed = false;
  #writeFailures = 0;
  #batchWrites = 0;
  #lastWriteError: string | undefined;
  #recovery: MutationLogRecovery;
  #stream: string | undefined;
  /**
   * Ranges `(after, to]` of sequence numbers that hold no mutation ({@link skipAhead}), ascending: a
   * position inside one (or at its start) is the same position as its end.
   */
  #skips: Array<[after: number, to: number]> = [];
  /** The log holds every mutation of its service's state since that state began ({@link markGenesis}). */
  #fromGenesis = false;

  private constructor(options: DurableMutationLogOptions) {
    this.#dir = options.dir;
    this.#maxBytes = options.maxBytes ?? 256 * MiB;
    this.#maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
    this.#segmentBytes = options.segmentBytes ?? 16 * MiB;
    this.#memoryBytes = options.memoryBytes ?? 16 * MiB;
    this.#io = options.io ?? nodeMutationLogIo;
    // A test's io seam decides durability itself (its sync may fail): it gets the write + sync path.
    this.#dsync = options.io === undefined;
    this.#now = options.now ?? Date.now;
    this.#flushIntervalMs = options.flushIntervalMs ?? 0;
    this.#flushIntervalMinBatch = options.flushIntervalMinBatch ?? 1;
    this.#onRotate = options.onRotate;
    this.#tail = new MutationLog({ maxBytes: this.#memoryBytes });
    this.#recovery = {
      segments: 0,
      records: 0,
      lastSeq: 0,
      firstKeptSeq: 1,
      droppedBeforeGap: 0,
      existing: false,
    };
  }

  /** An in-memory log (no `dir`): appends are "durable" at once; replay only from what memory keeps. */
  static inMemory(options: Omit<DurableMutationLogOptions, 'dir'> = {}): DurableMutationLog {
    const { dir: _dir, ...memoryOnly } = options as DurableMutationLogOptions;
    return new DurableMutationLog(memoryOnly);
  }

  /** Opens (and recovers) the log in `options.dir`, or an in-memory log when no directory is given. */
  static async open(options: DurableMutationLogOptions = {}): Promise<DurableMutationLog> {
    for (const [name, v] of Object.entries({
      maxBytes: options.maxBytes,
      maxAgeMs: options.maxAgeMs,
      segmentBytes: options.segmentBytes,
      memoryBytes: options.memoryBytes,
    })) {
      if (v !== undefined && !(Number.isFinite(v) && v > 0))
        throw new UnderstudyError(ErrorCode.Config, `mutation log option ${name} must be positive, got ${v}`);
    }
    const log = new DurableMutationLog(options);
    if (log.#dir) await log.#recover(log.#dir);
    return log;
  }

  async #recover(dir: string): Promise<void> {
    const scan = await scanLogDir(dir, this.#io);
    const recovery = this.#recovery;
    recovery.existing = scan.existing;
    if (scan.torn) recovery.torn = scan.torn;
    recovery.droppedBeforeGap = scan.droppedBeforeGap;
    this.#stream = scan.stream;
    this.#fromGenesis = scan.fromGenesis;
    this.#segments = scan.segments;
    this.#skips = scan.skips;
    const last = scan.segments.at(-1);
    this.#lastSeq = last ? (last.lastSeq ?? last.firstSeq - 1) : 0;
    this.#durableSeq = this.#lastSeq;
    this.#tail = new MutationLog({ maxBytes: this.#memoryBytes, startSeq: this.#lastSeq });
    if (last) this.#fd = await openAsync(last.path, this.#dsync ? APPEND_DSYNC : 'a', 0o600);
    else await this.#startSegment(this.#lastSeq + 1, 0);
    await this.#applyRetention();
    recovery.segments = this.#segments.length;
    recovery.records = this.#segments.reduce((a, seg) => a + (scan.records.get(seg.path) ?? 0), 0);
    recovery.lastSeq = this.#lastSeq;
    recovery.firstKeptSeq = this.firstKeptSeq;
  }

  /** What the last open found on disk. */
  get recovery(): MutationLogRecovery {
    return this.#recovery;
  }

  /**
   * The name of this log's sequence (kept in `<dir>/stream`): seq numbers of one stream continue across
   * restarts. Undefined for an in-memory log (its seqs start again at 1).
   */
  get stream(): string | undefined {
    return this.#stream;
  }

  /** Least time between the starts of two batch writes, ms ({@link DurableMutationLogOptions.flushIntervalMs}). */
  get flushIntervalMs(): number {
    return this.#flushIntervalMs;
  }

  /** Appends in a batch from which the next one waits for the interval ({@link DurableMutationLogOptions.flushIntervalMinBatch}). */
  get flushIntervalMinBatch(): number {
    return this.#flushIntervalMinBatch;
  }

  /** Whether mutations are kept on disk. */
  get durable(): boolean {
    return this.#dir !== undefined;
  }

  /** Sequence number of the last appended mutation (0 when none). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Sequence number of the last mutation known durable. */
  get durableSeq(): number {
    return this.#dir ? this.#durableSeq : this.#lastSeq;
  }

  /**
   * Whether this log began with its service's state — opened empty for a service that had no instance
   * yet, and marked so by {@link markGenesis}. Only then does a log that still keeps seq 1 hold the
   * whole state, so that a new echo may start empty and replay it (an echo on another host, where the
   * primary's directory cannot be copied). A log opened empty for a service whose primary already has
   * state (another control replica taking over with its own data directory) is not.
   */
  get fromGenesis(): boolean {
    return this.#fromGenesis;
  }

  /**
   * Records that this log begins with its service's state (see {@link fromGenesis}); refused (false)
   * once the log holds a mutation or a skip. The marker is a file beside the segments.
   */
  async markGenesis(): Promise<boolean> {
    if (this.#fromGenesis) return true;
    if (this.#lastSeq > 0 || this.#skips.length > 0) return false;
    if (this.#dir) await writeFile(join(this.#dir, GENESIS_FILE), 'genesis\n', { mode: 0o600 });
    this.#fromGenesis = true;
    return true;
  }

  /** Oldest sequence number that can be replayed (lastSeq + 1 when none). */
  get firstKeptSeq(): number {
    if (!this.#dir) return this.#tail.firstKeptSeq;
    // After a failed write the disk has a gap: only what memory still holds is replayable.
    if (this.#gap) return this.#tail.firstKeptSeq;
    return Math.min(this.#segments[0]?.firstSeq ?? this.#lastSeq + 1, this.#tail.firstKeptSeq);
  }

  /** Whether every mutation after `seq` can be replayed (an echo at `seq` can catch up by replay). */
  canReplayFrom(seq: number): boolean {
    if (seq > this.#lastSeq) return false;
    seq = this.#position(seq);
    if (this.#tail.canReplayFrom(seq)) return true;
    const first = this.#segments[0]?.firstSeq;
    return first !== undefined && seq >= first - 1 && !this.#gap;
  }

  /** Bytes held (on disk, or in memory for an in-memory log). */
  get bytes(): number {
    if (!this.#dir) return this.#tail.bytes;
    return this.#segments.reduce((a, s) => a + s.bytes, 0);
  }

  /** Batches written (each one write, durable when it returns): appends / writes is the group commit's mean size. */
  get batchWrites(): number {
    return this.#batchWrites;
  }

  /** Failed batch writes so far, and the last error. */
  get writeFailures(): { count: number; last?: string } {
    return { count: this.#writeFailures, ...(this.#lastWriteError ? { last: this.#lastWriteError } : {}) };
  }

  /**
   * Appends a mutation whose sequence number the caller assigned (strictly greater than
   * {@link lastSeq}). The returned promise resolves once it is durable (at once for an in-memory log),
   * or rejects with {@link ErrorCode.MutationLogWrite} when its batch could not be written. It is
   * replayable from memory at once either way.
   */
  append(m: Mutation): Promise<void> {
    if (this.#closed)
      return Promise.reject(new UnderstudyError(ErrorCode.MutationLogWrite, 'the mutation log is closed'));
    if (!(m.seq > this.#lastSeq))
      throw new UnderstudyError(
        ErrorCode.Internal,
        `mutation seq ${m.seq} is not after the log's last seq ${this.#lastSeq}`,
      );
    this.#tail.push(m);
    this.#lastSeq = m.seq;
    if (!this.#dir) return Promise.resolve();
    const buf = encodeRecord(m);
    const batch = this.#pending;
    if (batch === undefined) {
      const fresh = pendingBatch(m, buf);
      this.#pending = fresh;
      this.#kick();
      return fresh.done;
    }
    batch.bufs.push(buf);
    batch.lastSeq = m.seq;
    batch.lastAt = m.at;
    return batch.done;
  }

  #kick(): void {
    if (this.#flushing) return;
    const wait = this.#lastFlushAt + this.#interval() - performance.now();
    this.#flushing = new Promise<void>((r) => (wait > 0 ? setTimeout(r, wait) : setImmediate(r)))
      .then(() => this.#flushLoop())
      .finally(() => {
        this.#flushing = undefined;
        if (this.#pending !== undefined && !this.#closed) this.#kick();
      });
  }

  /** The least time from the start of the last batch write to the next one's, ms. */
  #interval(): number {
    return this.#lastBatchSize >= this.#flushIntervalMinBatch ? this.#flushIntervalMs : 0;
  }

  async #flushLoop(): Promise<void> {
    for (let batch = this.#pending; batch !== undefined; batch = this.#pending) {
      this.#pending = undefined;
      this.#lastFlushAt = performance.now();
      this.#lastBatchSize = batch.bufs.length;
      await this.#flushBatch(batch);
      // With an interval, the next batch waits for it (#kick, once this loop is done).
      if (this.#interval() > 0) return;
    }
  }

  async #flushBatch(batch: PendingBatch): Promise<void> {
    const first = { seq: batch.firstSeq };
    const lastOfBatch = { seq: batch.lastSeq, at: batch.lastAt };
    try {
      if (this.#gap || this.#fd === undefined) await this.#startSegment(first.seq, FLAG_AFTER_GAP);
      const seg = this.#segments.at(-1);
      const fd = this.#fd;
      if (!seg || fd === undefined) throw new Error('no open segment');
      const buf = batch.bufs.length === 1 ? (batch.bufs[0] as Buffer) : Buffer.concat(batch.bufs);
      try {
        await this.#io.write(fd, buf);
        if (!this.#dsync) await this.#io.sync(fd);
      } catch (err) {
        // Cut the partial batch off so the segment stays a valid prefix; continue in a new segment.
        this.#gap = true;
        await ftruncateAsync(fd, seg.bytes).catch(() => undefined);
        throw err;
      }
      seg.bytes += buf.length;
      this.#batchWrites++;
      seg.lastSeq = lastOfBatch.seq;
      seg.lastAt = lastOfBatch.at;
      this.#durableSeq = lastOfBatch.seq;
      batch.resolve();
      if (seg.bytes >= this.#segmentBytes) await this.#startSegment(this.#durableSeq + 1, 0, true);
      await this.#applyRetention();
    } catch (err) {
      this.#gap = true;
      this.#writeFailures++;
      const code = (err as NodeJS.ErrnoException).code;
      this.#lastWriteError = `${code ?? ''} ${(err as Error).message}`.trim();
      const e = new UnderstudyError(
        ErrorCode.MutationLogWrite,
        `cannot write mutations ${first.seq}..${lastOfBatch.seq} to the mutation log in ${this.#dir}: ${(err as Error).message}${code === 'ENOSPC' ? ' (the disk is full)' : ''}`,
        { cause: err, details: { dir: this.#dir, errno: code, fromSeq: first.seq, toSeq: lastOfBatch.seq } },
      );
      batch.reject(e);
    }
  }

  /**
   * Closes the active segment and starts `<firstSeq>.seg`. After a gap (`FLAG_AFTER_GAP`) the older
   * segments are deleted: an echo behind the gap cannot catch up by replay.
   */
  async #startSegment(firstSeq: number, flags: number, rotation = false): Promise<void> {
    const dir = this.#dir;
    if (!dir) return;
    const name = segmentName(firstSeq);
    const path = join(dir, name);
    const fd = await openAsync(path, this.#dsync ? CREATE_DSYNC : 'w', 0o600);
    try {
      await this.#io.write(fd, segmentHeader(flags));
      if (rotation) this.#onRotate?.();
      await this.#io.sync(fd);
      await this.#syncDir(dir);
    } catch (err) {
      await closeAsync(fd).catch(() => undefined);
      await unlink(path).catch(() => undefined);
      throw err;
    }
    if (this.#fd !== undefined) await closeAsync(this.#fd).catch(() => undefined);
    this.#fd = fd;
    if (flags & FLAG_AFTER_GAP) {
      for (const old of this.#segments) if (old.path !== path) await unlink(old.path).catch(() => undefined);
      this.#segments = [];
      this.#skips = [];
      this.#gap = false;
    } else {
      this.#segments = this.#segments.filter((s) => s.path !== path);
    }
    this.#segments.push({
      path,
      name,
      firstSeq,
      lastSeq: undefined,
      lastAt: undefined,
      bytes: SEGMENT_HEADER_BYTES,
    });
  }

  async #syncDir(dir: string): Promise<void> {
    const fd = await openAsync(dir, 'r');
    try {
      await fsyncAsync(fd);
    } finally {
      await closeAsync(fd);
    }
  }

  /** Deletes the oldest closed segments past `maxBytes` or older than `maxAgeMs`. */
  async #applyRetention(): Promise<void> {
    const cutoff = this.#now() - this.#maxAgeMs;
    let total = this.bytes;
    while (this.#segments.length > 1) {
      const oldest = this.#segments[0];
      if (!oldest || (total <= this.#maxBytes && (oldest.lastAt ?? -Infinity) >= cutoff)) break;
      await unlink(oldest.path).catch(() => undefined);
      this.#segments.shift();
      total -= oldest.bytes;
    }
  }

  /**
   * The mutations after `seq` if they are all still in memory (a synchronous snapshot: nothing appended
   * later is in it), else undefined.
   */
  recent(seq: number): Mutation[] | undefined {
    const pos = this.#position(seq);
    return this.#tail.canReplayFrom(pos) ? this.#tail.since(pos) : undefined;
  }

  /** The same position as `seq` past the ranges that hold no mutation ({@link skipAhead}). */
  #position(seq: number): number {
    let pos = seq;
    for (const [after, to] of this.#skips) if (pos >= after && pos < to) pos = to;
    return pos;
  }

  /**
   * Whether `seq` lies in a range a restarted log skipped ({@link skipAhead}): a seq an earlier process
   * may have handed out without making it durable.
   */
  isSkipped(seq: number): boolean {
    return this.#skips.some(([after, to]) => seq > after && seq <= to);
  }

  /**
   * Mutations with sequence number > `seq`, oldest first, read segment by segment from disk and then
   * from memory (never the whole log at once). Throws when `seq` is no longer replayable.
   */
  async *since(seq: number): AsyncGenerator<Mutation> {
    let pos = seq;
    for (;;) {
      pos = this.#position(pos);
      if (!this.canReplayFrom(pos) && pos < this.#lastSeq)
        throw new UnderstudyError(
          ErrorCode.NotFound,
          `the mutation log no longer holds the mutations after seq ${pos} (it keeps ${this.firstKeptSeq}..${this.#lastSeq})`,
        );
      const recent = this.recent(pos);
      if (recent) {
        yield* recent;
        return;
      }
      const seg = this.#segments.find((s) => s.lastSeq !== undefined && s.lastSeq > pos);
      let progressed = false;
      if (seg) {
        const written = seg.bytes;
        const buf = await readFile(seg.path).catch((err: unknown) => {
          // Deleted under the reader (retention) or unreadable: the position cannot be served.
          if (this.#segments.includes(seg) || !this.canReplayFrom(pos))
            throw new UnderstudyError(
              ErrorCode.NotFound,
              `the mutation log cannot replay after seq ${pos}: segment ${seg.path} is unreadable (${(err as Error).message})`,
            );
          return undefined;
        });
        if (buf) {
          const scan = scanSegment(buf.subarray(0, written), seg.path, { isLast: true, keepRecords: true });
          for (const m of scan.records) {
            if (m.seq <= pos) continue;
            yield m;
            pos = m.seq;
            progressed = true;
          }
        }
      }
      if (!progressed) await (this.#flushing ?? new Promise((r) => setImmediate(r)));
    }
  }

  /**
   * Moves the log past `seq` without mutations for the sequence numbers in between (they were applied
   * by the primary and an echo but lost from the log's unwritten tail). Older segments are deleted: an
   * echo behind `seq` can no longer catch up by replay. Does nothing when `seq` ≤ {@link lastSeq}.
   */
  async skipTo(seq: number): Promise<void> {
    if (seq <= this.#lastSeq) return;
    // Every pending batch first (with flushIntervalMs one flush may leave the next batch pending).
    while (this.#flushing) await this.#flushing;
    this.#lastSeq = seq;
    this.#durableSeq = seq;
    this.#tail = new MutationLog({ maxBytes: this.#memoryBytes, startSeq: seq });
    if (this.#dir) await this.#startSegment(seq + 1, FLAG_AFTER_GAP);
  }

  /**
   * Moves the log past `seq` without losing what it holds: the sequence numbers in between hold no
   * mutation, and a position among them is the same as `seq` (a segment flagged `FLAG_AFTER_SKIP`
   * starts after it). A restarted log calls it so that it never hands out again a seq that the earlier
   * process may have handed out — to an echo, which applied it — without making it durable. Does
   * nothing when `seq` ≤ {@link lastSeq}.
   */
  async skipAhead(seq: number): Promise<void> {
    if (seq <= this.#lastSeq) return;
    while (this.#flushing) await this.#flushing;
    if (seq <= this.#lastSeq) return;
    this.#skips.push([this.#lastSeq, seq]);
    this.#lastSeq = seq;
    this.#durableSeq = seq;
    this.#tail = new MutationLog({ maxBytes: this.#memoryBytes, startSeq: seq });
    if (this.#dir) await this.#startSegment(seq + 1, FLAG_AFTER_SKIP);
  }

  /** Writes what is pending and closes the active segment. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    while (this.#flushing) await this.#flushing;
    this.#closed = true;
    if (this.#fd !== undefined) await closeAsync(this.#fd).catch(() => undefined);
    this.#fd = undefined;
  }
}
