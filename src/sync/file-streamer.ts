import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ByteReader, ByteWriter } from './byte-codec.js';
import { ContentHasher } from './content-hash.js';
import { FileRecord } from './file-stream.js';
import { SignatureBuilder, type FileSignature } from './signature.js';
import { createWholeHash } from './strong-hash.js';

// A big new file sent as it is read, instead of read whole, hashed, then sent. The content worker
// reads and hashes it (streamFileSync) and hands each piece over as it is read; the primary's event
// loop only frames and sends them (ContentStream). The block signature, needed only for the file's
// next delta, is computed from the same pieces once the echo has acknowledged them (signPieces).

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
 */
export function streamFileSync(
  path: string,
  pieceBytes: number,
  onOpen: (size: number, ino: number) => void,
  onPiece: (piece: Buffer) => void,
): StreamedContent & { state: ContentHasher } {
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
        onPiece(buf.subarray(at, HEADER_ROOM + n));
      }
      if (n < want) break;
    }
    const hash = hasher.fork().digest();
    onPiece(new ByteWriter(32).u8(FileRecord.End).bytes(Buffer.from(hash, 'hex')).finish());
    return { hash, sent, whole: whole.digest(), state: hasher };
  } finally {
    closeSync(fd);
  }
}

/**
 * The signature of content sent as streamed pieces (literal records; other records are skipped), of
 * `length` bytes in all; null if the pieces do not add up to `length`.
 */
export function signPieces(pieces: readonly Uint8Array[], length: number): FileSignature | null {
  const signer = new SignatureBuilder(length);
  for (const p of pieces) {
    if (p[0] !== FileRecord.Literal) continue;
    const r = new ByteReader(p);
    r.u8();
    const n = r.varint();
    signer.update(p.subarray(p.length - n));
  }
  return signer.finish();
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

  /** The records in order (literal pieces, then the end record). */
  async *pieces(): AsyncGenerator<Buffer> {
    for (;;) {
      const piece = this.#queue.shift();
      if (piece) {
        yield piece;
        continue;
      }
      if (this.#error) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }
}
