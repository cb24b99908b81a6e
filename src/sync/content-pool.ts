import { Worker } from 'node:worker_threads';
import { diffFile, type ContentResult, type SignatureTail } from './content-job.js';
import { extendSignature, type FileSignature } from './signature.js';

/** A signature still being computed in the worker; `now()` asks for it without further delay. */
export type PendingSignature = Promise<FileSignature> & { now?: () => void };

interface Pending {
  resolve: (r: ContentResult) => void;
  reject: (e: Error) => void;
  /** The job's base signature (an append's result extends it). */
  base: FileSignature | null;
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
  #closed = false;

  constructor(readonly inlineBelow = 256 * 1024) {}

  #ensureWorker(): Worker | undefined {
    if (this.#worker || this.#closed) return this.#worker;
    try {
      const w = new Worker(workerUrl());
      w.unref();
      w.on(
        'message',
        (m: {
          id: number;
          ok?: boolean;
          sig?: FileSignature;
          result?: Omit<ContentResult, 'records' | 'signature'> & {
            records: Uint8Array[];
            signature: FileSignature | null;
          };
          error?: { message: string; code?: string };
          tail?: SignatureTail & { length: number; whole: bigint };
        }) => {
          if (m.sig) {
            this.#sigWaiters.get(m.id)?.resolve(m.sig);
            this.#sigWaiters.delete(m.id);
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
        },
      );
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

  #failAll(err: Error): void {
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
    if (!w) return diffFile(path, base);
    const id = this.#next++;
    return new Promise<ContentResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, base });
      w.ref();
      w.postMessage({ id, path, base });
    }).finally(() => {
      if (this.#pending.size === 0 && this.#sigWaiters.size === 0) this.#worker?.unref();
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
