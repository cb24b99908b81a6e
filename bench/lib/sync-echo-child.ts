// The echo side of the sync bench, in its own process (as on a real echo): applies batches and
// reports each applied batch (time, and the size of an optional watched file) to the parent over IPC.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SyncTarget } from '../../src/sync/index.js';

const [dir, port, key, watchFile] = process.argv.slice(2) as [string, string, string, string | undefined];
const target = await SyncTarget.create({ dir, port: Number(port), key, durable: true });
target.on('applied', (ev: { seq: number; files: number; bytes: number }) => {
  const at = performance.timeOrigin + performance.now();
  const report = (size: number): void => {
    process.send?.({ type: 'applied', seq: ev.seq, files: ev.files, bytes: ev.bytes, at, size });
  };
  if (watchFile)
    stat(join(dir, watchFile)).then(
      (s) => report(s.size),
      () => report(-1),
    );
  else report(-1);
});
target.on('error', (err: Error) => process.send?.({ type: 'error', message: err.message }));
process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') void target.close().then(() => process.exit(0));
});
process.send?.({ type: 'ready' });
