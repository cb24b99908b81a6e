import { readFile } from 'node:fs/promises';
import { ByteWriter } from './byte-codec.js';
import { ContentHasher, contentHash } from './content-hash.js';
import { computeDelta } from './delta.js';
import { encodeCopy, encodeLiteralHeader } from './file-stream.js';
import { computeSignature, type FileSignature } from './signature.js';

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
export async function diffFile(path: string, base: FileSignature | null): Promise<ContentResult> {
  const r = diffContent(await readFile(path), base);
  return { ...r, signature: r.signature as FileSignature };
}
