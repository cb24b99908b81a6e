import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { UnderstudyError, ErrorCode, isUnderstudyError } from '../errors/index.js';
import { BatchApplier } from './batch-applier.js';
import { ByteQueue } from './byte-queue.js';
import { Codec, decompress } from './compression.js';
import { nowMs } from './sync-stats.js';
import { FrameType, type Frame } from './frame-codec.js';
import { FramedConnection } from './framed-connection.js';
import { TargetHandshake } from './handshake.js';
import { buildManifest } from './manifest.js';
import {
  decodeBatchOps,
  decodeSeq,
  encodeError,
  encodeManifest,
  encodeSeq,
  type BatchOp,
} from './messages.js';
import { ByteReader } from './byte-codec.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_HANDSHAKE_FRAME_BYTES,
  serviceKey,
  type SyncTlsOptions,
} from './sync-options.js';

/** Options of {@link SyncTarget}. */
export interface SyncTargetOptions {
  /** The echo's state directory (created if missing). */
  readonly dir: string;
  /** Per-service secret shared with the primary (at least 16 bytes; session keys are derived from it). */
  readonly key: string | Buffer;
  /** Primary's sync port. */
  readonly port: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** Identifies this echo to the primary. @default 'echo' */
  readonly echoId?: string;
  /** Journal, staging and apply state. @default sibling `.<dir name>.understudy-sync` */
  readonly metaDir?: string;
  /** fsync files, journal and directories (turn off only in tests of logic). @default true */
  readonly durable?: boolean;
  /** Delay before reconnecting after the connection drops. @default 200 */
  readonly reconnectDelayMs?: number;
  /** Largest frame payload accepted. @default 17 MiB */
  readonly maxFrameBytes?: number;
  /** Bytes of received, not yet applied data before reading pauses. @default 64 MiB */
  readonly maxBufferedBytes?: number;
  /**
   * A connection whose primary has not completed the handshake (proved it holds the key) within this
   * many milliseconds is dropped (and retried). @default 10000
   */
  readonly handshakeTimeoutMs?: number;
  /** Largest frame payload accepted before the primary is authenticated. @default 16 KiB */
  readonly maxHandshakeFrameBytes?: number;
  /**
   * Connect over TLS, presenting `tls.cert` and verifying that the primary's certificate is issued by
   * `tls.ca` and names `host` (cross-host sync). A refused certificate is an `UNDERSTUDY_ERR_TLS_CERTIFICATE`
   * security event; the echo retries. @default none: plain TCP (the frames are still encrypted)
   */
  readonly tls?: SyncTlsOptions;
  /** Stops the echo side when aborted. */
  readonly signal?: AbortSignal;
}

/** Emitted after a batch is fully applied. */
export interface AppliedEvent {
  readonly seq: number;
  readonly files: number;
  readonly bytes: number;
  readonly ms: number;
  /** Wall-clock time (ms since epoch, sub-millisecond) when the batch was applied and acknowledged. */
  readonly at: number;
  /** Stage timeline of the batch on the echo (ms since epoch, sub-millisecond). */
  readonly timings: ApplyTimings;
}

/** When one batch passed each stage on the echo (ms since epoch, sub-millisecond). */
export interface ApplyTimings {
  /** Its batch frame arrived. */
  readonly receivedAt: number;
  /** Its end frame arrived (all its data received). */
  readonly endAt: number;
  /** Staging began (after the previous batch). */
  readonly stageStartAt: number;
  /** Built and verified in staging. */
  readonly stagedAt: number;
  /** Its journal record was durable (the commit point). */
  readonly durableAt: number;
  /** Its steps ran in the tree. */
  readonly appliedAt: number;
}

/** A rejected frame or path, logged as a security event. */
export interface SecurityEvent {
  readonly code: string;
  readonly message: string;
  readonly details: Readonly<Record<string, unknown>>;
  readonly at: number;
}

