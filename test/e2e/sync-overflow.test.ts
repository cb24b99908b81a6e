import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, mkdir, writeFile, rm, rename, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SyncSource, SyncTarget, type SyncSourceOptions } from '../../src/sync/index.js';
import { converge } from './fixtures/sync/converge.js';

const KEY = 'overflow-test-service-key-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(opts: Partial<SyncSourceOptions>) {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-overflow-'));
  const a = join(base, 'primary');
  const b = join(base, 'echo');
  await mkdir(a);
  const source = await SyncSource.create({ dir: a, key: KEY, ...opts });
  const target = await SyncTarget.create({ dir: b, key: KEY, port: source.port, durable: false });
  cleanups.push(async () => {
    await target.close();
    await source.close();
    await rm(base, { recursive: true, force: true });
  });
  return { a, b, source };
}

/** Thousands of creates, overwrites, renames and deletes as fast as possible. */
async function storm(a: string): Promise<void> {
  for (let d = 0; d < 20; d++) await mkdir(join(a, `d${d}`, 'deep'), { recursive: true });
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 1500; i++)
    writes.push(
      writeFile(join(a, `d${i % 20}`, i % 3 === 0 ? 'deep' : '', `f${i}`), randomBytes(64 + (i % 512))),
    );
  await Promise.all(writes);
  for (let i = 0; i < 1500; i += 7) await unlink(join(a, `d${i % 20}`, i % 3 === 0 ? 'deep' : '', `f${i}`));
  for (let d = 0; d < 5; d++) await rename(join(a, `d${d}`), join(a, `moved${d}`));
}

describe('change capture under a storm of changes', { timeout: 60_000 }, () => {
  it('converges with inotify watches for thousands of changes at once', async () => {
    const { a, b, source } = await setup({ scanIntervalMs: 0 });
    await storm(a);
    await converge(a, b, source);
  });

  it('converges from the periodic scan alone when no watch events arrive (as after an overflow)', async () => {
    const { a, b, source } = await setup({ watch: false, scanIntervalMs: 200 });
    await storm(a);
    await converge(a, b, source);
    expect(source.stats()[0]?.errors).toBe(0);
  });
});
