import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqliteStateStore, STORE_DB_FILE } from '../../src/store/index.js';
import type { WatchEvent } from '../../src/store/index.js';

const counterScript = fileURLToPath(new URL('./fixtures/store/store-counter.ts', import.meta.url));

interface Worker {
  child: ChildProcessWithoutNullStreams;
  output: () => string;
  exited: Promise<unknown>;
}

function startWorker(dataDir: string, increments: number): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', counterScript, dataDir, String(increments)]);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out += c));
  return { child, output: () => out, exited: once(child, 'exit') };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('store shared by several processes', () => {
  let dataDir: string;
  let workers: Worker[] = [];
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'understudy-multi-'));
  });
  afterEach(async () => {
    for (const w of workers) {
      if (w.child.exitCode === null && w.child.signalCode === null) {
        w.child.kill('SIGKILL');
        await w.exited;
      }
    }
    workers = [];
    await rm(dataDir, { recursive: true, force: true });
  });

  it('loses no increment when processes race compare-and-sets on one record, and a watcher in another process sees each in order', async () => {
    const increments = 60;
    const store = await SqliteStateStore.create({ dataDir, tickIntervalMs: 10 });
    try {
      const start = await store.put('counter', '0');
      const events: WatchEvent[] = [];
      await store.watch('counter', (e) => events.push(e), { fromRevision: start.revision });

      workers = [0, 1, 2].map(() => startWorker(dataDir, increments));
      await waitFor(() => workers.every((w) => w.output().includes('ready')), 'workers to open the store');
      for (const w of workers) w.child.stdin.write('go\n');
      await Promise.all(workers.map((w) => w.exited));
      const outputs = workers.map((w) => w.output());
      for (const [i, w] of workers.entries()) expect(w.child.exitCode, outputs[i]).toBe(0);
      const retries = outputs.map((o) => Number(/done (\d+)/.exec(o)?.[1]));
      expect(
        retries.some((r) => r > 0),
        `the processes never collided: ${retries.join(', ')}`,
      ).toBe(true);

      const total = increments * workers.length;
      expect((await store.get('counter'))?.value).toBe(String(total));
      expect((await store.get('counter'))?.version).toBe(total + 1);
      expect(await store.revision()).toBe(start.revision + total);

      await waitFor(() => events.length >= total, `${total} watch events (have ${events.length})`);
      expect(events.map((e) => e.record?.value)).toEqual(
        Array.from({ length: total }, (_, i) => String(i + 1)),
      );
    } finally {
      await store.close();
    }
    const db = new Database(join(dataDir, STORE_DB_FILE));
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });
});
