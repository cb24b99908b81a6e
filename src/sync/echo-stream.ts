import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { buildBatch, type BuildContext, type BuiltBatch, type StreamedFile } from './batch-builder.js';
import { ByteWriter } from './byte-codec.js';
import { compress } from './compression.js';
import type { FramedConnection } from './framed-connection.js';
import { FrameType } from './frame-codec.js';
import { encodeBatchOps, type ManifestEntry } from './messages.js';
import { relaxedIntervalMs, type ResolvedSourceOptions } from './sync-options.js';
import { TreeView } from './tree-view.js';
import { Waker } from './waker.js';
import type { PendingSignature } from './content-pool.js';
import { contentHash } from './content-hash.js';
import { encodeEnd } from './file-stream.js';
import type { ContentStream } from './file-streamer.js';
import type { FileSignature } from './signature.js';
import { nowMs, type BatchTrace, type InitialSyncProgress, type SyncStats } from './sync-stats.js';
import { ErrorCode, UnderstudyError, isErrorCode } from '../errors/index.js';

/** Shortest interval between two `progress` events while data frames go out. */
const PROGRESS_EVERY_MS = 100;

/** A DATA frame's raw bytes and, once compressed for the first send, its header and body. */
interface DataChunk {
  readonly raw: Buffer;
  header?: Buffer;
  body?: Buffer;
}

interface Outgoing {
  readonly seq: number;
  readonly batch: Buffer;
  readonly data: DataChunk[];
  raw: number;
  readonly contentBytes: number;
  /** Bytes of the data stream (records of every file; a streamed file counted by its size at open). */
  readonly dataBytes: number;
  /**
   * A file read and sent after `data` on every send of the batch (its pieces are not kept: a resend
   * reads it again); its first send uses the stream the builder opened.
   */
  readonly stream: StreamedFile | null;
  streamOpened: boolean;
  /** The streamed file's signature, computed from the file once the echo has acknowledged it. */
  signLater?: {
    readonly length: number;
    readonly hash: string;
    readonly resolve: (sig: FileSignature) => void;
    readonly reject: (err: Error) => void;
  };
  readonly lineage: string;
  readonly changeTime: number;
  readonly files: number;
  trace?: { changeAt: number[]; cutAt: number; builtAt: number; sentAt: number };
}

function* chunks(pieces: readonly Buffer[], size: number): Generator<Buffer> {
  let acc: Buffer[] = [];
  let accLen = 0;
  for (let piece of pieces) {
    while (piece.length > 0) {
      const take = Math.min(size - accLen, piece.length);
      acc.push(piece.subarray(0, take));
      accLen += take;
      piece = piece.subarray(take);
      if (accLen === size) {
        yield acc.length === 1 ? (acc[0] as Buffer) : Buffer.concat(acc);
        acc = [];
        accLen = 0;
      }
    }
  }
  if (accLen > 0) yield acc.length === 1 ? (acc[0] as Buffer) : Buffer.concat(acc);
}

/**
 * The primary's state for one echo: what it believes the echo holds (the view), pending changes,
 * the lineage and sequence of batches, and unacknowledged batches kept for resending after a reconnect.
 */
