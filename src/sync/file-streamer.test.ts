import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  appendFileSync,
  closeSync,
  openSync,
  readFileSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ByteReader } from './byte-codec.js';
import { contentHash } from './content-hash.js';
import { FileRecord } from './file-stream.js';
import { signFilePrefix, streamFile } from './file-streamer.js';
import { computeSignature, SignatureBuilder } from './signature.js';
import fc from 'fast-check';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tempDir(): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'us-sync-stream-'));
  cleanups.push(() => rm(base, { recursive: true, force: true }));
  return base;
}

/** Decodes streamed pieces back into the content and the end record's hash. */
function decodePieces(pieces: Buffer[]): { content: Buffer; hash: string } {
  const parts: Buffer[] = [];
  let hash = '';
  for (const p of pieces) {
    const r = new ByteReader(p);
    const tag = r.u8();
    if (tag === FileRecord.Literal) {
      const len = r.varint();
      expect(r.remaining).toBe(len);
      parts.push(Buffer.from(r.bytes(len)));
    } else {
      expect(tag).toBe(FileRecord.End);
      hash = Buffer.from(r.bytes(r.remaining)).toString('hex');
    }
  }
  return { content: Buffer.concat(parts), hash };
}

describe('streaming big new files', () => {
  it('signs content arriving in pieces of any size exactly as the whole content', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 5000 }),
        fc.array(fc.integer({ min: 1, max: 1500 }), { maxLength: 20 }),
        (data, cuts) => {
          const b = new SignatureBuilder(data.length);
          let at = 0;
          for (const c of cuts) {
            b.update(data.subarray(at, Math.min(data.length, at + c)));
            at = Math.min(data.length, at + c);
          }
          b.update(data.subarray(at));
          expect(b.finish()).toEqual(computeSignature(data));
        },
      ),
    );
    const short = new SignatureBuilder(2000);
    short.update(new Uint8Array(1999));
    expect(short.finish()).toBeNull();
  });

  it('reads a file as literal pieces of bounded size ending with the hash of what was read', async () => {
    const path = join(await tempDir(), 'f.bin');
    const data = randomBytes(300_000);
    writeFileSync(path, data);
    const pieces: Buffer[] = [];
    let opened = -1;
    const end = await streamFile(
      path,
      64 * 1024,
      (size) => (opened = size),
      (p) => void pieces.push(Buffer.from(p)),
    );
    expect(opened).toBe(data.length);
    expect(pieces.every((p) => p.length <= 64 * 1024)).toBe(true);
    const got = decodePieces(pieces);
    expect(got.content.equals(data)).toBe(true);
    expect(got.hash).toBe(contentHash(data));
    expect(end).toMatchObject({ hash: contentHash(data), sent: data.length });
    expect(end.whole).toBe(computeSignature(data).whole);
  });

  it('ends a file that shrinks under the read where the reads ended, self-consistently', async () => {
    const path = join(await tempDir(), 'f.bin');
    writeFileSync(path, randomBytes(300_000));
    const pieces: Buffer[] = [];
    const end = await streamFile(
      path,
      64 * 1024,
      () => undefined,
      (p) => {
        pieces.push(Buffer.from(p));
        if (pieces.length === 1) truncateSync(path, 100_000);
      },
    );
    const got = decodePieces(pieces);
    expect(got.content.length).toBe(100_000);
    expect(got.content.equals(readFileSync(path))).toBe(true);
    expect(end).toMatchObject({ hash: contentHash(got.content), sent: 100_000 });
  });

  it("signs a file's first bytes only while they still hash as they were sent", async () => {
    const path = join(await tempDir(), 'f.bin');
    const data = randomBytes(300_000);
    writeFileSync(path, data);
    appendFileSync(path, randomBytes(5000)); // appended since: the sent part is intact
    const signed = signFilePrefix(path, data.length, contentHash(data));
    expect(signed?.signature).toEqual(computeSignature(data));
    expect(signed?.state.digest()).toBe(contentHash(data));
    const fd = openSync(path, 'r+');
    writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, 1000); // changed in place since
    closeSync(fd);
    expect(signFilePrefix(path, data.length, contentHash(data))).toBeNull();
    expect(signFilePrefix(path, 400_000, contentHash(data))).toBeNull(); // shorter than claimed
  });
});
