import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { applyDelta, computeDelta } from './delta.js';
import {
  computeSignature,
  emptySignature,
  extendSignature,
  markSignatureShared,
  weakChecksum,
} from './signature.js';
import { strongHash, wholeHash } from './strong-hash.js';
import { diffAppendedFileSync, diffContent, type HashCache } from './content-job.js';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contentHash } from './content-hash.js';
import type { FileSignature } from './signature.js';

type Edit =
  | { kind: 'insert'; at: number; data: Uint8Array }
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'overwrite'; at: number; data: Uint8Array }
  | { kind: 'append'; data: Uint8Array }
  | { kind: 'truncate'; at: number };

function applyEdits(base: Buffer, edits: Edit[]): Buffer {
  let cur = base;
  for (const e of edits) {
    const at = e.kind === 'append' ? cur.length : Math.min(e.at, cur.length);
    if (e.kind === 'insert') cur = Buffer.concat([cur.subarray(0, at), e.data, cur.subarray(at)]);
    else if (e.kind === 'delete')
      cur = Buffer.concat([cur.subarray(0, at), cur.subarray(Math.min(cur.length, at + e.len))]);
    else if (e.kind === 'overwrite') {
      cur = Buffer.from(cur);
      cur.set(e.data.subarray(0, Math.max(0, cur.length - at)), at);
    } else if (e.kind === 'append') cur = Buffer.concat([cur, e.data]);
    else cur = cur.subarray(0, at);
  }
  return cur;
}

/** Deterministic pseudo-random bytes (xorshift32), so fast-check can shrink and replay. */
function seededBytes(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed | 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const edit: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(400_000), data: bytes(5000) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(400_000), len: fc.nat(20_000) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(400_000), data: bytes(5000) }),
  fc.record({ kind: fc.constant('append' as const), data: bytes(20_000) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(400_000) }),
);

