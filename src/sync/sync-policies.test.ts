import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm, rename, symlink, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SyncSource } from './sync-source.js';
import type { InitialSyncProgress } from './sync-stats.js';
import type { SyncSourceOptions } from './sync-options.js';
import { SyncTarget, type AppliedEvent } from './sync-target.js';
import { verifyTrees } from './verify-trees.js';
import { priorityRanker, DEFAULT_PRIORITY_CLASSES } from './priority.js';
import { globToRegExp } from './glob.js';
import { relaxedIntervalMs } from './sync-options.js';

const KEY = 'policy-test-service-key-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A primary side whose directory `prepare` filled first; the echo connects in {@link attachEcho}. */
async function primary(opts: Partial<SyncSourceOptions> = {}, prepare?: (dir: string) => Promise<void>) {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-policy-'));
  const a = join(base, 'primary');
  const b = join(base, 'echo');
  await mkdir(a);
  await prepare?.(a);
  const source = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0, ...opts });
  return { base, a, b, source };
}

async function attachEcho<P extends Awaited<ReturnType<typeof primary>>>(p: P) {
  const target = await SyncTarget.create({ dir: p.b, key: KEY, port: p.source.port, durable: false });
  cleanups.push(async () => {
    await target.close();
    await p.source.close();
    await rm(p.base, { recursive: true, force: true });
  });
  return { ...p, target };
}

async function setup(opts: Partial<SyncSourceOptions> = {}) {
  return attachEcho(await primary(opts));
}

const nextApplied = (t: SyncTarget): Promise<AppliedEvent> => new Promise((r) => t.once('applied', r));