export class EchoStream {
  readonly view = new TreeView();
  #dirty = new Map<string, boolean>();
  /** Watcher report times of the pending changes, while a `trace` listener exists. */
  #changeAt: number[] = [];
  #dirtySince: number | null = null;
  #lastDirtyAt = 0;
  #lineage = randomBytes(8).toString('hex');
  #nextSeq = 1;
  #unacked: Outgoing[] = [];
  #conn: FramedConnection | undefined;
  #sending = false;
  readonly #waker = new Waker();
  #closed = false;
  #lastBatchAt = performance.now();
  #lastAckAt = -Infinity;
  #initial: { -readonly [K in keyof InitialSyncProgress]: InitialSyncProgress[K] } | null = null;
  #progressAt = 0;
  #rate: { t: number; bytes: number; files: number }[] = [];
  #c = {
    wire: 0,
    wireIn: 0,
    raw: 0,
    payload: 0,
    sent: 0,
    acked: 0,
    lastAcked: 0,
    errors: 0,
    lastError: null as string | null,
  };
  readonly loop: Promise<void>;

  constructor(
    readonly echo: string,
    private readonly opts: ResolvedSourceOptions,
    private readonly ctx: Omit<BuildContext, 'view'>,
    private readonly emit: (event: string, value: unknown) => void,
    private readonly tracing: () => boolean = () => false,
  ) {
    this.loop = this.#run();
  }

  get lineage(): string {
    return this.#lineage;
  }

  markDirty(path: string, deep: boolean): void {
    const prev = this.#dirty.get(path);
    this.#dirty.set(path, deep || prev === true);
    const now = performance.now();
    this.#dirtySince ??= now;
    this.#lastDirtyAt = now;
    if (this.#changeAt.length < 256 && this.tracing()) this.#changeAt.push(performance.timeOrigin + now);
    this.#waker.kick();
  }

  /** Whether an echo that applied `lastApplied` in `lineage` can resume without a reset. */
  canResume(lineage: string, lastApplied: number): boolean {
    // Every batch after the last acknowledged one is kept (or still being built), so any position
    // from there on can be resumed.
    return lineage === this.#lineage && lastApplied >= this.#c.lastAcked && lastApplied < this.#nextSeq;
  }

  /** Starts a new lineage: forget everything believed about the echo. */
  reset(): void {
    this.#lineage = randomBytes(8).toString('hex');
    this.#nextSeq = 1;
    this.#c.lastAcked = 0;
    for (const b of this.#unacked) b.signLater?.reject(new Error('sync reset'));
    this.#unacked = [];
    this.view.clear();
  }

  /** Loads the echo's manifest as the view and schedules a full comparison (initial sync). */
  loadManifest(entries: readonly ManifestEntry[], totalBytes: number, totalFiles = 0): void {
    this.view.clear();
    for (const e of entries) {
      if (e.type === 'file')
        this.view.set(e.path, {
          type: 'file',
          mode: e.mode,
          size: e.size,
          mtimeMs: 0,
          ino: 0,
          hash: e.hash,
          sig: null,
        });
      else if (e.type === 'dir') this.view.set(e.path, { type: 'dir', mode: e.mode });
      else this.view.set(e.path, { type: 'symlink', target: e.target });
    }
    this.#initial = { doneBytes: 0, sentBytes: 0, totalBytes, doneFiles: 0, totalFiles };
    this.emit('progress', { echo: this.echo, ...this.#initial, done: false });
    this.markDirty('', true);
  }

  /**
   * Makes `conn` (authenticated) this echo's connection: a previous one, attached or still in its
   * initial sync, is closed, counted and reported as `superseded`, so it cannot linger unseen.
   */
  claim(conn: FramedConnection): void {
    const old = this.#owner;
    this.#owner = conn;
    if (old === undefined || old === conn || old.closed) return;
    this.#superseded++;
    this.emit('superseded', this.echo);
    old.close();
  }
  #owner: FramedConnection | undefined;
  #superseded = 0;

  /** Attaches a ready connection (claiming it); resends unacknowledged batches after `lastApplied`. */
  attach(conn: FramedConnection, lastApplied: number): void {
    this.claim(conn);
    this.#conn = conn;
    // Batches the echo applied but whose acknowledgement was lost count as acknowledged.
    if (lastApplied > 0) this.onAck(lastApplied);
    this.#resend = true;
    this.#waker.kick();
  }
  #resend = false;

  detach(conn: FramedConnection): void {
    if (this.#conn === conn) this.#conn = undefined;
    if (this.#owner === conn) this.#owner = undefined;
    this.#c.wire += conn.bytesOut;
    this.#c.wireIn += conn.bytesIn;
    this.#waker.kick();
  }

  onAck(seq: number): void {
    if (this.#unacked.length > 0 && (this.#unacked[0] as Outgoing).seq <= seq)
      this.#lastAckAt = performance.now();
    while (this.#unacked.length > 0 && (this.#unacked[0] as Outgoing).seq <= seq) {
      const b = this.#unacked.shift() as Outgoing;
      const sign = b.signLater;
      if (sign && b.stream)
        this.ctx.pool
          .signPrefix(join(this.ctx.root, b.stream.path), sign.length, sign.hash)
          .then(sign.resolve, sign.reject);
      this.#c.acked++;
      this.#c.lastAcked = b.seq;
      if (b.trace)
        this.emit('trace', {
          echo: this.echo,
          seq: b.seq,
          files: b.files,
          dataBytes: b.raw,
          ...b.trace,
          ackedAt: nowMs(),
        } satisfies BatchTrace);
      const init = this.#initial;
      if (init) {
        init.doneBytes = Math.min(init.totalBytes, init.doneBytes + b.contentBytes);
        init.sentBytes = Math.max(init.sentBytes, init.doneBytes);
        init.doneFiles = Math.min(init.totalFiles, init.doneFiles + b.files);
      }
    }
    this.#checkInitialDone();
    this.emit('stats', this.stats());
    this.#waker.kick();
  }

  #checkInitialDone(): void {
    if (this.#initial && this.#unacked.length === 0 && this.#dirty.size === 0 && !this.#building) {
      this.#initial.doneBytes = this.#initial.sentBytes = this.#initial.totalBytes;
      this.#initial.doneFiles = this.#initial.totalFiles;
      this.emit('progress', { echo: this.echo, ...this.#initial, done: true });
      this.#initial = null;
    } else if (this.#initial) this.emit('progress', { echo: this.echo, ...this.#initial, done: false });
  }
  #building = false;

  /** The echo rejected a batch: count it, and start over with a full sync on the next connection. */
  onRemoteError(code: string, message: string): void {
    this.#c.errors++;
    this.#c.lastError = `${code}: ${message}`;
    this.emit(
      'error',
      // The code comes from the echo over the network: kept only if it is one of ours.
      new UnderstudyError(
        isErrorCode(code) ? code : ErrorCode.SyncTransport,
        `echo ${this.echo} rejected a batch: ${message}`,
        {
          details: { echo: this.echo },
        },
      ),
    );
    this.reset();
  }

  stats(): SyncStats {
    const now = performance.now();
    const oldest = Math.min(
      this.#dirty.size > 0 && this.#dirtySince !== null ? this.#dirtySince : Infinity,
      this.#unacked[0]?.changeTime ?? Infinity,
    );
    this.#rate = this.#rate.filter((r) => now - r.t <= 10_000);
    const span = 10;
    return {
      echo: this.echo,
      connected: this.#conn !== undefined && !this.#conn.closed,
      lagSeconds: Number.isFinite(oldest) ? (now - oldest) / 1000 : 0,
      lagBytes: this.#unacked.reduce((s, b) => s + b.raw, 0),
      changeRateBytesPerSec: this.#rate.reduce((s, r) => s + r.bytes, 0) / span,
      changeRateFilesPerSec: this.#rate.reduce((s, r) => s + r.files, 0) / span,
      wireBytes: this.#c.wire + (this.#conn?.bytesOut ?? 0),
      wireBytesIn: this.#c.wireIn + (this.#conn?.bytesIn ?? 0),
      rawBytes: this.#c.raw,
      compressionRatio: this.#c.payload > 0 ? this.#c.raw / this.#c.payload : 1,
      batchesSent: this.#c.sent,
      batchesAcked: this.#c.acked,
      lastAckedSeq: this.#c.lastAcked,
      errors: this.#c.errors,
      lastError: this.#c.lastError,
      supersededConnections: this.#superseded,
      initialSync: this.#initial ? { ...this.#initial } : null,
    };
  }

  /** Milliseconds to wait before cutting a batch (0: now). */
  #due(): number {
    const now = performance.now();
    if (this.opts.mode === 'continuous') {
      const since = this.#dirtySince ?? now;
      // Group commit: while a batch is in flight, changes gather for the next one and its ack
      // wakes the loop; pipelining starts only if they have waited 4 x maxDelayMs.
      if (this.#unacked.length > 0) return Math.max(0, since + 4 * this.opts.maxDelayMs - now);
      // Changes that waited behind an acknowledged batch have been coalesced already: cut at once.
      if (since <= this.#lastAckAt) return 0;
      // Otherwise a short coalescing window (quiet time), bounded while changes keep coming.
      const quiet = this.#lastDirtyAt + this.opts.debounceMs - now;
      return Math.max(0, Math.min(quiet, since + this.opts.maxDelayMs - now));
    }
    const interval = relaxedIntervalMs(this.opts.intervalMs, this.opts.utilisation?.() ?? 0);
    return Math.max(0, this.#lastBatchAt + interval - now);
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      const conn = this.#conn;
      if (!conn || conn.closed) {
        await this.#waker.wait();
        continue;
      }
      if (this.#resend) {
        this.#resend = false;
        for (const b of [...this.#unacked]) await this.#send(conn, b);
        continue;
      }
      if (this.#dirty.size === 0 || this.#unacked.length >= this.opts.window) {
        await this.#waker.wait(this.opts.mode === 'relaxed' ? 1000 : undefined);
        continue;
      }
      const due = this.#due();
      if (due > 0 && !(this.opts.mode === 'relaxed' && (await this.#overThreshold()))) {
        await this.#waker.wait(due);
        continue;
      }
      // Let every event already read in this turn of the event loop (e.g. both halves of a rename)
      // land in this batch: costs no extra wake-up, unlike a timer.
      await new Promise<void>((r) => setImmediate(r));
      if (this.#dirty.size === 0 || this.#conn !== conn || conn.closed || this.#closed) continue;
      const dirty = this.#dirty;
      const changeAt = this.#changeAt;
      this.#changeAt = [];
      const cutAt = nowMs();
      const lineage = this.#lineage;
      const since = this.#dirtySince ?? performance.now();
      this.#dirty = new Map();
      this.#dirtySince = null;
      this.#lastBatchAt = performance.now();
      let built: BuiltBatch;
      this.#building = true;
      try {
        const cap = this.opts.bandwidthBytesPerSec;
        built = await buildBatch({ ...this.ctx, view: this.view }, dirty, {
          maxFiles: 20_000,
          maxContentBytes: cap
            ? Math.max(64 * 1024, Math.min(this.opts.maxBatchBytes, cap))
            : this.opts.maxBatchBytes,
        });
      } catch (err) {
        // Could not read the tree (e.g. permissions): count it, retry later from a deep scan.
        this.#c.errors++;
        this.#c.lastError = (err as Error).message;
        this.emit('error', err);
        for (const [p, d] of dirty) this.markDirty(p, d);
        this.#building = false;
        await this.#waker.wait(1000);
        continue;
      } finally {
        this.#building = false;
      }
      for (const p of built.deferred) this.markDirty(p, false);
      if (built.deferred.length > 0) this.#dirtySince = Math.min(this.#dirtySince ?? since, since);
      if (built.ops.length === 0) {
        this.#checkInitialDone();
        continue;
      }
      if (lineage !== this.#lineage) continue; // reset while building: the view was rebuilt, drop it
      const out = await this.#encode(built, since);
      if (lineage !== this.#lineage) continue;
      if (this.tracing()) out.trace = { changeAt, cutAt, builtAt: nowMs(), sentAt: 0 };
      this.#rate.push({ t: performance.now(), bytes: built.literalBytes, files: built.files });
      this.#unacked.push(out);
      this.#c.sent++;
      if (this.#conn === conn && !conn.closed) await this.#send(conn, out);
    }
  }

  async #overThreshold(): Promise<boolean> {
    if (this.#dirty.size > 10_000) return true;
    let est = 0;
    for (const p of this.#dirty.keys()) {
      const e = this.view.get(p);
      est += e?.type === 'file' ? Math.max(4096, e.size / 16) : 4096;
      if (est >= this.opts.bytesThreshold) return true;
    }
    return false;
  }

  async #encode(built: BuiltBatch, changeTime: number): Promise<Outgoing> {
    const seq = this.#nextSeq++;
    const meta = encodeBatchOps(seq, built.ops);
    const mc = await compress(meta, this.opts.compression);
    const batch = new ByteWriter(mc.body.length + 12)
      .u8(mc.codec)
      .varint(meta.length)
      .bytes(mc.body)
      .finish();
    const data: DataChunk[] = [];
    for (const chunk of chunks(built.data, this.opts.frameDataBytes)) data.push({ raw: chunk });
    const raw = meta.length + built.dataBytes;
    this.#c.raw += raw;
    this.#c.payload += mc.body.length;
    return {
      seq,
      batch,
      data,
      raw,
      contentBytes: built.contentBytes,
      dataBytes: built.dataBytes + (built.stream?.streamer.size ?? 0),
      stream: built.stream,
      streamOpened: false,
      lineage: this.#lineage,
      changeTime,
      files: built.files,
    };
  }

  /**
   * Compresses a data chunk on its first send (so sending starts at once and overlaps compression),
   * probing only every 8th chunk while the data stays incompressible.
   */
  async #prepare(seq: number, c: DataChunk, state: { skip: number }): Promise<void> {
    if (c.body) return;
    let codec: number = 0;
    let body = c.raw;
    if (state.skip > 0) state.skip--;
    else {
      const r = await compress(c.raw, this.opts.compression);
      codec = r.codec;
      body = r.body;
      if (codec === 0 && c.raw.length >= 64 * 1024) state.skip = 7;
    }
    c.header = new ByteWriter(16).varint(seq).u8(codec).varint(c.raw.length).finish();
    c.body = body;
    this.#c.payload += body.length;
  }

  async #send(conn: FramedConnection, b: Outgoing): Promise<void> {
    if (this.#sending) return;
    this.#sending = true;
    try {
      await conn.send(FrameType.Batch, b.batch);
      const state = { skip: 0 };
      for (const d of b.data) await this.#sendChunk(conn, b, d, state);
      if (b.stream) await this.#sendStream(conn, b, b.stream, state);
      await conn.send(FrameType.BatchEnd, new ByteWriter(10).varint(b.seq).finish());
      if (b.trace) b.trace.sentAt = nowMs();
    } finally {
      this.#sending = false;
    }
  }

  /** Sends one data chunk of batch `b` (compressed on its first send) and counts it for progress. */
  async #sendChunk(
    conn: FramedConnection,
    b: Outgoing,
    d: DataChunk,
    state: { skip: number },
  ): Promise<void> {
    await this.#prepare(b.seq, d, state);
    await conn.send(FrameType.Data, d.header as Buffer, d.body as Buffer);
    this.#sent(b, d.raw.length);
  }

  /**
   * Reads and sends the records of the batch's streamed file (again on a resend: the pieces are not
   * kept), then records in the view what the echo will hold: exactly the bytes sent.
   */
  async #sendStream(
    conn: FramedConnection,
    b: Outgoing,
    s: StreamedFile,
    state: { skip: number },
  ): Promise<void> {
    const first = !b.streamOpened;
    b.streamOpened = true;
    let streamer: ContentStream | null = first ? s.streamer : null;
    streamer ??= await this.ctx.pool
      .stream(join(this.ctx.root, s.path), this.opts.frameDataBytes)
      .catch(() => null);
    let sent = 0;
    let hash: string;
    if (!streamer) {
      // Gone since (or unreadable): the echo gets an empty file, and the path is looked at again.
      hash = contentHash(new Uint8Array(0));
      const w = new ByteWriter(32);
      encodeEnd(w, hash);
      await this.#sendChunk(conn, b, { raw: w.finish() }, state);
    } else {
      try {
        for await (const piece of streamer.pieces()) {
          if (first) {
            b.raw += piece.length;
            this.#c.raw += piece.length;
          }
          await this.#sendChunk(conn, b, { raw: piece }, state);
        }
      } catch (err) {
        // The reader died half-way: this batch can never be completed. Start over with a full
        // comparison on the next connection.
        this.#c.errors++;
        this.#c.lastError = (err as Error).message;
        this.reset();
        conn.close(err as Error);
        return;
      }
      ({ sent, hash } = streamer.result);
      if (first) this.#rate.push({ t: performance.now(), bytes: sent, files: 0 });
    }
    if (b.lineage !== this.#lineage) return; // reset meanwhile: the view was rebuilt
    // Only the file's next delta needs the signature: it is computed once the echo has the file.
    let settle!: Pick<NonNullable<Outgoing['signLater']>, 'resolve' | 'reject'>;
    const signature: PendingSignature = new Promise<FileSignature>((resolve, reject) => {
      settle = { resolve, reject };
    });
    signature.catch(() => undefined); // a lost signature only costs a whole-file send later
    b.signLater?.reject(new Error('sent again'));
    b.signLater = { length: sent, hash, ...settle };
    this.view.set(s.path, {
      type: 'file',
      mode: s.mode,
      size: sent,
      mtimeMs: s.mtimeMs,
      ino: s.ino,
      hash,
      sig: signature,
    });
    // Shrunk, gone or unreadable under the read: look again (a growth has its own change event).
    if (sent !== s.streamer.size || !streamer) this.markDirty(s.path, false);
  }

  /** Counts a data frame of an initial-sync batch as sent; a `progress` event at most every 100 ms. */
  #sent(b: Outgoing, dataBytes: number): void {
    const init = this.#initial;
    if (!init || b.dataBytes === 0) return;
    const share = (b.contentBytes * dataBytes) / b.dataBytes;
    init.sentBytes = Math.min(init.totalBytes, init.sentBytes + share);
    const now = performance.now();
    if (now - this.#progressAt < PROGRESS_EVERY_MS) return;
    this.#progressAt = now;
    this.emit('progress', { echo: this.echo, ...init, done: false });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#waker.kick();
    await this.loop;
  }
}
