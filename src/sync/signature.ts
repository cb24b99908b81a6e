import { createWholeHash, strongHash, wholeHash, type WholeHasher } from './strong-hash.js';

/**
 * Block signature of one version of a file: a rolling weak checksum and a 64-bit strong hash per
 * block. The primary keeps the signature of what each echo holds, so signatures never cross the wire.
 */
export interface FileSignature {
  /** Block size in bytes; the last block may be shorter. */
  readonly blockSize: number;
  /** Length of the file the signature describes. */
  readonly length: number;
  /** Weak rsync-style checksum per block (`a | b << 16`). */
  readonly weak: Uint32Array;
  /** Strong 64-bit hash per block. */
  readonly strong: BigUint64Array;
  /** 64-bit xxHash of the whole content: one comparison detects a pure append. */
  readonly whole: bigint;
}

/** Smallest block size, used up to {@link MAX_BLOCKS} blocks per file. */
export const MIN_BLOCK = 512;
/** Blocks per signature before the block size doubles (bounds the primary's memory: ~12 B per block). */
export const MAX_BLOCKS = 1 << 20;

/**
 * Block size for a file of `size` bytes. rsync uses about √size because every block's checksums
 * cross the wire; here the primary keeps the echo's signatures itself, so blocks stay small
 * (512 B up to 512 MiB files) and a scattered 4 KiB edit costs about 4.5 KiB instead of a √size block.
 */
export function chooseBlockSize(size: number): number {
  let b = MIN_BLOCK;
  while (size / b > MAX_BLOCKS) b *= 2;
  return b;
}

/** Number of blocks of a file of `length` bytes at `blockSize`. */
export function blockCount(length: number, blockSize: number): number {
  return Math.ceil(length / blockSize);
}

/** Weak checksum of `data[start, end)` (rsync's Adler-32 variant without offset). */
export function weakChecksum(data: Uint8Array, start: number, end: number): number {
  // b = sum of (len - k) * x_k, accumulated as the running sum of a (two adds per byte, unrolled).
  let a = 0;
  let b = 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    a += data[i] as number;
    b += a;
    a += data[i + 1] as number;
    b += a;
    a += data[i + 2] as number;
    b += a;
    a += data[i + 3] as number;
    b += a;
  }
  for (; i < end; i++) {
    a += data[i] as number;
    b += a;
  }
  return ((a & 0xffff) | ((b & 0xffff) << 16)) >>> 0;
}

/** Computes the signature of `data`. */
export function computeSignature(data: Uint8Array, blockSize = chooseBlockSize(data.length)): FileSignature {
  const n = blockCount(data.length, blockSize);
  const weak = new Uint32Array(n);
  const strong = new BigUint64Array(n);
  for (let i = 0; i < n; i++) {
    const s = i * blockSize;
    const e = Math.min(s + blockSize, data.length);
    weak[i] = weakChecksum(data, s, e);
    strong[i] = strongHash(data.subarray(s, e));
  }
  return { blockSize, length: data.length, weak, strong, whole: wholeHash(data) };
}

/**
 * Builds the signature of content that arrives in pieces of any size (a file streamed while it is
 * read), at the block size of the `expectedLength` announced up front. Yields the same signature as
 * {@link computeSignature} over the concatenated pieces when they add up to `expectedLength`, and
 * null otherwise (the block size would not be the one chosen for the real length).
 */
export class SignatureBuilder {
  readonly #blockSize: number;
  readonly #weak: Uint32Array;
  readonly #strong: BigUint64Array;
  readonly #whole: WholeHasher = createWholeHash();
  readonly #carry: Buffer;
  #carried = 0;
  #blocks = 0;
  #length = 0;

