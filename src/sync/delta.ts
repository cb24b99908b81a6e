import { blockCount, chooseBlockSize, weakChecksum, type FileSignature } from './signature.js';
import { strongHash, wholeHash } from './strong-hash.js';

/** Blocks in place tried after a mismatch before the rolling search (an edit of up to 8 KiB at 512 B). */
const IN_PLACE_PROBES = 16;

/** One instruction of a delta: copy a range of the base file, or insert literal bytes. */
export type DeltaOp =
  | { readonly kind: 'copy'; readonly offset: number; readonly length: number }
  | { readonly kind: 'literal'; readonly data: Uint8Array };

/** Result of {@link computeDelta}. */
export interface Delta {
  readonly ops: DeltaOp[];
  /** Bytes carried as literals. */
  readonly literalBytes: number;
  /** Signature of the new content, reusing the base's entries where blocks were copied in place. */
  readonly signature: FileSignature;
}

/**
 * Computes the delta turning the file described by `base` into `data`.
 *
 * rsync's algorithm with change-aware shortcuts: first the block expected next (in place or after the
 * last match) is tried with the strong hash alone, so appends and in-place edits cost only the changed
 * blocks; elsewhere a rolling weak checksum finds shifted blocks. Falls back to a single literal when
 * that is no larger.
 */
export function computeDelta(base: FileSignature, data: Uint8Array): Delta {
  const appended = appendDelta(base, data);
  if (appended) return appended;
  const n = data.length;
  const B = base.blockSize;
  const nb = blockCount(base.length, B);
  const ops: DeltaOp[] = [];
  const newB = chooseBlockSize(n);
  const newNb = blockCount(n, newB);
  // Base block index whose signature entry can be reused for each new block (-1: compute afresh).
  const reuse = new Int32Array(newNb).fill(-1);
  let literalBytes = 0;
  let litStart = 0;

  const baseLen = (j: number): number => Math.min(B, base.length - j * B);
  // The copy being extended (pushed as one op once it ends): a long run of matched blocks costs
  // no allocation per block.
  let runSrc = 0;
  let runLen = 0;
  const flushRun = (): void => {
    if (runLen > 0) ops.push({ kind: 'copy', offset: runSrc, length: runLen });
    runLen = 0;
  };
  const emitCopy = (dst: number, src: number, len: number): void => {
    if (litStart < dst) {
      flushRun();
      ops.push({ kind: 'literal', data: data.subarray(litStart, dst) });
      literalBytes += dst - litStart;
    }
    if (runLen > 0 && runSrc + runLen === src) runLen += len;
    else {
      flushRun();
      runSrc = src;
      runLen = len;
    }
    litStart = dst + len;
    if (newB === B) {
      const first = Math.ceil(dst / B);
      for (let k = first; k * B + Math.min(B, n - k * B) <= dst + len && k < newNb; k++) {
        const s = src + (k * B - dst);
        if (s % B !== 0) break;
        const j = s / B;
        if (baseLen(j) === Math.min(B, n - k * B)) reuse[k] = j;
      }
    }
  };

  if (nb > 0 && n > 0) {
    // Hash table over full base blocks: head[bucket] -> block+1, chained through next.
    let size = 1;
    while (size < nb * 2) size <<= 1;
    const mask = size - 1;
    const head = new Int32Array(size);
    const next = new Int32Array(nb);
    for (let j = nb - 1; j >= 0; j--) {
      if (baseLen(j) !== B) continue;
      const bucket = ((base.weak[j] as number) ^ ((base.weak[j] as number) >>> 16)) & mask;
      next[j] = head[bucket] as number;
      head[bucket] = j + 1;
    }
    let pos = 0;
    let expected = 0;
    outer: while (pos < n) {
      if (expected < nb) {
        const len = baseLen(expected);
        if (pos + len <= n && strongHash(data.subarray(pos, pos + len)) === base.strong[expected]) {
          emitCopy(pos, expected * B, len);
          pos += len;
          expected++;
          continue;
        }
      }
      if (pos + B > n) break;
      // An in-place edit (content still aligned with the base): the next blocks in place are tried
      // by their strong hash before rolling byte by byte through the edit, a random walk over the
      // whole hash table per byte.
      if (pos === expected * B) {
        for (let m = 1; m <= IN_PLACE_PROBES && expected + m < nb; m++) {
          const q = pos + m * B;
          const len = baseLen(expected + m);
          if (q + len > n) break;
          if (strongHash(data.subarray(q, q + len)) === base.strong[expected + m]) {
            emitCopy(q, (expected + m) * B, len);
            pos = q + len;
            expected += m + 1;
            continue outer;
          }
        }
      }
      // Rolling search from pos.
      let a = 0;
      let b = 0;
      for (let i = 0; i < B; i++) {
        const x = data[pos + i] as number;
        a += x;
        b += (B - i) * x;
      }
      for (;;) {
        const w = ((a & 0xffff) | ((b & 0xffff) << 16)) >>> 0;
        let j = (head[(w ^ (w >>> 16)) & mask] as number) - 1;
        if (j >= 0) {
          let strong: bigint | undefined;
          while (j >= 0) {
            if (base.weak[j] === w) {
              strong ??= strongHash(data.subarray(pos, pos + B));
              if (strong === base.strong[j]) {
                emitCopy(pos, j * B, B);
                pos += B;
                expected = j + 1;
                continue outer;
              }
            }
            j = (next[j] as number) - 1;
          }
        }
        if (pos + B >= n) {
          pos = n;
          break outer;
        }
        const out = data[pos] as number;
        const inn = data[pos + B] as number;
        a = a - out + inn;
        b = b - B * out + a;
        pos++;
      }
    }
    // A short last base block may match the tail.
    if (litStart < n && nb > 0) {
      const j = nb - 1;
      const len = baseLen(j);
      if (len < B && n - litStart >= len && strongHash(data.subarray(n - len, n)) === base.strong[j]) {
        emitCopy(n - len, j * B, len);
      }
    }
  }
  flushRun();
  if (litStart < n) {
    ops.push({ kind: 'literal', data: data.subarray(litStart, n) });
    literalBytes += n - litStart;
  }
  const weak = new Uint32Array(newNb);
  const strong = new BigUint64Array(newNb);
  for (let k = 0; k < newNb; k++) {
    const j = reuse[k] as number;
    if (j >= 0) {
      // A run of reused entries is copied as typed-array ranges (no BigInt per entry).
      let r = 1;
      while (k + r < newNb && reuse[k + r] === j + r) r++;
      weak.set(base.weak.subarray(j, j + r), k);
      strong.set(base.strong.subarray(j, j + r), k);
      k += r - 1;
    } else {
      const s = k * newB;
      const e = Math.min(s + newB, n);
      weak[k] = weakChecksum(data, s, e);
      strong[k] = strongHash(data.subarray(s, e));
    }
  }
  const signature: FileSignature = { blockSize: newB, length: n, weak, strong, whole: wholeHash(data) };
  if (literalBytes >= n && ops.length > 1) {
    return { ops: n > 0 ? [{ kind: 'literal', data }] : [], literalBytes: n, signature };
  }
  return { ops, literalBytes, signature };
}