/** Counters of the echo side. */
export interface SyncTargetStats {
  readonly connected: boolean;
  readonly lineage: string;
  readonly lastAppliedSeq: number;
  readonly batchesApplied: number;
  readonly duplicatesSkipped: number;
  readonly wireBytesIn: number;
  readonly errors: number;
  readonly securityEvents: number;
}

type ResolvedTargetOptions = Required<Omit<SyncTargetOptions, 'signal' | 'key' | 'tls'>> & {
  key: Buffer;
  tls: SyncTlsOptions | undefined;
};

interface PendingBatch {
  seq: number;
  ops: BatchOp[];
  queue: ByteQueue;
  receivedAt: number;
  endAt: number;
}

/**
 * The echo side of state sync: connects to the primary, authenticates, resumes from its last applied
 * batch (or sends its manifest for a full sync), and applies batches atomically into its state
 * directory. Events: `applied` ({@link AppliedEvent}), `connected`, `disconnected`, `security`
 * ({@link SecurityEvent}), `error`.
 */
export class SyncTarget extends EventEmitter {
  readonly #opts: ResolvedTargetOptions;
  readonly #applier: BatchApplier;
  readonly #abort = new AbortController();
  #conn: FramedConnection | undefined;
  #connecting: Socket | undefined;
  #closed = false;
  #loop: Promise<void> = Promise.resolve();
  #stats = { batchesApplied: 0, duplicatesSkipped: 0, wireBytesIn: 0, errors: 0, securityEvents: 0 };

  private constructor(opts: ResolvedTargetOptions, applier: BatchApplier) {
    super();
    this.#opts = opts;
    this.#applier = applier;
  }

  static async create(options: SyncTargetOptions): Promise<SyncTarget> {
    const dir = resolve(options.dir);
    const opts: ResolvedTargetOptions = {
      dir,
      key: serviceKey(options.key),
      port: options.port,
      host: options.host ?? '127.0.0.1',
      echoId: options.echoId ?? 'echo',
      metaDir: resolve(options.metaDir ?? join(dirname(dir), `.${basename(dir)}.understudy-sync`)),
      durable: options.durable ?? true,
      reconnectDelayMs: options.reconnectDelayMs ?? 200,
      maxFrameBytes: options.maxFrameBytes ?? 17 * 1024 * 1024,
      maxBufferedBytes: options.maxBufferedBytes ?? 64 * 1024 * 1024,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      maxHandshakeFrameBytes: options.maxHandshakeFrameBytes ?? DEFAULT_MAX_HANDSHAKE_FRAME_BYTES,
      tls: options.tls,
    };
    const applier = await BatchApplier.create(dir, opts.metaDir, opts.durable);
    const t = new SyncTarget(opts, applier);
    options.signal?.addEventListener('abort', () => void t.close(), { once: true });
    t.#loop = t.#run();
    return t;
  }

  /** Last fully applied batch. */
  get lastAppliedSeq(): number {
    return this.#applier.state.lastApplied;
  }

  stats(): SyncTargetStats {
    return {
      connected: this.#conn !== undefined && !this.#conn.closed,
      lineage: this.#applier.state.lineage,
      lastAppliedSeq: this.#applier.state.lastApplied,
      ...this.#stats,
    };
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        await this.#session();
      } catch (err) {
        if (!this.#closed) this.emit('disconnected', err);
      }
      if (this.#closed) break;
      // Cut short by close(), so that closing never waits out the delay.
      await sleep(this.#opts.reconnectDelayMs, undefined, { signal: this.#abort.signal }).catch(
        () => undefined,
      );
    }
  }