  constructor(private readonly expectedLength: number) {
    this.#blockSize = chooseBlockSize(expectedLength);
    const n = blockCount(expectedLength, this.#blockSize);
    this.#weak = new Uint32Array(n);
    this.#strong = new BigUint64Array(n);
    this.#carry = Buffer.allocUnsafe(this.#blockSize);
  }

  update(data: Uint8Array): void {
    this.#whole.update(data);
    this.#length += data.length;
    const B = this.#blockSize;
    let at = 0;
    if (this.#carried > 0) {
      const take = Math.min(B - this.#carried, data.length);
      this.#carry.set(data.subarray(0, take), this.#carried);
      this.#carried += take;
      at = take;
      if (this.#carried === B) {
        this.#block(this.#carry, 0, B);
        this.#carried = 0;
      }
    }
    for (; at + B <= data.length; at += B) this.#block(data, at, at + B);
    if (at < data.length) {
      this.#carry.set(data.subarray(at), 0);
      this.#carried = data.length - at;
    }
  }

  #block(data: Uint8Array, start: number, end: number): void {
    if (this.#blocks >= this.#weak.length) {
      this.#blocks++; // more than announced: finish() gives up
      return;
    }
    this.#weak[this.#blocks] = weakChecksum(data, start, end);
    this.#strong[this.#blocks] = strongHash(data.subarray(start, end));
    this.#blocks++;
  }

  /** The signature, or null if the content was not `expectedLength` bytes long. */
  finish(): FileSignature | null {
    if (this.#carried > 0) this.#block(this.#carry, 0, this.#carried);
    this.#carried = 0;
    if (this.#length !== this.expectedLength || this.#blocks !== this.#weak.length) return null;
    return {
      blockSize: this.#blockSize,
      length: this.#length,
      weak: this.#weak,
      strong: this.#strong,
      whole: this.#whole.digest(),
    };
  }
}

/** An empty signature (for a file the echo does not have). */
export function emptySignature(): FileSignature {
  return {
    blockSize: MIN_BLOCK,
    length: 0,
    weak: new Uint32Array(0),
    strong: new BigUint64Array(0),
    whole: strongHash(new Uint8Array(0)),
  };
}

/** The signature that last extended each signature buffer in place (only it may extend it again). */
const tailOwner = new WeakMap<ArrayBufferLike, FileSignature>();
/** Signatures more than one path refers to (hard links, copies): never extended in place. */
const shared = new WeakSet<FileSignature>();

/** Marks a signature as held by more than one path, so {@link extendSignature} copies it. */
export function markSignatureShared(sig: FileSignature): void {
  shared.add(sig);
}

/**
 * The signature of `base`'s content with its blocks from `keep` on replaced by `weakTail`/`strongTail`
 * (an append). When `base` is the latest signature over a buffer with room left, the new blocks are
 * written in place (base's own blocks from `keep` on are then stale: it must no longer be used);
 * otherwise the arrays are reallocated with room to grow. Appends then cost O(tail) memory, not a
 * new copy of the whole signature per change.
 */
export function extendSignature(
  base: FileSignature,
  keep: number,
  weakTail: Uint32Array,
  strongTail: BigUint64Array,
  length: number,
  whole: bigint,
): FileSignature {
  const nb = keep + weakTail.length;
  let weak: Uint32Array;
  let strong: BigUint64Array;
  const inPlace =
    !shared.has(base) &&
    tailOwner.get(base.weak.buffer) === base &&
    base.weak.byteOffset === 0 &&
    base.strong.byteOffset === 0 &&
    base.weak.buffer.byteLength >= nb * 4 &&
    base.strong.buffer.byteLength >= nb * 8;
  if (inPlace) {
    weak = new Uint32Array(base.weak.buffer, 0, nb);
    strong = new BigUint64Array(base.strong.buffer, 0, nb);
  } else {
    const cap = Math.max(64, Math.ceil(nb * 1.5));
    weak = new Uint32Array(new ArrayBuffer(cap * 4), 0, nb);
    strong = new BigUint64Array(new ArrayBuffer(cap * 8), 0, nb);
    weak.set(base.weak.subarray(0, keep));
    strong.set(base.strong.subarray(0, keep));
  }
  weak.set(weakTail, keep);
  strong.set(strongTail, keep);
  const sig: FileSignature = { blockSize: base.blockSize, length, weak, strong, whole };
  tailOwner.set(weak.buffer, sig);
  return sig;
}
