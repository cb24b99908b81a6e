import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Length in bytes of a content hash (SHA-256 truncated to 128 bits). */
export const CONTENT_HASH_BYTES = 16;

/** Content hash of a whole file: SHA-256 truncated to {@link CONTENT_HASH_BYTES}, as lowercase hex. */
export function contentHash(data: Uint8Array): string {
  return createHash('sha256').update(data).digest().subarray(0, CONTENT_HASH_BYTES).toString('hex');
}

/** Incremental {@link contentHash}. */
export class ContentHasher {
  readonly #hash: Hash;
  constructor(from?: Hash) {
    this.#hash = from ?? createHash('sha256');
  }
  update(data: Uint8Array): void {
    this.#hash.update(data);
  }
  /** An independent hasher continuing from the current state (to extend a file's hash later). */
  fork(): ContentHasher {
    return new ContentHasher(this.#hash.copy());
  }
  digest(): string {
    return this.#hash.digest().subarray(0, CONTENT_HASH_BYTES).toString('hex');
  }
}

/** Reads a file in chunks and returns its {@link contentHash} and size. */
export async function hashFile(path: string): Promise<{ hash: string; size: number }> {
  const fh = await open(path, 'r');
  try {
    const h = new ContentHasher();
    const { size: statSize } = await fh.stat();
    const buf = Buffer.allocUnsafe(Math.min(1 << 20, statSize + 1));
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      size += bytesRead;
    }
    return { hash: h.digest(), size };
  } finally {
    await fh.close();
  }
}