  #security(err: UnderstudyError): void {
    this.#stats.securityEvents++;
    const ev: SecurityEvent = { code: err.code, message: err.message, details: err.details, at: Date.now() };
    if (this.listenerCount('security') > 0) this.emit('security', ev);
  }

  /** One connection's lifetime; resolves or rejects when it ends. */
  async #session(): Promise<void> {
    const tls = this.#opts.tls;
    const socket = tls
      ? tlsConnect({
          host: this.#opts.host,
          port: this.#opts.port,
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          minVersion: 'TLSv1.2',
        })
      : connect({ host: this.#opts.host, port: this.#opts.port });
    // Held while connecting: close() ends it (the session would otherwise begin after close returned,
    // and close wait for that session to end: a target closed while connecting hung, and went on
    // applying batches).
    this.#connecting = socket;
    await new Promise<void>((res, rej) => {
      socket.once(tls ? 'secureConnect' : 'connect', res);
      socket.once('close', () =>
        rej(new UnderstudyError(ErrorCode.SyncTransport, 'the connection closed while connecting')),
      );
      socket.once('error', (err: Error & { code?: string }) => {
        socket.destroy();
        if (tls && err.code !== undefined && !/^E[A-Z]+$/.test(err.code)) {
          // Not a network error: the primary's certificate was refused (or ours was).
          const e = new UnderstudyError(
            ErrorCode.TlsCertificate,
            `the primary at ${this.#opts.host}:${this.#opts.port} failed TLS verification: ${err.code}: ${err.message}`,
            { cause: err, details: { tlsError: err.code } },
          );
          this.#security(e);
          rej(e);
        } else rej(err);
      });
    }).finally(() => (this.#connecting = undefined));
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const applier = this.#applier;
    let lineage = applier.state.lineage;
    let phase: 'hello' | 'run' = 'hello';
    let chain: Promise<void> = Promise.resolve();
    let expectedSeq = applier.state.lastApplied + 1;
    let buffered = 0;
    const batches = new Map<number, PendingBatch>();
    let failed = false;
    let endSession!: (err?: Error) => void;
    const ended = new Promise<void>((res, rej) => {
      endSession = (err) => (err ? rej(err) : res());
    });

    const onConsume = (n: number): void => {
      buffered -= n;
      if (buffered < this.#opts.maxBufferedBytes / 2) conn.setReading(true);
    };
    const fail = (err: unknown, seq = 0): void => {
      if (failed) return;
      failed = true;
      this.#stats.errors++;
      const e = isUnderstudyError(err)
        ? err
        : new UnderstudyError(ErrorCode.SyncTransport, (err as Error).message, { cause: err });
      if (e.code === ErrorCode.SyncPath || e.code === ErrorCode.SyncFrame) this.#security(e);
      if (this.listenerCount('error') > 0) this.emit('error', e);
      for (const b of batches.values()) b.queue.fail(e);
      void conn
        .send(FrameType.Error, encodeError(seq, e.code, e.message))
        .finally(() => setTimeout(() => conn.close(e), 20));
    };

    const onFrame = (f: Frame): void => {
      if (failed) return;
      try {
        if (phase === 'hello') {
          // Nothing is applied before the primary has proved the key for this connection.
          const m = handshake.onFrame(f);
          if (!m) return;
          phase = 'run';
          if (!m.resume || m.lineage !== lineage) {
            lineage = m.lineage;
            expectedSeq = 1;
            chain = chain.then(async () => {
              await applier.resetLineage(lineage);
              const entries = await buildManifest(this.#opts.dir, this.#skip);
              for (let i = 0; i < entries.length || i === 0; i += 4096) {
                await conn.send(
                  FrameType.Manifest,
                  encodeManifest(entries.slice(i, i + 4096), i + 4096 >= entries.length),
                );
              }
            });
            // A failed reset (its state file could not be written) ends the session, as a failed batch does.
            chain = chain.catch((err: unknown) => fail(err));
          }
          this.emit('connected');
          return;
        }
        switch (f.type) {
          case FrameType.Batch: {
            const r = new ByteReader(f.payload);
            const codec = r.u8();
            const rawLen = r.varint();
            const body = decompress(codec, Buffer.from(r.bytes(r.remaining)), rawLen);
            const { seq, ops } = decodeBatchOps(body);
            if (seq !== expectedSeq)
              throw new UnderstudyError(
                ErrorCode.SyncFrame,
                `batch ${seq} out of order (expected ${expectedSeq})`,
                { details: { seq } },
              );
            expectedSeq++;
            const b: PendingBatch = {
              seq,
              ops,
              queue: new ByteQueue(onConsume),
              receivedAt: nowMs(),
              endAt: 0,
            };
            batches.set(seq, b);
            chain = chain.then(async () => {
              if (failed) return;
              const stageStartAt = nowMs();
              const staged = await applier.stage(lineage, seq, ops, b.queue);
              const stagedAt = nowMs();
              const durableAt = await applier.commit(staged);
              const appliedAt = nowMs();
              batches.delete(seq);
              this.#stats.batchesApplied++;
              await conn.send(FrameType.Ack, encodeSeq(seq));
              const at = nowMs();
              const ev: AppliedEvent = {
                seq,
                files: staged.files,
                bytes: staged.bytes,
                ms: at - b.receivedAt,
                at,
                timings: {
                  receivedAt: b.receivedAt,
                  endAt: b.endAt,
                  stageStartAt,
                  stagedAt,
                  durableAt,
                  appliedAt,
                },
              };
              this.emit('applied', ev);
            });
            chain = chain.catch((err: unknown) => fail(err, seq));
            break;
          }
          case FrameType.Data: {
            // A large frame comes in the pieces it was read in: uncompressed data goes on as they are.
            const parts = f.parts ?? [f.payload];
            const first = parts[0] as Buffer;
            const r = new ByteReader(first);
            const seq = r.varint();
            const codec = r.u8();
            const rawLen = r.varint();
            if (rawLen > this.#opts.maxFrameBytes)
              throw new UnderstudyError(ErrorCode.SyncFrame, 'data chunk too large');
            const b = batches.get(seq);
            if (!b) throw new UnderstudyError(ErrorCode.SyncFrame, `data for unknown batch ${seq}`);
            const body = [first.subarray(r.pos), ...parts.slice(1)];
            const size = body.reduce((n, p) => n + p.length, 0);
            if (codec === Codec.None && size === rawLen) for (const p of body) b.queue.push(p);
            else {
              const joined = body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body);
              b.queue.push(decompress(codec, joined, rawLen));
            }
            buffered += rawLen;
            if (buffered > this.#opts.maxBufferedBytes) conn.setReading(false);
            break;
          }
          case FrameType.BatchEnd: {
            const seq = decodeSeq(f.payload);
            const b = batches.get(seq);
            if (!b) throw new UnderstudyError(ErrorCode.SyncFrame, `end of unknown batch ${seq}`);
            b.endAt = nowMs();
            b.queue.end();
            break;
          }
          default:
            throw new UnderstudyError(ErrorCode.SyncFrame, `unexpected frame type ${f.type}`);
        }
      } catch (err) {
        fail(err);
      }
    };

    const conn = new FramedConnection(
      socket,
      {
        key: this.#opts.key,
        maxPayloadBytes: this.#opts.maxFrameBytes,
        maxHandshakeBytes: this.#opts.maxHandshakeFrameBytes,
        handshakeTimeoutMs: this.#opts.handshakeTimeoutMs,
      },
      onFrame,
      (err) => {
        this.#stats.wireBytesIn += conn.bytesIn;
        if (err && isUnderstudyError(err) && !failed) {
          this.#stats.errors++;
          this.#security(err);
        }
        for (const b of batches.values())
          b.queue.fail(err ?? new UnderstudyError(ErrorCode.SyncTransport, 'connection closed'));
        this.emit('disconnected', err);
        endSession();
      },
    );
    this.#conn = conn;
    const handshake = new TargetHandshake(this.#opts.key, conn);
    await handshake.start({ targetId: this.#opts.echoId, lineage, lastApplied: applier.state.lastApplied });
    try {
      await ended;
    } finally {
      // Let an in-progress stage finish failing before the next session touches staging.
      await chain.catch(() => undefined);
      for (const b of batches.keys()) await applier.abort(b);
    }
  }

  readonly #skip = (p: string): boolean => {
    const rel = relative(this.#opts.dir, this.#opts.metaDir);
    return rel === p;
  };

  /** Stops reconnecting and closes the connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    this.#connecting?.destroy();
    this.#conn?.close();
    await this.#loop;
    await this.#applier.close();
  }
}