describe('priorities and triggers', () => {
  it('ranks application data before code before config by default', () => {
    const rank = priorityRanker(DEFAULT_PRIORITY_CLASSES);
    expect(rank('db/users.sqlite')).toBeLessThan(rank('lib/server.js'));
    expect(rank('lib/server.js')).toBeLessThan(rank('etc/app.conf'));
    expect(rank('config.yaml')).toBe(rank('etc/app.conf'));
  });

  it('compiles globs with *, ** and alternatives', () => {
    expect(globToRegExp('*.{js,ts}').test('a/b/c.ts')).toBe(true);
    expect(globToRegExp('src/**').test('src/a/b.js')).toBe(true);
    expect(globToRegExp('src/*.js').test('src/a/b.js')).toBe(false);
    expect(globToRegExp('etc/**/x').test('etc/x')).toBe(true);
  });

  it('shortens the relaxed interval as primary utilisation rises', () => {
    expect(relaxedIntervalMs(10_000, 0)).toBe(10_000);
    expect(relaxedIntervalMs(10_000, 0.5)).toBe(5_500);
    expect(relaxedIntervalMs(10_000, 1)).toBeCloseTo(1_000);
    expect(relaxedIntervalMs(10_000, 7)).toBeCloseTo(1_000);
  });

  it('sends application data first when a bandwidth cap splits the changes', async () => {
    const { base, a, b, target, source } = await setup({ bandwidthBytesPerSec: 300_000 });
    while (!source.stats()[0]?.connected) await new Promise((r) => setTimeout(r, 10));
    const incoming = join(base, 'incoming');
    await mkdir(incoming);
    await writeFile(join(incoming, 'app.conf'), randomBytes(250_000));
    await writeFile(join(incoming, 'server.js'), randomBytes(250_000));
    await writeFile(join(incoming, 'data.db'), randomBytes(250_000));
    const first = nextApplied(target);
    await rename(incoming, join(a, 'svc'));
    await first;
    expect(existsSync(join(b, 'svc/data.db'))).toBe(true);
    expect(existsSync(join(b, 'svc/app.conf'))).toBe(false);
    expect(existsSync(join(b, 'svc/server.js'))).toBe(false);
    const until = Date.now() + 15_000;
    while ((await verifyTrees(a, b)).length > 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 100));
    expect(await verifyTrees(a, b)).toEqual([]);
  });

  it('waits for the interval in relaxed mode', async () => {
    const { a, b } = await setup({ mode: 'relaxed', intervalMs: 800 });
    await new Promise((r) => setTimeout(r, 900));
    await writeFile(join(a, 'x'), 'x');
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(join(b, 'x'))).toBe(false);
    const until = Date.now() + 5000;
    while (!existsSync(join(b, 'x')) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(join(b, 'x'))).toBe(true);
  });

  it('reports initial sync progress up to the total and then completion', async () => {
    const p = await primary({ maxBatchBytes: 300_000 }, async (a) => {
      for (let i = 0; i < 5; i++) await writeFile(join(a, `f${i}`), randomBytes(200_000));
    });
    const progress: { doneBytes: number; totalBytes: number; done: boolean }[] = [];
    p.source.on('progress', (e: { doneBytes: number; totalBytes: number; done: boolean }) =>
      progress.push(e),
    );
    await attachEcho(p);
    const until = Date.now() + 10_000;
    while (!progress.some((p) => p.done) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(progress[0]?.totalBytes).toBe(1_000_000);
    expect(progress.filter((p) => !p.done).length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual({
      echo: 'echo',
      doneBytes: 1_000_000,
      sentBytes: 1_000_000,
      totalBytes: 1_000_000,
      doneFiles: 5,
      totalFiles: 5,
      done: true,
    });
  });

  it('reports bytes sent within a batch before the batch is applied, never behind what is applied', async () => {
    // Small data frames and a bandwidth cap spread the one batch over several progress events.
    const p = await primary({ frameDataBytes: 256 * 1024, bandwidthBytesPerSec: 12 << 20 }, (a) =>
      writeFile(join(a, 'big.bin'), randomBytes(6 << 20)),
    );
    const progress: InitialSyncProgress[] = [];
    p.source.on('progress', (e: InitialSyncProgress) => progress.push(e));
    await attachEcho(p);
    const until = Date.now() + 10_000;
    while (progress.at(-1)?.doneFiles !== 1 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    const during = progress.filter((p) => p.sentBytes > 0 && p.doneBytes === 0);
    expect(during.length).toBeGreaterThan(1);
    expect(progress.every((p) => p.sentBytes >= p.doneBytes && p.sentBytes <= p.totalBytes)).toBe(true);
    const sent = during.map((p) => p.sentBytes);
    expect(sent).toEqual([...sent].sort((x, y) => x - y));
  });
});

describe('verifyTrees', () => {
  it('reports content, mode, type, symlink and presence differences', async () => {
    const base = await mkdtemp(join(tmpdir(), 'us-sync-verify-'));
    cleanups.push(() => rm(base, { recursive: true, force: true }));
    const a = join(base, 'a');
    const b = join(base, 'b');
    for (const d of [a, b]) {
      await mkdir(join(d, 'dir'), { recursive: true });
      await writeFile(join(d, 'same'), 'same');
    }
    await writeFile(join(a, 'content'), 'one');
    await writeFile(join(b, 'content'), 'two');
    await writeFile(join(a, 'mode'), 'm');
    await writeFile(join(b, 'mode'), 'm');
    await chmod(join(b, 'mode'), 0o600);
    await writeFile(join(a, 'type'), 't');
    await mkdir(join(b, 'type'));
    await symlink('same', join(a, 'link'));
    await symlink('dir', join(b, 'link'));
    await writeFile(join(a, 'only-a'), '');
    await writeFile(join(b, 'only-b'), '');
    const diffs = await verifyTrees(a, b);
    expect(diffs.map((d) => [d.path, d.kind])).toEqual([
      ['content', 'content'],
      ['link', 'symlink-target'],
      ['mode', 'mode'],
      ['only-a', 'only-in-a'],
      ['only-b', 'only-in-b'],
      ['type', 'type'],
    ]);
    expect(await verifyTrees(a, a)).toEqual([]);
  });
});
