// The echo side of the sync bench, in its own process (as on a real echo): applies batches and
// reports each applied batch (time, stage timings, and the size of an optional watched file) to the
// parent over IPC.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { SyncTarget, type AppliedEvent } from '../../src/sync/index.js';

const [dir, port, key, watchFile] = process.argv.slice(2) as [string, string, string, string | undefined];
const target = await SyncTarget.create({ dir, port: Number(port), key, durable: true });
target.on('applied', (ev: AppliedEvent) => {
  const report = (size: number): void => {
    process.send?.({
      type: 'applied',
      seq: ev.seq,
      files: ev.files,
      bytes: ev.bytes,
      at: ev.at,
      timings: ev.timings,
      size,
    });
  };
  // Synchronously, so no later batch can be applied in between.
  let size = -1;
  if (watchFile) size = statSync(join(dir, watchFile), { throwIfNoEntry: false })?.size ?? -1;
  report(size);
});
target.on('error', (err: Error) => process.send?.({ type: 'error', message: err.message }));
process.on('message', (m: { type: string }) => {
  if (m.type === 'stop') void target.close().then(() => process.exit(0));
});
process.send?.({ type: 'ready' });
