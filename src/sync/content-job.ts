import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ByteWriter } from './byte-codec.js';
import { ContentHasher, contentHash } from './content-hash.js';
import { computeDelta } from './delta.js';
import { encodeCopy, encodeLiteralHeader } from './file-stream.js';
import {
  blockCount,
  chooseBlockSize,
  computeSignature,
  extendSignature,
  weakChecksum,
  type FileSignature,
} from './signature.js';
import { createWholeHash, strongHash } from './strong-hash.js';

/** Result of reading one changed file on the primary and diffing it against the echo's version. */
export interface ContentResult {
  readonly hash: string;
  readonly size: number;
  /** Copy/literal records of the file's content (without the end record), as pieces. */
  readonly records: Buffer[];
  /** Literal bytes in `records`. */
  readonly literalBytes: number;
  /** Signature of the content read; a promise while a worker still computes it after sending the content. */
  readonly signature: FileSignature | Promise<FileSignature>;
}

/** Encodes a delta or whole content as records. */
export function encodeRecords(ops: ReturnType<typeof computeDelta>['ops'], sizeHint: number): Buffer {
  const w = new ByteWriter(sizeHint + 64);
  let dst = 0;
  for (const op of ops) {
    if (op.kind === 'copy') {
      encodeCopy(w, dst, op.offset, op.length);
      dst += op.length;
    } else {
      encodeLiteralHeader(w, op.data.length);
      w.bytes(op.data);
      dst += op.data.length;
    }
  }
  return w.finish();
}

/**
 * Diffs content against `base` (or sends it whole when `base` is null). Pure CPU; runs in a worker for
 * big files. With `deferSignature`, a whole file's signature is left out (null) for the caller to
 * compute after the content is on its way.
 */
export function diffContent(
  data: Buffer,
  base: FileSignature | null,
  deferSignature = false,
  cache?: HashCache,
): Omit<ContentResult, 'signature'> & { signature: FileSignature | null } {
  if (cache && base !== null && base.length > 0) return diffWithCache(data, base, cache);
  const hash = contentHash(data);
  if (base === null || base.length === 0) {
    const w = new ByteWriter(16);
    if (data.length > 0) encodeLiteralHeader(w, data.length);
    return {
      hash,
      size: data.length,
      records: data.length > 0 ? [w.finish(), data] : [],
      literalBytes: data.length,
      signature: deferSignature ? null : computeSignature(data),
    };
  }
  const d = computeDelta(base, data);
  return {
    hash,
    size: data.length,
    records: [encodeRecords(d.ops, d.literalBytes)],
    literalBytes: d.literalBytes,
    signature: d.signature,
  };
}

/**
 * SHA-256 state at the end of one file's content as last sent, keyed by the content's whole xxHash:
 * a pure append then hashes only its tail.
 */
export interface HashCache {
  entry?: { length: number; whole: bigint; state: ContentHasher };
}

function diffWithCache(
  data: Buffer,
  base: FileSignature,
  cache: HashCache,
): Omit<ContentResult, 'signature'> & { signature: FileSignature } {
  const d = computeDelta(base, data);
  const first = d.ops[0];
  const e = cache.entry;
  const append =
    first?.kind === 'copy' &&
    first.offset === 0 &&
    first.length === base.length &&
    d.ops.length <= 2 &&
    data.length >= base.length;
  let state: ContentHasher;
  if (append && e && e.length === base.length && e.whole === base.whole) {
    state = e.state.fork();
    state.update(data.subarray(base.length));
  } else {
    state = new ContentHasher();
    state.update(data);
  }
  cache.entry = { length: data.length, whole: d.signature.whole, state: state.fork() };
  return {
    hash: state.digest(),
    size: data.length,
    records: [encodeRecords(d.ops, d.literalBytes)],
    literalBytes: d.literalBytes,
    signature: d.signature,
  };
}

