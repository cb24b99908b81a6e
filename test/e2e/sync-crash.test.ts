import { afterEach, describe, expect, it } from 'vitest';
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, writeFile, rm, rename, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { SyncSource } from '../../src/sync/index.js';
import { converge } from './fixtures/sync/converge.js';
import { BatchApplier } from '../../src/sync/batch-applier.js';
import { buildManifest } from '../../src/sync/manifest.js';

const here = dirname(fileURLToPath(import.meta.url));
const KEY = 'crash-test-service-key-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function startEcho(dir: string, port: number): Promise<ChildProcess> {
  const child = fork(join(here, 'fixtures/sync/echo-process.ts'), [dir, String(port), KEY], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    child.on('message', (m: { type: string }) => m.type === 'ready' && resolve(child));
    child.once('exit', (code) => reject(new Error(`echo exited ${code}`)));
  });
}

describe('echo crash during apply', () => {
  it('recovers to the last fully applied batch after SIGKILL mid-apply, then converges', async () => {
    const base = await mkdtemp(join(tmpdir(), 'us-sync-crash-'));
    cleanups.push(() => rm(base, { recursive: true, force: true }));
    const a = join(base, 'primary');
    const b = join(base, 'echo');
    const meta = join(base, '.echo.understudy-sync');
    await mkdir(a);
    const source = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0 });
    cleanups.push(() => source.close());
    await writeFile(join(a, 'keep.txt'), 'keep');
    await writeFile(join(a, 'big.bin'), randomBytes(4 << 20));

    const outcomes: string[] = [];
    for (const [i, trigger] of (['staging', 'journal', 'staging'] as const).entries()) {
      const delayMs = i * 10;
      let echo = await startEcho(b, source.port);
      await converge(a, b, source);
      const pre = await buildManifest(b);
      // One large batch: a directory of 24 x 1 MiB files renamed into the tree.
      const staging = join(base, `incoming-${i}`);
      await mkdir(staging);
      for (let i = 0; i < 24; i++) await writeFile(join(staging, `f${i}.bin`), randomBytes(1 << 20));
      await rename(staging, join(a, `batch-${i}`));
      const post = await buildManifest(a);
      // Kill the echo while it stages the batch, or right after its journal record is written.
      const until = Date.now() + 10_000;
      if (trigger === 'staging') {
        while (Date.now() < until && (await readdir(join(meta, 'staging')).catch(() => [])).length === 0)
          await new Promise((r) => setTimeout(r, 1));
        await new Promise((r) => setTimeout(r, delayMs));
      } else {
        const journalTimes = async (): Promise<number> =>
          Math.max(
            ...(await Promise.all(
              ['journal-0', 'journal-1'].map((j) =>
                stat(join(meta, j)).then(
                  (s) => s.mtimeMs,
                  () => 0,
                ),
              ),
            )),
          );
        const before = await journalTimes();
        while (Date.now() < until && (await journalTimes()) === before)
          await new Promise((r) => setImmediate(r));
      }
      echo.kill('SIGKILL');
      await new Promise((r) => echo.once('exit', r));

      // Recovery alone (no primary): the tree is exactly the state before or after the batch.
      const applier = await BatchApplier.create(b, meta, true);
      const recovered = await buildManifest(b);
      const asJson = (m: unknown): string => JSON.stringify(m);
      const matches =
        asJson(recovered) === asJson(post) ? 'post' : asJson(recovered) === asJson(pre) ? 'pre' : 'neither';
      outcomes.push(matches);
      expect(matches).not.toBe('neither');
      expect(applier.state.lastApplied).toBeGreaterThan(0);

      echo = await startEcho(b, source.port);
      await converge(a, b, source);
      echo.send({ type: 'stop' });
      await new Promise((r) => echo.once('exit', r));
    }
    expect(outcomes).toHaveLength(3);
  });
});
