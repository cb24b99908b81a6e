// Worker-thread entry: runs diffFile off the primary's event loop.
import { parentPort } from 'node:worker_threads';
import { diffFile } from './content-job.js';
import type { FileSignature } from './signature.js';

interface Job {
  id: number;
  path: string;
  base: FileSignature | null;
}

parentPort?.on('message', (job: Job) => {
  diffFile(job.path, job.base).then(
    (r) => {
      const records = r.records.buffer.byteLength === r.records.length ? r.records : Buffer.from(r.records);
      parentPort?.postMessage({ id: job.id, ok: true, result: { ...r, records } }, [records.buffer as ArrayBuffer]);
    },
    (err: unknown) => {
      const e = err as NodeJS.ErrnoException;
      parentPort?.postMessage({ id: job.id, ok: false, error: { message: e.message, code: e.code } });
    },
  );
});