/** Reads `path` and runs {@link diffContent} (inline: signature included). */
export async function diffFile(
  path: string,
  base: FileSignature | null,
  sizeHint = Infinity,
): Promise<ContentResult> {
  // A small file is read with one blocking call of a few microseconds, where the thread pool would
  // take four round trips (open, stat, read, close).
  const data = sizeHint <= SYNC_READ_BELOW ? readFileSync(path) : await readFile(path);
  const r = diffContent(data, base);
  return { ...r, signature: r.signature as FileSignature };
}

/** Files up to this size are read synchronously by {@link diffFile}. */
const SYNC_READ_BELOW = 64 * 1024;

/** The blocks an append changed: from block `keep` on (see {@link extendSignature}). */
export interface SignatureTail {
  readonly keep: number;
  readonly weak: Uint32Array;
  readonly strong: BigUint64Array;
}

/** Read buffer of {@link diffAppendedFileSync} (one per thread; reads are sequential within a call). */
let prefixBuf: Buffer | undefined;

/**
 * The append fast path, reading the file instead of loading it (blocking I/O: meant for the content
 * worker thread, where a few synchronous reads beat a round trip through the thread pool each): when
 * `cache` holds the SHA-256 state at the end of the content `base` describes, one streaming xxHash
 * over the first `base.length` bytes (read in 1 MiB pieces into a reused buffer) checks that the file
 * still starts with exactly that content; if so only the tail is kept, signed and hashed. Returns
 * `undefined` when the change is not such an append (or the file changed under the read): the caller
 * then diffs the whole file.
 */
export function diffAppendedFileSync(
  path: string,
  base: FileSignature,
  cache: HashCache,
): (Omit<ContentResult, 'signature'> & { signature: FileSignature; tail: SignatureTail }) | undefined {
  const e = cache.entry;
  if (!e || base.length === 0 || e.length !== base.length || e.whole !== base.whole) return undefined;
  const fd = openSync(path, 'r');
  try {
    const n = fstatSync(fd).size;
    const B = base.blockSize;
    if (n < base.length || chooseBlockSize(n) !== B) return undefined;
    const keep = Math.floor(base.length / B); // full old blocks stay as they are
    const from = keep * B;
    const whole = createWholeHash();
    prefixBuf ??= Buffer.allocUnsafe(1 << 20);
    for (let p = 0; p < from;) {
      const len = Math.min(prefixBuf.length, from - p);
      if (readSync(fd, prefixBuf, 0, len, p) !== len) return undefined;
      whole.update(prefixBuf.subarray(0, len));
      p += len;
    }
    const tail = Buffer.allocUnsafe(n - from);
    for (let p = 0; p < tail.length;) {
      const got = readSync(fd, tail, p, tail.length - p, from + p);
      if (got === 0) return undefined;
      p += got;
    }
    whole.update(tail.subarray(0, base.length - from));
    if (whole.digest() !== base.whole) return undefined;
    const added = tail.subarray(base.length - from);
    whole.update(added);
    const nb = blockCount(n, B);
    const weakTail = new Uint32Array(nb - keep);
    const strongTail = new BigUint64Array(nb - keep);
    for (let k = keep; k < nb; k++) {
      const s = k * B - from;
      const end = Math.min(s + B, tail.length);
      weakTail[k - keep] = weakChecksum(tail, s, end);
      strongTail[k - keep] = strongHash(tail.subarray(s, end));
    }
    const state = e.state.fork();
    state.update(added);
    const digest = whole.digest();
    const signature = extendSignature(base, keep, weakTail, strongTail, n, digest);
    cache.entry = { length: n, whole: digest, state: state.fork() };
    const ops: ReturnType<typeof computeDelta>['ops'] = [{ kind: 'copy', offset: 0, length: base.length }];
    if (added.length > 0) ops.push({ kind: 'literal', data: added });
    return {
      hash: state.digest(),
      size: n,
      records: [encodeRecords(ops, added.length)],
      literalBytes: added.length,
      signature,
      tail: { keep, weak: weakTail, strong: strongTail },
    };
  } finally {
    closeSync(fd);
  }
}