/**
 * Append detection: when the new content starts with exactly the old content (one hash over the old
 * length), the delta is a single copy plus the new tail, and only the tail's blocks are signed.
 */
function appendDelta(base: FileSignature, data: Uint8Array): Delta | undefined {
  const n = data.length;
  if (base.length === 0 || n < base.length || chooseBlockSize(n) !== base.blockSize) return undefined;
  if (wholeHash(data.subarray(0, base.length)) !== base.whole) return undefined;
  const B = base.blockSize;
  const ops: DeltaOp[] = [{ kind: 'copy', offset: 0, length: base.length }];
  if (n > base.length) ops.push({ kind: 'literal', data: data.subarray(base.length) });
  const keep = Math.floor(base.length / B); // full old blocks stay as they are
  const nb = blockCount(n, B);
  const weak = new Uint32Array(nb);
  const strong = new BigUint64Array(nb);
  weak.set(base.weak.subarray(0, keep));
  strong.set(base.strong.subarray(0, keep));
  for (let k = keep; k < nb; k++) {
    const s = k * B;
    const e = Math.min(s + B, n);
    weak[k] = weakChecksum(data, s, e);
    strong[k] = strongHash(data.subarray(s, e));
  }
  return {
    ops,
    literalBytes: n - base.length,
    signature: { blockSize: B, length: n, weak, strong, whole: wholeHash(data) },
  };
}

/** Applies `ops` to `base`, returning the new content (in memory; the echo streams instead). */
export function applyDelta(base: Uint8Array, ops: readonly DeltaOp[]): Buffer {
  const parts: Uint8Array[] = [];
  for (const op of ops) {
    if (op.kind === 'literal') parts.push(op.data);
    else {
      if (op.offset + op.length > base.length) throw new RangeError('copy beyond base');
      parts.push(base.subarray(op.offset, op.offset + op.length));
    }
  }
  return Buffer.concat(parts);
}
