import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  constants,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, isUnderstudyError } from '../errors/index.js';
import type { Mutation } from './mutation.js';
import { DurableMutationLog, nodeMutationLogIo, type MutationLogIo } from './mutation-log-durable.js';
import { SEGMENT_HEADER_BYTES, encodeRecord, segmentHeader, segmentName } from './mutation-log-segment.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'us-mlog-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.now();
function mutation(seq: number, bodyBytes = 10, at = T0 + seq): Mutation {
  return {
    seq,
    kind: 'apply',
    epoch: 3,
    partition: '',
    method: 'PUT',
    path: `/kv/k${seq}`,
    headers: { 'content-type': 'text/plain', 'x-request-id': `r${seq}` },
    body: Buffer.alloc(bodyBytes, seq % 251),
    at,
  };
}

async function all(log: DurableMutationLog, from = 0): Promise<Mutation[]> {
  const out: Mutation[] = [];
  for await (const m of log.since(from)) out.push(m);
  return out;
}

/** The real file writes, counting the batch writes (`writes()`). */
function countingIo(): { io: MutationLogIo; writes: () => number } {
  let n = 0;
  return {
    io: { write: (fd, buf) => (n++, nodeMutationLogIo.write(fd, buf)), sync: nodeMutationLogIo.sync },
    writes: () => n,
  };
}

function segments(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.seg'))
    .sort();
}

