import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { resolve } from 'node:path';
import { lstat, mkdir } from 'node:fs/promises';
import { UnderstudyError, ErrorCode, isUnderstudyError } from '../errors/index.js';
import { ChangeWatcher } from './change-watcher.js';
import { ContentPool } from './content-pool.js';
import { EchoStream } from './echo-stream.js';
import type { InitialSyncProgress, SyncStats } from './sync-stats.js';
import { FrameType, type Frame } from './frame-codec.js';
import { FramedConnection } from './framed-connection.js';
import { globToRegExp } from './glob.js';
import { SourceHandshake } from './handshake.js';
import { decodeError, decodeManifest, decodeSeq, type ManifestEntry } from './messages.js';
import { priorityRanker } from './priority.js';
import { resolveSourceOptions, type ResolvedSourceOptions, type SyncSourceOptions } from './sync-options.js';
import { TokenBucket } from './token-bucket.js';
import { childPath, listDir, readEntry } from './tree-scan.js';

/** Initial sync progress of one echo. */
export interface SyncProgress extends InitialSyncProgress {
  readonly echo: string;
  readonly done: boolean;
}

/**
 * The primary side of state sync: watches the state directory, serves echoes over TCP (a handshake
 * with key confirmation under a per-service key, then frames encrypted with AES-256-GCM under
 * per-connection keys), and streams batches of changes to each.
 * Events: `stats` ({@link SyncStats}, after each acknowledgement), `progress` ({@link SyncProgress}),
 * `error` (an UnderstudyError; the sync continues), `connected`/`disconnected` (echo id),
 * `superseded` (echo id: a new authenticated connection of that echo closed its previous one), and
 * `trace` (a `BatchTrace`, per acknowledged batch, only computed while someone listens).
 */
export class SyncSource extends EventEmitter {
  readonly #opts: ResolvedSourceOptions;
  readonly #server: Server;
  readonly #streams = new Map<string, EchoStream>();
  readonly #sockets = new Set<Socket>();
  /** Sockets whose peer has not completed the handshake yet. */
  readonly #pending = new Set<Socket>();
  #refused = 0;
  readonly #watcher: ChangeWatcher;
  readonly #pool = new ContentPool();
  readonly #bucket: TokenBucket | undefined;
  readonly #rank: (path: string) => number;
  readonly #ignore: (path: string) => boolean;
  #closed = false;

