import { afterEach, describe, expect, it } from 'vitest';
import {
  mkdtemp,
  mkdir,
  writeFile,
  rm,
  rename,
  symlink,
  chmod,
  appendFile,
  open,
  copyFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SyncSource } from './sync-source.js';
import { SyncTarget } from './sync-target.js';
import { verifyTrees } from './verify-trees.js';

const KEY = 'test-service-key-0123456789';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(sourceOpts: Partial<Parameters<typeof SyncSource.create>[0]> = {}) {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-'));
  const a = join(base, 'primary');
  const b = join(base, 'echo');
  await mkdir(a);
  const source = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0, ...sourceOpts });
  const target = await SyncTarget.create({ dir: b, key: KEY, port: source.port, durable: false });
  cleanups.push(async () => {
    await target.close();
    await source.close();
    await rm(base, { recursive: true, force: true });
  });
  return { base, a, b, source, target };
}

/** Files from 256 KiB up are streamed, in 64 KiB pieces: small enough sizes for a fast test. */
const STREAMED = { streamFromBytes: 256 * 1024, frameDataBytes: 64 * 1024 };

async function converge(a: string, b: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const d = await verifyTrees(a, b);
    if (d.length === 0) return;
    if (Date.now() > until) throw new Error(`trees differ: ${JSON.stringify(d.slice(0, 5))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('sync over loopback', () => {
  it('converges for creates, renames, deletes, symlinks, modes and empty directories', async () => {
    const { a, b } = await setup();
    await mkdir(join(a, 'data/sub'), { recursive: true });
    await writeFile(join(a, 'data/sub/x.bin'), randomBytes(300_000));
    await writeFile(join(a, 'config.yaml'), 'a: 1\n');
    await mkdir(join(a, 'empty'));
    await converge(a, b);
    await rename(join(a, 'data'), join(a, 'data2'));
    await symlink('data2/sub/x.bin', join(a, 'link'));
    await chmod(join(a, 'config.yaml'), 0o600);
    await appendFile(join(a, 'data2/sub/x.bin'), randomBytes(1000));
    await rm(join(a, 'empty'), { recursive: true });
    await mkdir(join(a, 'empty2'));
    await converge(a, b);
  });

  it('heals an echo whose file was changed behind its back (verify failure, then full resync)', async () => {
    const { a, b, source } = await setup();
    await writeFile(join(a, 'db.bin'), randomBytes(200_000));
    await converge(a, b);
    await writeFile(join(b, 'db.bin'), randomBytes(200_000)); // corrupt the echo
    const errors: unknown[] = [];
    source.on('error', (e: unknown) => errors.push(e));
    await appendFile(join(a, 'db.bin'), randomBytes(10));
    await converge(a, b);
    expect(errors.length).toBeGreaterThan(0);
  });

  it('resumes a restarted echo and re-syncs against a restarted primary without resending unchanged files', async () => {
    const { a, b, source, target } = await setup();
    await writeFile(join(a, 'big.bin'), randomBytes(2_000_000));
    await converge(a, b);
    // Echo restart: same lineage, nothing resent.
    await target.close();
    const target2 = await SyncTarget.create({ dir: b, key: KEY, port: source.port, durable: false });
    cleanups.push(() => target2.close());
    await writeFile(join(a, 'small.txt'), 'hello');
    await converge(a, b);
    expect(target2.stats().lineage).toBe(target.stats().lineage);
    // Primary restart: new lineage, the echo's manifest shows big.bin is already there.
    await target2.close();
    await source.close();
    const source2 = await SyncSource.create({ dir: a, key: KEY, scanIntervalMs: 0 });
    const target3 = await SyncTarget.create({ dir: b, key: KEY, port: source2.port, durable: false });
    cleanups.push(async () => {
      await target3.close();
      await source2.close();
    });
    await writeFile(join(a, 'after.txt'), 'again');
    await converge(a, b);
    expect(source2.stats()[0]?.wireBytes ?? Infinity).toBeLessThan(50_000);
  });

  it('keeps a growing log identical through many appends and an in-place rewrite', async () => {
    const { a, b, source } = await setup();
    await writeFile(join(a, 'wal.log'), randomBytes(1_500_000));
    await converge(a, b);
    for (let i = 0; i < 30; i++) {
      await appendFile(join(a, 'wal.log'), randomBytes(4096));
      if (i === 15) {
        const fh = await open(join(a, 'wal.log'), 'r+');
        await fh.write(randomBytes(100), 0, 100, 1000);
        await fh.close();
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await converge(a, b);
    expect(source.stats()[0]?.errors).toBe(0);
  });

  it('converges when a big new file changes again before its signature was computed', async () => {
    const { a, b, source } = await setup();
    await writeFile(join(a, 'blob.bin'), randomBytes(2_000_000));
    await converge(a, b);
    await appendFile(join(a, 'blob.bin'), randomBytes(1000)); // within the signing delay
    await converge(a, b);
    await appendFile(join(a, 'blob.bin'), randomBytes(1000));
    await converge(a, b);
    expect(source.stats()[0]?.errors).toBe(0);
  });

  it('sends a renamed directory as copies, not content', async () => {
    const { a, b, source } = await setup();
    await mkdir(join(a, 'd'));
    for (let i = 0; i < 20; i++) await writeFile(join(a, 'd', `f${i}`), randomBytes(50_000));
    await converge(a, b);
    const before = source.stats()[0]?.wireBytes ?? 0;
    await rename(join(a, 'd'), join(a, 'e'));
    await converge(a, b);
    const after = source.stats()[0]?.wireBytes ?? 0;
    expect(after - before).toBeLessThan(5_000);
  });

  describe('big new files streamed while read', () => {
    it('streams a big new file, then sends its next append as a delta against it', async () => {
      const { a, b, source } = await setup(STREAMED);
      await writeFile(join(a, 'big.bin'), randomBytes(3_000_000));
      await converge(a, b);
      const afterFirst = source.stats()[0]?.wireBytes ?? 0;
      expect(afterFirst).toBeGreaterThan(3_000_000);
      await appendFile(join(a, 'big.bin'), randomBytes(10_000));
      await converge(a, b);
      // The signature of the streamed content was computed, so only the tail travels.
      expect((source.stats()[0]?.wireBytes ?? 0) - afterFirst).toBeLessThan(100_000);
      expect(source.stats()[0]?.errors).toBe(0);
    });

    it('sends a copy of a streamed file as a copy on the echo, not as content', async () => {
      const { a, b, source } = await setup(STREAMED);
      await writeFile(join(a, 'one.bin'), randomBytes(2_000_000));
      await converge(a, b);
      const before = source.stats()[0]?.wireBytes ?? 0;
      // Copied beside the tree, then moved in: the copy appears whole (a copy caught half-way
      // would be a different file, rightly sent as one).
      await copyFile(join(a, 'one.bin'), join(a, '..', 'two.bin'));
      await rename(join(a, '..', 'two.bin'), join(a, 'two.bin'));
      await converge(a, b);
      expect((source.stats()[0]?.wireBytes ?? 0) - before).toBeLessThan(20_000);
    });

    it('converges on a big file that keeps growing while it is streamed', async () => {
      const { a, b, source } = await setup(STREAMED);
      await writeFile(join(a, 'grow.bin'), randomBytes(2_000_000));
      for (let i = 0; i < 20; i++) {
        await appendFile(join(a, 'grow.bin'), randomBytes(50_000));
        await new Promise((r) => setTimeout(r, 2));
      }
      await converge(a, b);
      expect(source.stats()[0]?.errors).toBe(0);
    });
  });
});
