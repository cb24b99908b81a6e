import { Worker } from 'node:worker_threads';
import { diffFile, type ContentResult, type SignatureTail } from './content-job.js';
import { ContentStream, signFilePrefix, type StreamedContent } from './file-streamer.js';
import { extendSignature, type FileSignature } from './signature.js';

/** A signature still being computed in the worker; `now()` asks for it without further delay. */
export type PendingSignature = Promise<FileSignature> & { now?: () => void };

interface Pending {
  resolve: (r: ContentResult) => void;
  reject: (e: Error) => void;
  /** The job's base signature (an append's result extends it). */
  base: FileSignature | null;
}

/** Pieces of a streamed file read ahead of the ones the sender has taken (bounds its memory). */
const STREAM_AHEAD = 8;

/** A message from the content worker (see content-worker.ts). */
interface WorkerReply {
  id: number;
  ok?: boolean;
  sig?: FileSignature;
  result?: Omit<ContentResult, 'records' | 'signature'> & {
    records: Uint8Array[];
    signature: FileSignature | null;
  };
  error?: { message: string; code?: string };
  tail?: SignatureTail & { length: number; whole: bigint };
  /** A streamed file was opened / has a piece / ended / failed after opening. */
  opened?: { size: number; ino: number };
  piece?: { buf: ArrayBuffer; offset: number; length: number };
  end?: StreamedContent;
  streamError?: { message: string };
}

function workerUrl(): URL {
  const self = import.meta.url;
  if (self.endsWith('.ts')) {
    // Running from TypeScript sources (tests, tsx): register tsx inside the worker first.
    const target = new URL('./content-worker.ts', self).href;
    const api = import.meta.resolve('tsx/esm/api');
    const code = `import { register } from ${JSON.stringify(api)}; register(); await import(${JSON.stringify(target)});`;
    return new URL('data:text/javascript,' + encodeURIComponent(code));
  }
  return new URL('./content-worker.js', self);
}

/**
 * Runs file diffs in a worker thread so hashing big files never blocks the primary's event loop.
 * Files under `inlineBelow` bytes are diffed inline (a round trip would cost more than the work).
 * Falls back to inline work if a worker cannot start.
 */
export class ContentPool {
  #worker: Worker | undefined;
  #next = 1;
  readonly #pending = new Map<number, Pending>();
  readonly #sigWaiters = new Map<
    number,
    { resolve: (sig: FileSignature) => void; reject: (e: Error) => void }
  >();
  readonly #streams = new Map<
    number,
    { opened: (s: ContentStream) => void; failed: (e: Error) => void; stream?: ContentStream }
  >();
  #closed = false;

  constructor(readonly inlineBelow = 256 * 1024) {}