describe('delta engine', () => {
  it('reproduces the new file from the old one for random files and edit scripts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 300_000 }),
        fc.array(edit, { maxLength: 8 }),
        fc.integer(),
        (size, edits, seed) => {
          const base = seededBytes(size, seed);
          const next = applyEdits(base, edits);
          const sig = computeSignature(base);
          const delta = computeDelta(sig, next);
          expect(applyDelta(base, delta.ops).equals(next)).toBe(true);
          // The new signature equals one computed from scratch, so chained deltas stay correct.
          const fresh = computeSignature(next);
          expect(delta.signature.weak).toEqual(fresh.weak);
          expect(delta.signature.strong).toEqual(fresh.strong);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('sends only the tail of an append', () => {
    const base = randomBytes(1_000_003);
    const tail = randomBytes(50_000);
    const delta = computeDelta(computeSignature(base), Buffer.concat([base, tail]));
    expect(delta.literalBytes).toBe(50_000);
  });

  it('costs little more than the edited bytes for scattered small in-place edits', () => {
    const base = randomBytes(4 << 20);
    const next = Buffer.from(base);
    for (let i = 0; i < 50; i++)
      randomBytes(4096).copy(next, Math.floor(Math.random() * (next.length - 4096)));
    const delta = computeDelta(computeSignature(base), next);
    expect(delta.literalBytes).toBeLessThanOrEqual(50 * (4096 + 2 * 2048));
    expect(applyDelta(base, delta.ops).equals(next)).toBe(true);
  });

  it('finds shifted content after an in-place edit followed by an insertion and a deletion', () => {
    const base = randomBytes(1 << 20);
    const edited = Buffer.from(base);
    randomBytes(3000).copy(edited, 100_001); // in place: the next blocks are found where they were
    const next = Buffer.concat([
      edited.subarray(0, 300_003),
      randomBytes(11), // inserted: everything after it is shifted
      edited.subarray(300_003, 600_000),
      edited.subarray(600_050), // 50 bytes deleted: shifted back
    ]);
    const delta = computeDelta(computeSignature(base), next);
    expect(delta.literalBytes).toBeLessThan(3000 + 11 + 4 * 512);
    expect(applyDelta(base, delta.ops).equals(next)).toBe(true);
  });

  it('finds shifted content after an insertion near the start', () => {
    const base = randomBytes(200_000);
    const next = Buffer.concat([base.subarray(0, 10), randomBytes(7), base.subarray(10)]);
    const delta = computeDelta(computeSignature(base), next);
    expect(delta.literalBytes).toBeLessThan(2 * 1024);
    expect(applyDelta(base, delta.ops).equals(next)).toBe(true);
  });

  it('hashes large buffers in pieces to the same value as in one call', () => {
    const big = randomBytes(3 * 1024 * 1024 + 17);
    expect(wholeHash(big)).toBe(strongHash(big));
  });

  it('detects a pure append with one hash and signs only the tail', () => {
    const base = randomBytes(4 * 1024 * 1024 + 100);
    const next = Buffer.concat([base, randomBytes(5000)]);
    const delta = computeDelta(computeSignature(base), next);
    expect(delta.ops).toEqual([
      { kind: 'copy', offset: 0, length: base.length },
      { kind: 'literal', data: next.subarray(base.length) },
    ]);
    const fresh = computeSignature(next);
    expect(delta.signature.weak).toEqual(fresh.weak);
    expect(delta.signature.strong).toEqual(fresh.strong);
    expect(delta.signature.whole).toBe(fresh.whole);
  });

  it('keeps the content hash right across appends and rewrites when hashing only the tail', () => {
    const cache: HashCache = {};
    let content = randomBytes(2 << 20);
    let sig = computeSignature(content);
    for (const step of ['append', 'append', 'rewrite', 'append', 'truncate', 'append']) {
      const next =
        step === 'append'
          ? Buffer.concat([content, randomBytes(4096)])
          : step === 'truncate'
            ? content.subarray(0, content.length - 100)
            : Buffer.concat([randomBytes(10), content.subarray(10)]);
      const r = diffContent(next, sig, false, cache);
      expect(r.hash).toBe(contentHash(next));
      sig = r.signature as FileSignature;
      content = next;
    }
  });

  it('reads only the tail of an appended file, and declines when the old content changed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'us-delta-'));
    try {
      const path = join(dir, 'wal.log');
      const cache: HashCache = {};
      const first = randomBytes((3 << 20) + 123);
      await writeFile(path, first);
      const sig = diffContent(first, computeSignature(first.subarray(0, 10)), false, cache)
        .signature as FileSignature;
      const next = Buffer.concat([first, randomBytes(7000)]);
      await writeFile(path, next);
      const r = diffAppendedFileSync(path, sig, cache);
      expect(r?.hash).toBe(contentHash(next));
      expect(r?.literalBytes).toBe(7000);
      const fresh = computeSignature(next);
      expect(r?.signature.weak).toEqual(fresh.weak);
      expect(r?.signature.strong).toEqual(fresh.strong);
      expect(r?.signature.whole).toBe(fresh.whole);
      const edited = Buffer.concat([next, randomBytes(100)]);
      edited[5] = (edited[5] as number) ^ 1;
      await writeFile(path, edited);
      expect(diffAppendedFileSync(path, r?.signature as FileSignature, cache)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('extends a signature in place across appends without disturbing a newer one built from a stale base', () => {
    const B = 512;
    let content = randomBytes(10 * B + 100);
    let sig = computeSignature(content, B);
    const tailOf = (next: Buffer, keep: number) => {
      const full = computeSignature(next, B);
      return { weak: full.weak.slice(keep), strong: full.strong.slice(keep), whole: full.whole };
    };
    for (let i = 0; i < 20; i++) {
      const next = Buffer.concat([content, randomBytes(300 + i * 50)]);
      const keep = Math.floor(content.length / B);
      const t = tailOf(next, keep);
      sig = extendSignature(sig, keep, t.weak, t.strong, next.length, t.whole);
      const fresh = computeSignature(next, B);
      expect(sig.weak).toEqual(fresh.weak);
      expect(sig.strong).toEqual(fresh.strong);
      content = next;
    }
    // A second extension of the same (now stale) base must copy, leaving the first one intact.
    const base = sig;
    const a = Buffer.concat([content, randomBytes(700)]);
    const b = Buffer.concat([content, randomBytes(900)]);
    const keep = Math.floor(content.length / B);
    const ta = tailOf(a, keep);
    const sa = extendSignature(base, keep, ta.weak, ta.strong, a.length, ta.whole);
    const tb = tailOf(b, keep);
    const sb = extendSignature(base, keep, tb.weak, tb.strong, b.length, tb.whole);
    expect(sa.strong).toEqual(computeSignature(a, B).strong);
    expect(sb.strong).toEqual(computeSignature(b, B).strong);
  });

  it('never extends in place a signature that two paths share', () => {
    const B = 512;
    const content = randomBytes(4 * B + 10);
    const grown = Buffer.concat([content, randomBytes(600)]);
    const keep = 4;
    const full = computeSignature(grown, B);
    // Owned and with room: the first extension of a fresh signature would go in place next time.
    const sig = extendSignature(
      computeSignature(content, B),
      keep,
      full.weak.slice(keep),
      full.strong.slice(keep),
      grown.length,
      full.whole,
    );
    const before = Array.from(sig.strong);
    markSignatureShared(sig);
    const more = Buffer.concat([grown, randomBytes(900)]);
    const k2 = Math.floor(grown.length / B);
    const f2 = computeSignature(more, B);
    const next = extendSignature(sig, k2, f2.weak.slice(k2), f2.strong.slice(k2), more.length, f2.whole);
    expect(Array.from(sig.strong)).toEqual(before);
    expect(next.strong).toEqual(f2.strong);
  });

  it('sends a new file as a single literal', () => {
    const next = randomBytes(10_000);
    const delta = computeDelta(emptySignature(), next);
    expect(delta.ops).toHaveLength(1);
    expect(delta.literalBytes).toBe(10_000);
  });
});

describe('weak checksum', () => {
  it("is rsync's a + b sums of a block at any offset and length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.nat(), fc.nat(), (data, x, y) => {
        const start = x % data.length;
        const end = start + (y % (data.length - start + 1));
        let a = 0;
        let b = 0;
        for (let i = start; i < end; i++) {
          a += data[i] as number;
          b += (end - i) * (data[i] as number);
        }
        expect(weakChecksum(data, start, end)).toBe(((a & 0xffff) | ((b & 0xffff) << 16)) >>> 0);
      }),
    );
  });
});
