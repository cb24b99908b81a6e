// The writer of the sync bench's continuous workload, in its own process (as a real primary is):
// on `go`, appends `size` random bytes to a file `count` times, one every `intervalMs`, then reports
// when each write returned (ms since epoch, sub-millisecond) and the file size after it.
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, writeSync } from 'node:fs';

const [file, count, intervalMs, size] = process.argv.slice(2) as [string, string, string, string];
const now = (): number => performance.timeOrigin + performance.now();

async function run(): Promise<{ at: number; end: number }[]> {
  const fd = openSync(file, 'a');
  const writes: { at: number; end: number }[] = [];
  const n = Number(count);
  const every = Number(intervalMs);
  const bytes = Number(size);
  const start = performance.now();
  let end = 0;
  for (let i = 0; i < n; i++) {
    const wait = start + i * every - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    writeSync(fd, randomBytes(bytes));
    end += bytes;
    writes.push({ at: now(), end });
  }
  closeSync(fd);
  return writes;
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'go')
    void run().then((writes) => {
      process.send?.({ type: 'done', writes }, () => process.exit(0));
    });
});
process.send?.({ type: 'ready' });
