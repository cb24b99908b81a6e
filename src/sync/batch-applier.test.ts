import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeJournal, SLOTS, type JournalStep } from './apply-io.js';
import { BatchApplier } from './batch-applier.js';
import { ByteQueue } from './byte-queue.js';
import { ByteWriter } from './byte-codec.js';
import { contentHash } from './content-hash.js';
import { encodeCopy, encodeEnd, encodeLiteralHeader } from './file-stream.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function dirs(): Promise<{ root: string; meta: string }> {
  const base = await mkdtemp(join(tmpdir(), 'us-applier-'));
  cleanups.push(() => rm(base, { recursive: true, force: true }));
  return { root: join(base, 'echo'), meta: join(base, 'meta') };
}

/** The data stream of an append of `tail` to a file whose content is `before`. */
function appendStream(before: Buffer, tail: Buffer): ByteQueue {
  const w = new ByteWriter();
  encodeCopy(w, 0, 0, before.length);
  encodeLiteralHeader(w, tail.length);
  w.bytes(tail);
  encodeEnd(w, contentHash(Buffer.concat([before, tail])));
  const q = new ByteQueue();
  q.push(Buffer.from(w.finish()));
  q.end();
  return q;
}

/** Redo data of a patch writing `data` at `off`. */
function redo(off: number, data: Buffer): Buffer {
  return new ByteWriter().varint(1).varint(off).lbytes(data).finish();
}

describe('batch applier', () => {
  it('keeps its journal owner-only: the journal and staging directories 0700, state.json 0600', async () => {
    const { root, meta } = await dirs();
    const applier = await BatchApplier.create(root, meta, true);
    await applier.resetLineage('l1');
    await applier.close();
    expect((await stat(meta)).mode & 0o777).toBe(0o700);
    expect((await stat(join(meta, 'staging'))).mode & 0o777).toBe(0o700);
    expect((await stat(join(meta, 'state.json'))).mode & 0o777).toBe(0o600);
  });

  it('applies appends in place, each verified, through several commits', async () => {
    const { root, meta } = await dirs();
    const applier = await BatchApplier.create(root, meta, true);
    let content = randomBytes(5000);
    await writeFile(join(root, 'wal.log'), content);
    for (let seq = 1; seq <= 5; seq++) {
      const tail = randomBytes(4096);
      const op = { op: 'file', path: 'wal.log', mode: 0o644, mtimeMs: 0, base: 'wal.log' } as const;
      const staged = await applier.stage('L', seq, [op], appendStream(content, tail));
      await applier.commit(staged);
      content = Buffer.concat([content, tail]);
      expect((await readFile(join(root, 'wal.log'))).equals(content)).toBe(true);
    }
    expect(applier.state.lastApplied).toBe(5);
    await applier.close();
  });

  it('replays carried patches of earlier batches in order after a crash, whatever part reached the disk', async () => {
    const { root, meta } = await dirs();
    await (await BatchApplier.create(root, meta, true)).close();
    const a = randomBytes(3000);
    const b = randomBytes(700);
    const c = randomBytes(900);
    const r1 = redo(a.length, b);
    const r2 = redo(a.length + b.length, c);
    const patch = (at: number, len: number, size: number): JournalStep => ({
      k: 'patch',
      path: 'wal.log',
      at,
      len,
      size,
      mode: 0o600,
      mtimeMs: 0,
    });
    const record = encodeJournal(
      {
        gen: 0,
        lineage: 'L',
        seq: 2,
        steps: [
          patch(0, r1.length, a.length + b.length),
          patch(r1.length, r2.length, a.length + b.length + c.length),
        ],
        carried: 1,
      },
      [r1, r2],
    );
    const want = Buffer.concat([a, b, c]);
    // The disk kept nothing of either batch, part of them, or all of them.
    for (const onDisk of [a, Buffer.concat([a, b.subarray(0, 100)]), want]) {
      await writeFile(join(root, 'wal.log'), onDisk);
      await writeFile(join(meta, SLOTS[0]), record);
      const applier = await BatchApplier.create(root, meta, true);
      expect((await readFile(join(root, 'wal.log'))).equals(want)).toBe(true);
      expect(applier.state.lastApplied).toBe(2);
      await applier.close();
    }
  });

  it('ignores a torn journal record and recovers from the other slot', async () => {
    const { root, meta } = await dirs();
    await (await BatchApplier.create(root, meta, true)).close();
    const ok = encodeJournal({
      gen: 0,
      lineage: 'L',
      seq: 7,
      steps: [{ k: 'mkdir', path: 'd', mode: 0o755 }],
    });
    const torn = encodeJournal({
      gen: 0,
      lineage: 'L',
      seq: 8,
      steps: [{ k: 'mkdir', path: 'e', mode: 0o755 }],
    });
    await writeFile(join(meta, SLOTS[1]), ok);
    await writeFile(join(meta, SLOTS[0]), torn.subarray(0, torn.length - 3));
    const applier = await BatchApplier.create(root, meta, true);
    expect(applier.state.lastApplied).toBe(7);
    await applier.close();
  });
});
