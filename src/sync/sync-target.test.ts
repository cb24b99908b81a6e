import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SyncSource } from './sync-source.js';
import { SyncTarget } from './sync-target.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('SyncTarget.close', () => {
  it('closes a target that is still connecting to its primary, and nothing is applied after it returned', async () => {
    const root = mkdtempSync(join(tmpdir(), 'understudy-target-close-'));
    const key = Buffer.alloc(32, 7);
    const source = await SyncSource.create({ dir: join(root, 'p'), key });
    cleanups.push(async () => {
      await source.close();
      rmSync(root, { recursive: true, force: true });
    });
    writeFileSync(join(root, 'p', 'f'), 'content');
    const target = await SyncTarget.create({ dir: join(root, 'e'), key, port: source.port, durable: false });
    // At once: its connection to the primary is not established yet.
    const closed = await Promise.race([
      target.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still closing after 10 s'), 10_000)),
    ]);
    expect(closed).toBe('closed');
    await new Promise((r) => setTimeout(r, 300));
    expect(target.stats().connected).toBe(false);
    expect(source.stats().filter((s) => s.connected)).toEqual([]);
    expect(existsSync(join(root, 'e', 'f'))).toBe(false);
  }, 30_000);
});
