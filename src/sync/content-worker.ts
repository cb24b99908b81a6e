// Worker-thread entry: diffs files off the primary's event loop. For a whole new file the content is
// posted first and its signature (the slow part) follows in a second message.
import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { diffAppendedFileSync, diffContent, type HashCache } from './content-job.js';
import { signFilePrefix, streamFile } from './file-streamer.js';
import { computeSignature, type FileSignature } from './signature.js';

interface Job {
  id: number;
  path: string;
  base: FileSignature | null;
}

/** Sign the first `length` bytes of a streamed file if they still hash as sent: see ContentPool.signPrefix. */
interface SignPrefixJob {
  id: number;
  signPrefix: string;
  length: number;
  hash: string;
}

/** Read a big new file as records, posted piece by piece: see ContentPool.stream. */
interface StreamJob {
  id: number;
  stream: string;
  pieceBytes: number;
  /** Pieces that may be posted before the first is taken. */
  ahead: number;
}

/** Flow control of the streams under way: pieces each may still post, and a waiting reader. */
const streams = new Map<number, { credit: number; stopped: boolean; wake: (() => void) | null }>();

const SIGN_DELAY_MS = 1000;

/** Per-path hash state of big files, for append-only changes (see HashCache). */
const caches = new Map<string, HashCache>();

/** Deferred signatures, by job id: signed on a timer, or at once when the file changes again. */
const signing = new Map<number, { timer: NodeJS.Timeout; sign: () => void }>();

async function runStream(job: StreamJob): Promise<void> {
  const flow = { credit: job.ahead, stopped: false, wake: null as (() => void) | null };
  streams.set(job.id, flow);
  let opened = false;
  try {
    const { state, ...end } = await streamFile(
      job.stream,
      job.pieceBytes,
      (size, ino) => {
        opened = true;
        parentPort?.postMessage({ id: job.id, opened: { size, ino } });
      },
      async (piece) => {
        while (flow.credit <= 0 && !flow.stopped) await new Promise<void>((r) => (flow.wake = r));
        if (flow.stopped) throw new Error('stream stopped by its reader');
        flow.credit--;
        // A literal piece owns its buffer (see streamFile), so the buffer moves without a copy.
        const buf = piece.buffer as ArrayBuffer;
        const own = buf.byteLength - piece.byteLength <= 8;
        const msg = { id: job.id, piece: { buf, offset: piece.byteOffset, length: piece.byteLength } };
        if (own) parentPort?.postMessage(msg, [buf]);
        else
          parentPort?.postMessage({
            ...msg,
            piece: { ...msg.piece, buf: Uint8Array.from(piece).buffer, offset: 0 },
          });
      },
    );
    // The next append to it then hashes only its tail (see diffAppendedFileSync).
    caches.set(job.stream, { entry: { length: end.sent, whole: end.whole, state } });
    parentPort?.postMessage({ id: job.id, end });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const error = { message: e.message, code: e.code };
    parentPort?.postMessage(opened ? { id: job.id, streamError: error } : { id: job.id, ok: false, error });
  } finally {
    streams.delete(job.id);
  }
}

function runSignPrefix(job: SignPrefixJob): void {
  try {
    const r = signFilePrefix(job.signPrefix, job.length, job.hash);
    if (!r) throw new Error('file changed since it was sent');
    const sig = r.signature;
    caches.set(job.signPrefix, { entry: { length: sig.length, whole: sig.whole, state: r.state } });
    parentPort?.postMessage({ id: job.id, sig }, [
      sig.weak.buffer as ArrayBuffer,
      sig.strong.buffer as ArrayBuffer,
    ]);
  } catch (err) {
    parentPort?.postMessage({ id: job.id, ok: false, error: { message: (err as Error).message } });
  }
}

type FlowMessage = { more: number; n: number } | { stop: number };

parentPort?.on('message', (job: Job | StreamJob | SignPrefixJob | FlowMessage | { signNow: number }) => {
  if ('more' in job || 'stop' in job) {
    const flow = streams.get('more' in job ? job.more : job.stop);
    if (!flow) return;
    if ('more' in job) flow.credit += job.n;
    else flow.stopped = true;
    const wake = flow.wake;
    flow.wake = null;
    wake?.();
    return;
  }
  if ('signNow' in job) {
    signing.get(job.signNow)?.sign();
    return;
  }
  if ('stream' in job) {
    void runStream(job);
    return;
  }
  if ('signPrefix' in job) {
    runSignPrefix(job);
    return;
  }
  let cache = caches.get(job.path);
  if (!cache) {
    cache = {};
    caches.set(job.path, cache);
    if (caches.size > 1024) caches.delete(caches.keys().next().value as string);
  }
  const c = cache;
  const fast = async (): Promise<ReturnType<typeof diffAppendedFileSync>> =>
    job.base ? diffAppendedFileSync(job.path, job.base, c) : undefined;
  fast()
    .then(async (appended) => {
      if (appended) {
        // Only the changed blocks go back: the main thread extends the base signature it holds.
        const { signature, tail, ...rest } = appended;
        parentPort?.postMessage(
          {
            id: job.id,
            ok: true,
            result: { ...rest, signature: null },
            tail: { ...tail, length: signature.length, whole: signature.whole },
          },
          [tail.weak.buffer as ArrayBuffer, tail.strong.buffer as ArrayBuffer],
        );
        return;
      }
      const data = await readFile(job.path);
      const defer = job.base === null && data.length >= 1 << 20;
      const r = diffContent(data, job.base, defer, c);
      // Whole new files move to the main thread without serialising them; the worker keeps a
      // private copy (a plain memcpy, off the main thread) to sign later.
      const whole = defer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      const keep = defer ? (whole ? Buffer.from(data) : data) : null;
      parentPort?.postMessage({ id: job.id, ok: true, result: r }, whole ? [data.buffer as ArrayBuffer] : []);
      // The signature is only needed for this file's next delta: compute it once the content has
      // had time to go out, so it does not compete with the transfer for CPU.
      if (keep) {
        const sign = (): void => {
          const task = signing.get(job.id);
          if (!task) return;
          signing.delete(job.id);
          clearTimeout(task.timer);
          parentPort?.postMessage({ id: job.id, sig: computeSignature(keep) });
        };
        signing.set(job.id, { timer: setTimeout(sign, SIGN_DELAY_MS), sign });
      }
    })
    .catch((err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      parentPort?.postMessage({ id: job.id, ok: false, error: { message: e.message, code: e.code } });
    });
});