  #ensureWorker(): Worker | undefined {
    if (this.#worker || this.#closed) return this.#worker;
    try {
      const w = new Worker(workerUrl());
      w.unref();
      w.on('message', (m: WorkerReply) => {
        if (this.#onStreamMessage(m)) return;
        const waiter = this.#sigWaiters.get(m.id);
        if (waiter && (m.sig || m.ok === false)) {
          this.#sigWaiters.delete(m.id);
          if (m.sig) waiter.resolve(m.sig);
          else waiter.reject(new Error(m.error?.message ?? 'signing failed'));
          if (this.#idle()) w.unref();
          return;
        }
        const p = this.#pending.get(m.id);
        if (!p) return;
        this.#pending.delete(m.id);
        if (m.ok && m.result) {
          const r = m.result;
          let signature: FileSignature | Promise<FileSignature> | null = r.signature;
          if (m.tail && p.base) {
            const t = m.tail;
            signature = extendSignature(p.base, t.keep, t.weak, t.strong, t.length, t.whole);
          } else if (signature === null) {
            const pending: PendingSignature = new Promise<FileSignature>((resolve, reject) =>
              this.#sigWaiters.set(m.id, { resolve, reject }),
            );
            pending.catch(() => undefined); // a lost signature only costs a whole-file send later
            pending.now = () => w.postMessage({ signNow: m.id });
            signature = pending;
          }
          p.resolve({
            ...r,
            signature,
            records: r.records.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
          });
        } else {
          const e = new Error(m.error?.message ?? 'worker failed') as NodeJS.ErrnoException;
          if (m.error?.code) e.code = m.error.code;
          p.reject(e);
        }
      });
      w.on('error', (err) => this.#failAll(err));
      w.on('exit', () => {
        this.#worker = undefined;
        this.#failAll(new Error('content worker exited'));
      });
      this.#worker = w;
    } catch {
      this.#worker = undefined;
    }
    return this.#worker;
  }

  /** No job waits on the worker (it may then be left unreferenced). */
  #idle(): boolean {
    return this.#pending.size === 0 && this.#sigWaiters.size === 0 && this.#streams.size === 0;
  }

  /** Handles a streamed file's messages; false for any other message. */
  #onStreamMessage(m: WorkerReply): boolean {
    const s = this.#streams.get(m.id);
    if (!s) return false;
    if (m.opened) {
      const w = this.#worker;
      s.stream = new ContentStream(
        m.opened.size,
        m.opened.ino,
        () => w?.postMessage({ more: m.id, n: 1 }),
        () => w?.postMessage({ stop: m.id }),
      );
      s.opened(s.stream);
    } else if (m.piece) s.stream?.push(Buffer.from(m.piece.buf, m.piece.offset, m.piece.length));
    else if (m.end || m.streamError || m.ok === false) {
      this.#streams.delete(m.id);
      if (m.end) s.stream?.end(m.end);
      const e = new Error(
        m.streamError?.message ?? m.error?.message ?? 'stream failed',
      ) as NodeJS.ErrnoException;
      if (m.error?.code) e.code = m.error.code;
      if (!m.end) {
        if (s.stream) s.stream.fail(e);
        else s.failed(e);
      }
      if (this.#idle()) this.#worker?.unref();
    }
    return true;
  }

  #failAll(err: Error): void {
    for (const s of this.#streams.values()) {
      if (s.stream) s.stream.fail(err);
      else s.failed(err);
    }
    this.#streams.clear();
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    for (const w of this.#sigWaiters.values()) w.reject(err);
    this.#sigWaiters.clear();
  }

  /** Starts the worker ahead of the first big file, so its start-up does not delay a batch. */
  warm(): void {
    this.#ensureWorker();
  }

  /** Diffs the file at `path` against `base` (null: send whole). */
  async diff(path: string, size: number, base: FileSignature | null): Promise<ContentResult> {
    const w = size >= this.inlineBelow ? this.#ensureWorker() : undefined;
    if (!w) return diffFile(path, base, size);
    const id = this.#next++;
    return new Promise<ContentResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, base });
      w.ref();
      w.postMessage({ id, path, base });
    }).finally(() => {
      if (this.#idle()) this.#worker?.unref();
    });
  }

  /**
   * Opens the file at `path` in the worker, which reads and hashes it as literal records of at most
   * `pieceBytes` and hands them over while it reads, at most {@link STREAM_AHEAD} pieces ahead of
   * the ones taken (see {@link ContentStream}). Null when there is no worker (the caller then reads
   * the file the ordinary way). Rejects as `open` does (ENOENT…).
   */
  async stream(path: string, pieceBytes: number): Promise<ContentStream | null> {
    const w = this.#ensureWorker();
    if (!w) return null;
    const id = this.#next++;
    return new Promise<ContentStream>((opened, failed) => {
      this.#streams.set(id, { opened, failed });
      w.ref();
      w.postMessage({ id, stream: path, pieceBytes, ahead: STREAM_AHEAD });
    });
  }

  /**
   * The signature of a streamed file, from the file's first `length` bytes if they still have the
   * content hash `hash` that was sent (read in the worker); rejects otherwise (a lost signature only
   * costs a whole-file send later).
   */
  signPrefix(path: string, length: number, hash: string): Promise<FileSignature> {
    const w = this.#ensureWorker();
    if (!w) {
      const r = signFilePrefix(path, length, hash);
      return r ? Promise.resolve(r.signature) : Promise.reject(new Error('file changed since it was sent'));
    }
    const id = this.#next++;
    return new Promise<FileSignature>((resolve, reject) => {
      this.#sigWaiters.set(id, { resolve, reject });
      w.ref();
      w.postMessage({ id, signPrefix: path, length, hash });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    this.#failAll(new Error('content pool closed'));
    if (w) await w.terminate();
  }
}
