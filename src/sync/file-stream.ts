import type { ByteWriter } from './byte-codec.js';
import { CONTENT_HASH_BYTES } from './content-hash.js';

/** Record tags of a file's content in a batch's data stream. */
export const FileRecord = { Copy: 1, Literal: 2, End: 3 } as const;

/** Encodes a copy of `length` bytes from base offset `src` to new offset `dst`. */
export function encodeCopy(w: ByteWriter, dst: number, src: number, length: number): void {
  w.u8(FileRecord.Copy)
    .svarint(src - dst)
    .varint(length);
}
/** Encodes the header of a literal of `length` bytes (the bytes follow). */
export function encodeLiteralHeader(w: ByteWriter, length: number): void {
  w.u8(FileRecord.Literal).varint(length);
}
/** Encodes the end of a file: its content hash, which the echo verifies. */
export function encodeEnd(w: ByteWriter, hash: string): void {
  const h = Buffer.from(hash, 'hex');
  if (h.length !== CONTENT_HASH_BYTES) throw new RangeError('bad content hash');
  w.u8(FileRecord.End).bytes(h);
}
