import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mkdtemp, mkdir, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SyncTarget, type SecurityEvent } from '../../src/sync/index.js';
import { ErrorCode } from '../../src/errors/index.js';
import { encodeFrame, FrameType } from '../../src/sync/frame-codec.js';
import type { BatchOp } from '../../src/sync/messages.js';
import { FakeSource } from './fixtures/sync/fake-source.js';

const key = Buffer.from('security-test-key-0123456789abcdef');
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** An echo in `<base>/echo`, a canary directory `<base>/canary` that must stay empty. */
async function setup() {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-sec-'));
  const echo = join(base, 'echo');
  const canary = join(base, 'canary');
  await mkdir(canary);
  const fake = await FakeSource.start(key);
  const target = await SyncTarget.create({
    dir: echo,
    key,
    port: fake.port,
    durable: false,
    reconnectDelayMs: 20,
  });
  const security: SecurityEvent[] = [];
  target.on('security', (e: SecurityEvent) => security.push(e));
  cleanups.push(async () => {
    await target.close();
    await fake.close();
    await rm(base, { recursive: true, force: true });
  });
  await fake.ready();
  return { base, echo, canary, fake, target, security };
}

const outside = async (canary: string, base: string): Promise<string[]> => {
  const names = (await readdir(base)).filter((n) => !['echo', 'canary', '.echo.understudy-sync'].includes(n));
  return [...names, ...(await readdir(canary))];
};

describe('echo path safety', () => {
  it.each([
    ['a parent-directory path', { op: 'file', path: '../canary/pwned', mode: 0o644, mtimeMs: 0, base: null }],
    ['an absolute path', { op: 'file', path: '/tmp/understudy-pwned', mode: 0o644, mtimeMs: 0, base: null }],
    ['a dot segment', { op: 'mkdir', path: 'a/./b', mode: 0o755 }],
    [
      'a delta base outside the tree',
      { op: 'file', path: 'x', mode: 0o644, mtimeMs: 0, base: '../canary/secret' },
    ],
    ['a delete of the parent', { op: 'delete', path: '..' }],
  ] as [string, BatchOp][])(
    'rejects %s with UNDERSTUDY_ERR_SYNC_PATH and writes nothing outside',
    async (_name, op) => {
      const { base, canary, fake, security } = await setup();
      await fake.sendBatch([op], op.op === 'file' ? [Buffer.from('pwned')] : []);
      await until(() => fake.errors.length > 0);
      expect(fake.errors[0]?.code).toBe(ErrorCode.SyncPath);
      expect(security.some((e) => e.code === ErrorCode.SyncPath)).toBe(true);
      expect(await outside(canary, base)).toEqual([]);
      expect(existsSync('/tmp/understudy-pwned')).toBe(false);
    },
  );

  it('rejects a write through a symlink that points outside the tree', async () => {
    const { base, canary, fake, security, echo } = await setup();
    await fake.sendBatch([{ op: 'symlink', path: 'esc', target: canary }]);
    await until(() => fake.acks.length === 1);
    await fake.sendBatch(
      [{ op: 'file', path: 'esc/pwned', mode: 0o644, mtimeMs: 0, base: null }],
      [Buffer.from('pwned')],
    );
    await until(() => fake.errors.length > 0);
    expect(fake.errors[0]?.code).toBe(ErrorCode.SyncPath);
    expect(security.length).toBeGreaterThan(0);
    expect(await outside(canary, base)).toEqual([]);
    expect(await readdir(echo)).toEqual(['esc']);
  });

  it('rejects a symlink and a file under it in the same batch', async () => {
    const { base, canary, fake } = await setup();
    await fake.sendBatch(
      [
        { op: 'symlink', path: 'esc', target: canary },
        { op: 'file', path: 'esc/pwned', mode: 0o644, mtimeMs: 0, base: null },
      ],
      [Buffer.from('pwned')],
    );
    await until(() => fake.errors.length > 0);
    expect(fake.errors[0]?.code).toBe(ErrorCode.SyncPath);
    expect(await outside(canary, base)).toEqual([]);
  });

  it('survives random and mutated frames without crashing or writing outside its directory', async () => {
    const { base, canary, echo, fake, target } = await setup();
    let connections = 0;
    target.on('connected', () => connections++);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.constant(null)),
        async (bytes) => {
          await fake.ready();
          const before = connections;
          if (bytes) fake.sendRaw(Buffer.from(bytes));
          else {
            // A validly framed but garbage-authenticated frame.
            fake.sendRaw(encodeFrame(randomBytes(32), FrameType.Batch, 1, randomBytes(50)));
          }
          // Wait for the echo to drop the connection and reconnect, or to keep waiting for more bytes.
          await new Promise((r) => setTimeout(r, 30));
          if (connections === before) fake.sendRaw(randomBytes(64 * 1024));
          await until(() => fake.conn === undefined || fake.conn.closed || connections > before, 3000).catch(
            () => undefined,
          );
          await until(() => connections > before, 3000);
        },
      ),
      { numRuns: 15 },
    );
    expect(await outside(canary, base)).toEqual([]);
    expect(await readdir(echo)).toEqual([]);
    expect(target.stats().securityEvents).toBeGreaterThan(0);
  });

  it('survives valid-looking batches with random ops and data', async () => {
    const { base, canary, fake } = await setup();
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            op: fc.constantFrom('file' as const, 'mkdir' as const, 'delete' as const, 'symlink' as const),
            path: fc.oneof(
              fc.constantFrom('a', 'a/b', '../x', '/abs', 'l/x', '', 'a//b'),
              fc.string({ maxLength: 10 }),
            ),
          }),
          { maxLength: 5 },
        ),
        async (items) => {
          await fake.ready();
          const ops: BatchOp[] = items.map((i) =>
            i.op === 'file'
              ? { op: 'file', path: i.path, mode: 0o644, mtimeMs: 0, base: null }
              : i.op === 'mkdir'
                ? { op: 'mkdir', path: i.path, mode: 0o755 }
                : i.op === 'symlink'
                  ? { op: 'symlink', path: i.path, target: canary }
                  : { op: 'delete', path: i.path },
          );
          const files = ops.filter((o) => o.op === 'file').map(() => randomBytes(10));
          const acks = fake.acks.length;
          const errs = fake.errors.length;
          await fake.sendBatch(ops, files).catch(() => undefined);
          await until(() => fake.acks.length > acks || fake.errors.length > errs, 3000).catch(
            () => undefined,
          );
        },
      ),
      { numRuns: 25 },
    );
    expect(await outside(canary, base)).toEqual([]);
  });
});