  private constructor(opts: ResolvedSourceOptions, server: Server) {
    super();
    this.#opts = opts;
    this.#server = server;
    this.#bucket = opts.bandwidthBytesPerSec ? new TokenBucket(opts.bandwidthBytesPerSec) : undefined;
    this.#rank = priorityRanker(opts.priorities);
    const ignores = opts.ignore.map(globToRegExp);
    this.#ignore = (p) => ignores.some((r) => r.test(p));
    this.#watcher = new ChangeWatcher(opts.dir, (p, deep) => this.#onChange(p, deep), {
      watch: opts.watch,
      scanIntervalMs: opts.scanIntervalMs,
    });
  }

  /** Starts watching `dir` and listening for echoes. Thrown `UNDERSTUDY_ERR_STATE_DIR` if `dir` is not a directory. */
  static async create(options: SyncSourceOptions): Promise<SyncSource> {
    const opts = resolveSourceOptions({ ...options, dir: resolve(options.dir) });
    await mkdir(opts.dir, { recursive: true });
    const st = await lstat(opts.dir);
    if (!st.isDirectory())
      throw new UnderstudyError(ErrorCode.StateDir, `${opts.dir} is not a directory`, {
        details: { dir: opts.dir },
      });
    const tls = opts.tls;
    const server: Server = tls
      ? createTlsServer({
          ca: tls.ca,
          cert: tls.cert,
          key: tls.key,
          minVersion: 'TLSv1.2',
          requestCert: true,
          rejectUnauthorized: true,
          handshakeTimeout: opts.handshakeTimeoutMs,
        })
      : createServer();
    const src = new SyncSource(opts, server);
    if (tls) {
      // Only peers that completed a mutually authenticated handshake reach the frame protocol.
      server.maxConnections = opts.maxConnections + opts.maxPendingConnections;
      server.on('secureConnection', (s: Socket) => src.#accept(s));
      server.on('tlsClientError', (err: Error & { code?: string }) => {
        if (src.listenerCount('error') === 0) return;
        src.emit(
          'error',
          new UnderstudyError(
            ErrorCode.TlsCertificate,
            `sync connection refused by TLS: ${err.code ?? ''} ${err.message}`.trim(),
            { cause: err, details: { tlsError: err.code } },
          ),
        );
      });
    } else server.on('connection', (s) => src.#accept(s));
    await new Promise<void>((res, rej) => {
      server.once('error', (err) =>
        rej(new UnderstudyError(ErrorCode.Port, `cannot listen for echoes: ${err.message}`, { cause: err })),
      );
      server.listen(opts.port, opts.host, () => res());
    });
    await src.#watchTree('');
    src.#pool.warm();
    options.signal?.addEventListener('abort', () => void src.close(), { once: true });
    return src;
  }

  /** Port echoes connect to. */
  get port(): number {
    const a = this.#server.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  /** Per-echo sync statistics. */
  stats(): SyncStats[] {
    return [...this.#streams.values()].map((s) => s.stats());
  }

  /** Requests a full comparison of the tree with every echo now (the periodic safety net, on demand). */
  rescan(): void {
    this.#onChange('', true);
  }

  async #watchTree(dir: string): Promise<void> {
    this.#watcher.addDir(dir);
    for (const name of await listDir(this.#opts.dir, dir)) {
      const p = childPath(dir, name);
      if (this.#ignore(p)) continue;
      const e = await readEntry(this.#opts.dir, p);
      if (e !== null && e !== 'special' && e.type === 'dir') await this.#watchTree(p);
    }
  }

  #onChange(path: string, deep: boolean): void {
    if (path !== '' && this.#ignore(path)) return;
    for (const s of this.#streams.values()) s.markDirty(path, deep);
  }

  #stream(echo: string): EchoStream {
    let s = this.#streams.get(echo);
    if (!s) {
      s = new EchoStream(
        echo,
        this.#opts,
        {
          root: this.#opts.dir,
          pool: this.#pool,
          rankOf: this.#rank,
          onDir: (p) => this.#watcher.addDir(p),
          onDirGone: (p) => this.#watcher.removeTree(p),
          ignore: this.#ignore,
          ...(this.#opts.streamFromBytes > 0 ? { streamFrom: this.#opts.streamFromBytes } : {}),
          streamPieceBytes: this.#opts.frameDataBytes,
        },
        (event, value) => {
          if (event === 'error' && this.listenerCount('error') === 0) return;
          this.emit(event, value);
        },
        () => this.listenerCount('trace') > 0,
      );
      this.#streams.set(echo, s);
    }
    return s;
  }

  #accept(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const o = this.#opts;
    if (this.#sockets.size >= o.maxConnections || this.#pending.size >= o.maxPendingConnections) {
      // Refused before reading a byte: unauthenticated peers cannot hold more than the caps.
      socket.destroy();
      this.#refused++;
      if (this.listenerCount('error') > 0)
        this.emit(
          'error',
          new UnderstudyError(ErrorCode.SyncTransport, 'sync connection refused: connection cap reached', {
            details: {
              connections: this.#sockets.size,
              pending: this.#pending.size,
              maxConnections: o.maxConnections,
              maxPendingConnections: o.maxPendingConnections,
            },
          }),
        );
      return;
    }
    this.#sockets.add(socket);
    this.#pending.add(socket);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      this.#pending.delete(socket);
    });
    let phase: 'hello' | 'manifest' | 'run' = 'hello';
    let stream: EchoStream | undefined;
    const manifest: ManifestEntry[] = [];
    const conn: FramedConnection = new FramedConnection(
      socket,
      {
        key: o.key,
        maxPayloadBytes: o.maxFrameBytes,
        maxHandshakeBytes: o.maxHandshakeFrameBytes,
        handshakeTimeoutMs: o.handshakeTimeoutMs,
        bucket: this.#bucket,
      },
      (f: Frame) => {
        try {
          if (phase === 'hello') {
            // Nothing is looked up, reset or attached before the echo has confirmed the keys.
            const m = handshake.onFrame(f);
            if (!m) return;
            this.#pending.delete(socket);
            stream = this.#stream(m.targetId);
            stream.claim(conn);
            const resume = stream.canResume(m.lineage, m.lastApplied);
            if (!resume) stream.reset();
            handshake.welcome({ lineage: stream.lineage, resume });
            this.emit('connected', m.targetId);
            if (resume) {
              phase = 'run';
              stream.attach(conn, m.lastApplied);
            } else phase = 'manifest';
            return;
          }
          const s = stream as EchoStream;
          if (phase === 'manifest') {
            if (f.type !== FrameType.Manifest)
              throw new UnderstudyError(ErrorCode.SyncFrame, 'expected manifest');
            const part = decodeManifest(f.payload);
            for (const e of part.entries) manifest.push(e);
            if (part.last) {
              phase = 'run';
              this.#initialBytes(manifest).then(
                (total) => {
                  if (conn.closed) return;
                  s.loadManifest(manifest, total.bytes, total.files);
                  s.attach(conn, 0);
                },
                (err: unknown) => conn.close(err as Error),
              );
            }
            return;
          }
          if (f.type === FrameType.Ack) s.onAck(decodeSeq(f.payload));
          else if (f.type === FrameType.Error) {
            const e = decodeError(f.payload);
            s.onRemoteError(e.code, e.message);
            conn.close();
          } else throw new UnderstudyError(ErrorCode.SyncFrame, `unexpected frame type ${f.type}`);
        } catch (err) {
          conn.close(err as Error);
        }
      },
      (err) => {
        if (stream) {
          stream.detach(conn);
          this.emit('disconnected', stream.echo);
        }
        if (err && isUnderstudyError(err) && this.listenerCount('error') > 0) this.emit('error', err);
      },
    );
    const handshake = new SourceHandshake(o.key, conn);
  }

  /** Connections held now (`open`, of which `pending` have not completed the handshake) and refused so far. */
  connections(): { open: number; pending: number; refused: number } {
    return { open: this.#sockets.size, pending: this.#pending.size, refused: this.#refused };
  }

  /** Bytes and files the initial sync has to make current: files absent from the manifest or of another size. */
  async #initialBytes(manifest: readonly ManifestEntry[]): Promise<{ bytes: number; files: number }> {
    const sizes = new Map<string, number>();
    for (const e of manifest) if (e.type === 'file') sizes.set(e.path, e.size);
    let total = 0;
    let files = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const name of await listDir(this.#opts.dir, dir)) {
        const p = childPath(dir, name);
        if (this.#ignore(p)) continue;
        const e = await readEntry(this.#opts.dir, p);
        if (e === null || e === 'special') continue;
        if (e.type === 'dir') await walk(p);
        else if (e.type === 'file' && sizes.get(p) !== e.size) {
          total += e.size;
          files++;
        }
      }
    };
    await walk('');
    return { bytes: total, files };
  }

  /** Stops serving and watching. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.close();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((res) => this.#server.close(() => res()));
    await Promise.all([...this.#streams.values()].map((s) => s.close()));
    await this.#pool.close();
  }
}
