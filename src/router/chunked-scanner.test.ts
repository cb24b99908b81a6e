import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ChunkedScanner } from './chunked-scanner.js';

const body = Buffer.from(
  '4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n',
);

describe('ChunkedScanner', () => {
  it('finds the end of a chunked body with extensions and trailers, and not before it', () => {
    const s = new ChunkedScanner();
    expect(s.scan(Buffer.concat([body, Buffer.from('NEXT')]))).toBe(body.length);
    expect(s.done).toBe(true);
    expect(new ChunkedScanner().scan(body.subarray(0, body.length - 1))).toBe(-1);
  });

  it('gives the same answer however the bytes are split', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 6 }), (cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const s = new ChunkedScanner();
        let prev = 0;
        let end = -1;
        for (const p of [...points, body.length]) {
          const r = s.scan(body.subarray(prev, p));
          if (r >= 0) end = prev + r;
          prev = p;
        }
        expect(end).toBe(body.length);
      }),
    );
  });

  it('flags malformed framing', () => {
    const s = new ChunkedScanner();
    expect(s.scan(Buffer.from('zz\r\n'))).toBe(-1);
    expect(s.error).toBe(true);
    const t = new ChunkedScanner();
    t.scan(Buffer.from('2\r\nabX'));
    expect(t.error).toBe(true);
  });
});
