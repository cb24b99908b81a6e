// Worker-thread entry: diffs files off the primary's event loop. For a whole new file the content is
// posted first and its signature (the slow part) follows in a second message.
import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { diffContent, type HashCache } from './content-job.js';
import { contentHash } from './content-hash.js';
import { computeSignature, type FileSignature } from './signature.js';

interface Job {
  id: number;
  path: string;
  base: FileSignature | null;
}

const SIGN_DELAY_MS = 1000;

/** Per-path hash state of big files, for append-only changes (see HashCache). */
const caches = new Map<string, HashCache>();

parentPort?.on('message', (job: Job) => {
  readFile(job.path).then(
    (data) => {
      const defer = job.base === null && data.length >= 1 << 20;
      let cache = caches.get(job.path);
      if (!cache) {
        cache = {};
        caches.set(job.path, cache);
        if (caches.size > 1024) caches.delete(caches.keys().next().value as string);
      }
      const r = diffContent(data, job.base, defer, cache);
      // Whole new files move to the main thread without a copy.
      const whole = defer && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
      parentPort?.postMessage({ id: job.id, ok: true, result: r }, whole ? [data.buffer as ArrayBuffer] : []);
      // The signature is only needed for this file's next delta: compute it once the content has
      // had time to go out, so it does not compete with the transfer for CPU. The file is read
      // again; if it changed meanwhile the signature is lost (the next change sends it whole).
      if (defer) {
        setTimeout(() => {
          readFile(job.path).then(
            (again) => {
              if (contentHash(again) === r.hash) parentPort?.postMessage({ id: job.id, sig: computeSignature(again) });
              else parentPort?.postMessage({ id: job.id, sigLost: true });
            },
            () => parentPort?.postMessage({ id: job.id, sigLost: true }),
          );
        }, SIGN_DELAY_MS);
      }
    },
    (err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      parentPort?.postMessage({ id: job.id, ok: false, error: { message: e.message, code: e.code } });
    },
  );
});