describe('DurableMutationLog', () => {
  it('keeps appended mutations across a reopen, byte for byte, and continues after the last seq', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir });
    await Promise.all([1, 2, 3].map((s) => log.append(mutation(s))));
    await log.close();
    const again = await DurableMutationLog.open({ dir });
    expect(again.lastSeq).toBe(3);
    expect(again.recovery).toMatchObject({ records: 3, lastSeq: 3, firstKeptSeq: 1 });
    expect(await all(again)).toEqual([1, 2, 3].map((s) => mutation(s)));
    expect(again.canReplayFrom(0)).toBe(true);
    await again.append(mutation(4));
    expect((await all(again, 2)).map((m) => m.seq)).toEqual([3, 4]);
    await again.close();
  });

  it('holds the whole state only when marked at its genesis: the mark survives a reopen and is refused once a mutation is in', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir });
    expect(log.fromGenesis).toBe(false);
    expect(await log.markGenesis()).toBe(true);
    await log.append(mutation(1));
    await log.close();
    const again = await DurableMutationLog.open({ dir });
    expect(again.fromGenesis).toBe(true);
    await again.close();
    // A log opened later for state that already exists (another control replica's data directory).
    const late = await DurableMutationLog.open({ dir: tempDir() });
    await late.append(mutation(1));
    expect(await late.markGenesis()).toBe(false);
    expect(late.fromGenesis).toBe(false);
    await late.close();
  });

  it('refuses a sequence number that does not follow the last one', async () => {
    const log = await DurableMutationLog.open({ dir: tempDir() });
    await log.append(mutation(5));
    expect(() => log.append(mutation(5))).toThrow(/not after the log's last seq 5/);
    await log.close();
  });

  it('shares one fsync among appends that arrive together (group commit)', async () => {
    let syncs = 0;
    const io: MutationLogIo = {
      write: nodeMutationLogIo.write,
      sync: (fd) => (syncs++, nodeMutationLogIo.sync(fd)),
    };
    const log = await DurableMutationLog.open({ dir: tempDir(), io });
    const before = syncs;
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append(mutation(i + 1))));
    expect(syncs - before).toBeLessThan(20);
    expect(log.durableSeq).toBe(200);
    await log.close();
  });

  it('writes through an O_DSYNC descriptor with the real file writes, so a batch is durable in one write (also after a rotation and a reopen)', async () => {
    const dir = tempDir();
    // The flags of this process's descriptors open on the log's segments (from /proc/self/fdinfo).
    const segmentFdFlags = (): number[] =>
      readdirSync('/proc/self/fd').flatMap((fd) => {
        let target: string;
        try {
          target = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          return [];
        }
        if (!target.startsWith(dir) || !target.endsWith('.seg')) return [];
        const line = readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/^flags:\s+([0-7]+)/m);
        return line?.[1] ? [parseInt(line[1], 8)] : [];
      });
    const dsync = (flags: number): boolean => (flags & constants.O_DSYNC) === constants.O_DSYNC;
    const log = await DurableMutationLog.open({ dir, segmentBytes: 1000 });
    expect(segmentFdFlags().map(dsync)).toEqual([true]);
    for (let s = 1; s <= 30; s++) await log.append(mutation(s, 100));
    expect(segments(dir).length).toBeGreaterThan(1); // rotated
    expect(segmentFdFlags().map(dsync)).toEqual([true]);
    await log.close();
    const again = await DurableMutationLog.open({ dir, segmentBytes: 1000 });
    expect(segmentFdFlags().map(dsync)).toEqual([true]);
    await again.append(mutation(31, 100));
    expect(again.durableSeq).toBe(31);
    await again.close();
    // A test's io seam keeps the write-then-sync path (its sync is what it observes).
    let syncs = 0;
    const io: MutationLogIo = {
      write: nodeMutationLogIo.write,
      sync: (fd) => (syncs++, nodeMutationLogIo.sync(fd)),
    };
    const seam = await DurableMutationLog.open({ dir: tempDir(), io });
    const before = syncs;
    await seam.append(mutation(1));
    expect(syncs).toBeGreaterThan(before);
    await seam.close();
  });

  it('with flushIntervalMs, appends within the interval share one batch write, and close writes what is still pending', async () => {
    const dir = tempDir();
    const { io, writes } = countingIo();
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    const log = await DurableMutationLog.open({ dir, io, flushIntervalMs: 400 });
    const before = writes();
    await log.append(mutation(1)); // the first batch goes at once
    expect(writes() - before).toBe(1);
    const later: Array<Promise<void>> = [];
    for (let s = 2; s <= 11; s++) {
      later.push(log.append(mutation(s)));
      await sleep(5); // each in its own turn: without an interval, each would be a write of its own
    }
    await Promise.all(later);
    expect(writes() - before).toBe(2);
    expect(log.durableSeq).toBe(11);
    void log.append(mutation(12));
    await log.close(); // writes seq 12 (once the interval has passed)
    const again = await DurableMutationLog.open({ dir });
    expect(again.lastSeq).toBe(12);
    await again.close();
  });

  it('with flushIntervalMinBatch, a lone writer is written at once and only appends after a large enough batch wait for the interval', async () => {
    const dir = tempDir();
    const { io, writes } = countingIo();
    // A second's interval (close waits for it): 50 ms after a batch, nothing that waits is written yet.
    const log = await DurableMutationLog.open({
      dir,
      io,
      flushIntervalMs: 1000,
      flushIntervalMinBatch: 3,
    });
    const before = writes();
    const soon = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
    // A lone writer: each append follows a batch of one, so none waits for the interval.
    for (let s = 1; s <= 4; s++) {
      void log.append(mutation(s));
      await soon();
      expect(log.durableSeq).toBe(s);
    }
    expect(writes() - before).toBe(4);
    // Three appends in one turn: one batch of three, written at once (the batch before held one).
    await Promise.all([5, 6, 7].map((s) => log.append(mutation(s))));
    expect(writes() - before).toBe(5);
    // After a batch of three, the next append waits for the interval.
    const waiting = log.append(mutation(8));
    await soon();
    expect(log.durableSeq).toBe(7);
    await log.close(); // writes what waits, once the interval has passed
    await waiting;
    expect(writes() - before).toBe(6);
    expect(log.durableSeq).toBe(8);
  });

  it('rotates segments by size and replays across them from disk after a reopen', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir, segmentBytes: 1000 });
    for (let s = 1; s <= 60; s++) await log.append(mutation(s, 100));
    await log.close();
    expect(segments(dir).length).toBeGreaterThan(5);
    for (const f of segments(dir)) expect(statSync(join(dir, f)).size).toBeLessThan(1000 + 300);
    const again = await DurableMutationLog.open({ dir, segmentBytes: 1000, memoryBytes: 1 });
    expect((await all(again, 17)).map((m) => m.seq)).toEqual(Array.from({ length: 43 }, (_, i) => i + 18));
    await again.close();
  });

  it('deletes the oldest segments past maxBytes: positions before them need a full copy', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir, segmentBytes: 1000, maxBytes: 3000, memoryBytes: 1 });
    for (let s = 1; s <= 100; s++) await log.append(mutation(s, 100));
    // Retention runs after an append resolves: let it finish.
    await log.close();
    expect(log.bytes).toBeLessThanOrEqual(3000 + 1300);
    expect(log.firstKeptSeq).toBeGreaterThan(50);
    expect(log.canReplayFrom(10)).toBe(false);
    expect(log.canReplayFrom(log.firstKeptSeq - 1)).toBe(true);
    const kept = await all(log, log.firstKeptSeq - 1);
    expect(kept.map((m) => m.seq)).toEqual(
      Array.from({ length: 100 - log.firstKeptSeq + 1 }, (_, i) => log.firstKeptSeq + i),
    );
  });

  it('deletes segments whose newest mutation is older than maxAge', async () => {
    const dir = tempDir();
    let now = 10_000;
    const log = await DurableMutationLog.open({
      dir,
      segmentBytes: 500,
      maxAgeMs: 5_000,
      memoryBytes: 1,
      now: () => now,
    });
    for (let s = 1; s <= 20; s++) await log.append(mutation(s, 100, now));
    const segmentsBefore = segments(dir).length;
    now += 60_000;
    for (let s = 21; s <= 30; s++) await log.append(mutation(s, 100, now));
    await log.close();
    expect(segments(dir).length).toBeLessThan(segmentsBefore + 3);
    expect(log.firstKeptSeq).toBeGreaterThan(20);
  });

  it('cuts off a torn last record on open, reports it, and appends after it', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir });
    for (let s = 1; s <= 3; s++) await log.append(mutation(s));
    await log.close();
    const file = join(dir, segments(dir).at(-1) ?? '');
    const whole = statSync(file).size;
    appendFileSync(file, encodeRecord(mutation(4)).subarray(0, 20));
    const again = await DurableMutationLog.open({ dir });
    expect(again.recovery.torn).toEqual({ file, offset: whole, bytes: 20 });
    expect(again.lastSeq).toBe(3);
    await again.append(mutation(4));
    expect((await all(again)).map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    await again.close();
    expect((await DurableMutationLog.open({ dir })).recovery.torn).toBeUndefined();
  });

  it('refuses a segment damaged in the middle, naming the file and the offset', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir });
    for (let s = 1; s <= 3; s++) await log.append(mutation(s, 50));
    await log.close();
    const file = join(dir, segments(dir)[0] ?? '');
    const buf = readFileSync(file);
    const secondRecord = SEGMENT_HEADER_BYTES + encodeRecord(mutation(1, 50)).length;
    buf[secondRecord + 40] = (buf[secondRecord + 40] ?? 0) ^ 0xff;
    writeFileSync(file, buf);
    const err = await DurableMutationLog.open({ dir }).catch((e: unknown) => e);
    expect(isUnderstudyError(err, ErrorCode.MutationLogCorrupt)).toBe(true);
    expect((err as Error).message).toContain(file);
    expect((err as Error).message).toContain(`byte offset ${secondRecord}`);
  });

  it('disk full (injected ENOSPC): the batch is rejected with a clear error, nothing half-written stays, the log continues after a gap', async () => {
    const dir = tempDir();
    let full = false;
    const io: MutationLogIo = {
      write: async (fd, buf) => {
        if (full) {
          // A partial write, then the failure, as a full disk does.
          await nodeMutationLogIo.write(fd, buf.subarray(0, Math.floor(buf.length / 2)));
          throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        }
        await nodeMutationLogIo.write(fd, buf);
      },
      sync: nodeMutationLogIo.sync,
    };
    const log = await DurableMutationLog.open({ dir, io, memoryBytes: 1 });
    await log.append(mutation(1));
    full = true;
    const err = await log.append(mutation(2)).catch((e: unknown) => e);
    expect(isUnderstudyError(err, ErrorCode.MutationLogWrite)).toBe(true);
    expect((err as Error).message).toMatch(/mutations 2\.\.2 .*disk is full/);
    expect(log.writeFailures.count).toBe(1);
    full = false;
    await log.append(mutation(3));
    expect(log.canReplayFrom(0)).toBe(false);
    expect(log.canReplayFrom(2)).toBe(true);
    await log.close();
    const again = await DurableMutationLog.open({ dir });
    expect(again.recovery.droppedBeforeGap).toBe(0);
    expect((await all(again, 2)).map((m) => m.seq)).toEqual([3]);
    expect(again.canReplayFrom(1)).toBe(false);
    await again.close();
  });

  it.runIf(process.getuid?.() === 0 && process.platform === 'linux')(
    'disk full on a real 1 MiB tmpfs: append rejects with MUTATION_LOG_WRITE and acknowledged mutations survive',
    async () => {
      const dir = tempDir();
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
      try {
        const log = await DurableMutationLog.open({ dir: join(dir, 'svc'), segmentBytes: 64 * 1024 });
        const acked: number[] = [];
        let failure: unknown;
        for (let s = 1; s <= 400 && !failure; s++) {
          await log.append(mutation(s, 8 * 1024)).then(
            () => acked.push(s),
            (e: unknown) => (failure = e),
          );
        }
        expect(isUnderstudyError(failure, ErrorCode.MutationLogWrite)).toBe(true);
        expect((failure as Error).message).toContain('disk is full');
        await log.close();
        const again = await DurableMutationLog.open({ dir: join(dir, 'svc'), segmentBytes: 64 * 1024 });
        const kept = (await all(again, again.firstKeptSeq - 1)).map((m) => m.seq);
        expect(kept.at(-1)).toBe(acked.at(-1));
        await again.close();
      } finally {
        execFileSync('umount', [dir]);
      }
    },
  );

  it('skipTo moves past sequence numbers lost from the log, and older positions need a full copy', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir, memoryBytes: 1 });
    for (let s = 1; s <= 3; s++) await log.append(mutation(s));
    await log.skipTo(7);
    expect(log.canReplayFrom(7)).toBe(true);
    expect(log.canReplayFrom(3)).toBe(false);
    await log.append(mutation(8));
    await log.close();
    const again = await DurableMutationLog.open({ dir });
    expect(again.lastSeq).toBe(8);
    expect(again.firstKeptSeq).toBe(8);
    await again.close();
  });

  it('with flushIntervalMs, skipTo first writes every pending batch: no earlier seq lands in the segment after the gap', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir, flushIntervalMs: 200 });
    void log.append(mutation(1)); // written at once
    await new Promise((r) => setImmediate(r)); // its write is under way
    void log.append(mutation(2)); // pending behind it, then waits for the interval
    void log.append(mutation(3));
    await log.skipTo(7);
    await log.append(mutation(8));
    await log.close();
    const again = await DurableMutationLog.open({ dir }); // refuses a segment holding seqs below its name
    expect(again.lastSeq).toBe(8);
    expect((await all(again, 7)).map((m) => m.seq)).toEqual([8]);
    await again.close();
  });

  it('skipAhead moves past sequence numbers without losing older ones: positions before and inside the skipped range still replay, also after a reopen', async () => {
    const dir = tempDir();
    const log = await DurableMutationLog.open({ dir, memoryBytes: 1, segmentBytes: 200 });
    expect(log.recovery.existing).toBe(false);
    for (let s = 1; s <= 3; s++) await log.append(mutation(s));
    await log.skipAhead(100);
    // Nothing logged after the skip yet: a position inside it is already at the end.
    expect(log.canReplayFrom(50)).toBe(true);
    expect(await all(log, 50)).toEqual([]);
    await log.append(mutation(101));
    await log.append(mutation(102));
    expect((await all(log, 1)).map((m) => m.seq)).toEqual([2, 3, 101, 102]);
    expect((await all(log, 3)).map((m) => m.seq)).toEqual([101, 102]);
    expect((await all(log, 42)).map((m) => m.seq)).toEqual([101, 102]);
    expect(log.isSkipped(42)).toBe(true);
    expect(log.isSkipped(3)).toBe(false);
    await log.close();
    const again = await DurableMutationLog.open({ dir, memoryBytes: 1 });
    expect(again.recovery).toMatchObject({ existing: true, droppedBeforeGap: 0, lastSeq: 102 });
    expect(again.firstKeptSeq).toBe(1);
    expect(again.isSkipped(100)).toBe(true);
    expect((await all(again, 0)).map((m) => m.seq)).toEqual([1, 2, 3, 101, 102]);
    expect((await all(again, 99)).map((m) => m.seq)).toEqual([101, 102]);
    await again.close();
  });

  it('property: a crash at any byte of the unwritten tail or of a rotation leaves a prefix holding every acknowledged mutation', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 0, maxLength: 5 }),
        fc.nat(),
        fc.boolean(),
        async (ackedSizes, tornSizes, cut, crashInRotation) => {
          const dir = tempDir();
          const log = await DurableMutationLog.open({ dir, segmentBytes: 700 });
          const acked = ackedSizes.map((size, i) => mutation(i + 1, size));
          for (const m of acked) await log.append(m);
          await log.close();
          const last = acked.length;
          const unwritten = tornSizes.map((size, i) => mutation(last + 1 + i, size));
          const tail = Buffer.concat([Buffer.alloc(0), ...unwritten.map(encodeRecord)]);
          let kept = 0;
          if (crashInRotation) {
            // The control process died while creating the next segment: a prefix of its header.
            const header = segmentHeader(0).subarray(0, cut % (SEGMENT_HEADER_BYTES + 1));
            writeFileSync(join(dir, segmentName(last + 1)), header);
          } else {
            const n = tail.length === 0 ? 0 : cut % (tail.length + 1);
            appendFileSync(join(dir, segments(dir).at(-1) ?? ''), tail.subarray(0, n));
            let off = 0;
            for (const m of unwritten) {
              off += encodeRecord(m).length;
              if (off <= n) kept++;
            }
          }
          const again = await DurableMutationLog.open({ dir, segmentBytes: 700 });
          const got = await all(again, again.firstKeptSeq - 1);
          const expected = [...acked, ...unwritten.slice(0, kept)];
          expect(got).toEqual(expected);
          expect(again.lastSeq).toBe(last + kept);
          await again.append(mutation(last + kept + 1));
          await again.close();
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 40 },
    );
  });
});
