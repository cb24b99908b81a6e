import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ByteWriter } from './byte-codec.js';
import { ContentHasher } from './content-hash.js';
import { FileRecord } from './file-stream.js';
import { SignatureBuilder, type FileSignature } from './signature.js';
import { createWholeHash } from './strong-hash.js';

// A big new file sent as it is read, instead of read whole, hashed, then sent. The content worker
// reads and hashes it (streamFile) and hands each piece over as it is read, a few pieces ahead of the
// sending at most; the primary's event loop only frames and sends them (ContentStream) and keeps
// none of them, so memory stays bounded whatever the file's size (a resend reads it again). The block
// signature, needed only for the file's next delta, is computed once the echo has acknowledged the
// file, from the file's first bytes if they still hash as sent (signFilePrefix).

/** What was sent of a streamed file. */
export interface StreamedContent {
  /** Content hash of exactly the bytes sent. */
  readonly hash: string;
  readonly sent: number;
  /** 64-bit xxHash of the bytes sent (the signature's `whole`). */
  readonly whole: bigint;
}

/** Bytes reserved in front of each piece for its literal record header (tag + varint length). */
const HEADER_ROOM = 8;

/**
 * Reads the file at `path` as literal records of at most `pieceBytes` (header included, each in one
 * buffer of its own, ready to be one data frame), hashing on the way, and ends with the end record
 * of exactly the bytes read. Blocking I/O: for the content worker. The content is what the reads
 * returned up to the size at open: a file that grows meanwhile is sent as it was at open (its growth
 * is a later change); one that shrinks, or whose read fails, ends where the reads ended (the sent
 * size then differs from the file's, so it is sent again). Either way the echo gets a
 * self-consistent file. Throws only if the file cannot be opened (ENOENT…) or is not a regular file.
 * `state` is the hash state at the end of the content (an append to it then hashes only its tail).
 * `onPiece` may wait (flow control: the reading waits with it).
 */
export async function streamFile(
  path: string,
  pieceBytes: number,
  onOpen: (size: number, ino: number) => void,
  onPiece: (piece: Buffer) => void | Promise<void>,
): Promise<StreamedContent & { state: ContentHasher }> {
  const fd = openSync(path, 'r');
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const e = new Error(`not a regular file: ${path}`) as NodeJS.ErrnoException;
      e.code = 'EISDIR';
      throw e;
    }
    onOpen(st.size, st.ino);
    const chunk = Math.max(4096, pieceBytes - HEADER_ROOM);
    const hasher = new ContentHasher();
    const whole = createWholeHash();
    let sent = 0;
    while (sent < st.size) {
      const want = Math.min(chunk, st.size - sent);
      const buf = Buffer.allocUnsafeSlow(HEADER_ROOM + want);
      let n = 0;
      try {
        while (n < want) {
          const got = readSync(fd, buf, HEADER_ROOM + n, want - n, sent + n);
          if (got === 0) break;
          n += got;
        }
      } catch {
        // A failed read ends the file where it is, like end of file.
      }
      if (n > 0) {
        const data = buf.subarray(HEADER_ROOM, HEADER_ROOM + n);
        hasher.update(data);
        whole.update(data);
        const head = new ByteWriter(HEADER_ROOM).u8(FileRecord.Literal).varint(n).finish();
        const at = HEADER_ROOM - head.length;
        head.copy(buf, at);
        sent += n;
        await onPiece(buf.subarray(at, HEADER_ROOM + n));
      }
      if (n < want) break;
    }
    const hash = hasher.fork().digest();
    await onPiece(new ByteWriter(32).u8(FileRecord.End).bytes(Buffer.from(hash, 'hex')).finish());
    return { hash, sent, whole: whole.digest(), state: hasher };
  } finally {
    closeSync(fd);
  }
}

/**
 * The signature of the first `length` bytes of the file at `path`, and the hash state at their end,
 * if those bytes still have content hash `hash` (what was sent); null otherwise (changed in place
 * since, or shorter). Blocking I/O: for the content worker.
 */
export function signFilePrefix(
  path: string,
  length: number,
  hash: string,
): { signature: FileSignature; state: ContentHasher } | null {
  const fd = openSync(path, 'r');
  try {
    const signer = new SignatureBuilder(length);
    const hasher = new ContentHasher();
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, Math.max(1, length)));
    for (let at = 0; at < length;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, length - at), at);
      if (n === 0) return null;
      const data = buf.subarray(0, n);
      signer.update(data);
      hasher.update(data);
      at += n;
    }
    if (hasher.fork().digest() !== hash) return null;
    const signature = signer.finish();
    return signature ? { signature, state: hasher } : null;
  } finally {
    closeSync(fd);
  }
}

/**
 * The primary's side of a streamed file: pieces arrive (from the content worker) while earlier ones
 * are sent. `hash` and `sentBytes` describe exactly the content sent, once {@link pieces} has ended.
 */
export class ContentStream {
  readonly #queue: Buffer[] = [];
  #wake: (() => void) | null = null;
  #ended = false;
  #error: Error | null = null;
  #end: StreamedContent | null = null;

  constructor(
    /** Size when opened: the most this stream sends. */
    readonly size: number,
    readonly ino: number,
    /** Told when a piece has been taken, so that the reader may read one more. */
    private readonly taken: () => void = () => undefined,
    /** Stops the reader (the consumer gave up). */
    private readonly stop: () => void = () => undefined,
  ) {}

  /** What was sent: hash, size and signature (once {@link pieces} has ended). */
  get result(): StreamedContent {
    if (this.#end === null) throw new Error('file stream not finished');
    return this.#end;
  }

  push(piece: Buffer): void {
    this.#queue.push(piece);
    this.#signal();
  }

  end(result: StreamedContent): void {
    this.#end = result;
    this.#ended = true;
    this.#signal();
  }

  /** The producer died: {@link pieces} throws after the pieces already queued. */
  fail(err: Error): void {
    this.#error = err;
    this.#signal();
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** The records in order (literal pieces, then the end record); stopping early stops the reader. */
  async *pieces(): AsyncGenerator<Buffer> {
    try {
      yield* this.#drain();
    } finally {
      if (!this.#ended && !this.#error) this.stop();
    }
  }

  async *#drain(): AsyncGenerator<Buffer> {
    for (;;) {
      const piece = this.#queue.shift();
      if (piece) {
        this.taken();
        yield piece;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}
