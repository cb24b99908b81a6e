// Worker-thread entry: diffs files off the primary's event loop. For a whole new file the content is
// posted first and its signature (the slow part) follows in a second message.
import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { diffContent, type HashCache } from './content-job.js';
import { computeSignature, type FileSignature } from './signature.js';

interface Job {
  id: number;
  path: string;
  base: FileSignature | null;
}

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
      parentPort?.postMessage({ id: job.id, ok: true, result: r });
      if (defer) parentPort?.postMessage({ id: job.id, sig: computeSignature(data) });
    },
    (err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      parentPort?.postMessage({ id: job.id, ok: false, error: { message: e.message, code: e.code } });
    },
  );
});
