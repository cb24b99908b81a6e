import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestOracle } from '../../test/lib/llhttp-oracle.js';
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

// --- Differential: the scanner against llhttp's chunked decoder -------------------------------------

const PREFIX = 'POST /chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
const MARKER = 'GET /marker HTTP/1.1\r\nHost: m\r\n\r\n';
const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);
const usually = <T>(value: T, others: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(value) }, { weight: 1, arbitrary: pick(others) });

const EXTENSIONS = [
  ';a=b',
  ';a',
  ';a="b c"',
  ';a=b;c',
  ';a="\\"q\\""',
  '; a=b',
  ';a =b',
  ';a=b c',
  ';=b',
  ';a=\x01',
  ';a="x\x7f"',
  ' ;a',
  '\t',
  ' ',
  ';a=""',
  ';a="b',
];
const CRLFS = ['\n', '\r', '\r\r\n', '', '\n\r'];

const chunkArb = fc.record({
  data: fc.string({ maxLength: 12 }),
  hex: fc.oneof(
    { weight: 6, arbitrary: fc.constant('lower') },
    {
      weight: 1,
      arbitrary: pick(['upper', 'zeros', 'plus1', 'minus1', '0x', 'space', 'many-zeros', 'empty']),
    },
  ),
  ext: usually('', EXTENSIONS),
  sizeEol: usually('\r\n', CRLFS),
  dataEol: usually('\r\n', CRLFS),
});

const bodyArb = fc
  .record({
    chunks: fc.array(chunkArb, { maxLength: 4 }),
    lastExt: usually('', EXTENSIONS),
    lastEol: usually('\r\n', CRLFS),
    trailers: fc.array(
      usually('X-T: v', ['X-T : v', ' folded', 'X-T: \x01', 'X-T:v', 'X-T: a\tb', ': v', 'X-T']),
      { maxLength: 2 },
    ),
    trailerEol: usually('\r\n', CRLFS),
    end: usually('\r\n', CRLFS),
    inserts: fc.array(
      fc.tuple(
        fc.nat(),
        fc.oneof(pick([0, 9, 10, 13, 32, 59, 0x7f, 0x80]), fc.integer({ min: 0, max: 255 })),
      ),
      { maxLength: 1 },
    ),
  })
  .map((r) => {
    let s = '';
    for (const c of r.chunks) {
      const n = Buffer.byteLength(c.data, 'latin1');
      const size =
        c.hex === 'upper'
          ? n.toString(16).toUpperCase()
          : c.hex === 'zeros'
            ? `00${n.toString(16)}`
            : c.hex === 'plus1'
              ? (n + 1).toString(16)
              : c.hex === 'minus1'
                ? Math.max(0, n - 1).toString(16)
                : c.hex === '0x'
                  ? `0x${n.toString(16)}`
                  : c.hex === 'space'
                    ? ` ${n.toString(16)}`
                    : c.hex === 'many-zeros'
                      ? `0000000000000${n.toString(16)}`
                      : c.hex === 'empty'
                        ? ''
                        : n.toString(16);
      s += `${size}${c.ext}${c.sizeEol}${c.data}${c.dataEol}`;
    }
    s += `0${r.lastExt}${r.lastEol}`;
    for (const t of r.trailers) s += `${t}${r.trailerEol}`;
    s += r.end;
    for (const [at, byte] of r.inserts) {
      const k = at % (s.length + 1);
      s = s.slice(0, k) + String.fromCharCode(byte) + s.slice(k);
    }
    return Buffer.from(s, 'latin1');
  });

describe('ChunkedScanner against llhttp (differential)', { timeout: 20_000 }, () => {
  let oracle: RequestOracle;
  beforeAll(async () => {
    oracle = await RequestOracle.start();
  });
  afterAll(() => oracle.close());

  it('ends a body exactly where llhttp does, and never waits on a body llhttp refuses', async () => {
    const counts = { done: 0, error: 0, incomplete: 0 };
    await fc.assert(
      fc.asyncProperty(bodyArb, fc.nat(), async (body, cut) => {
        const s = new ChunkedScanner();
        const end = s.scan(body);
        // However the bytes are split, the answer is the same.
        const k = body.length === 0 ? 0 : cut % body.length;
        const t = new ChunkedScanner();
        const first = t.scan(body.subarray(0, k));
        const second = first >= 0 ? first : t.scan(body.subarray(k));
        expect({ end: first >= 0 ? first : second >= 0 ? k + second : -1, error: t.error }).toEqual({
          end,
          error: s.error,
        });
        if (end >= 0) {
          counts.done++;
          // llhttp ends the message at the same byte: the marker request right after it parses.
          const got = await oracle.parse(
            Buffer.concat([Buffer.from(PREFIX), body.subarray(0, end), Buffer.from(MARKER)]),
          );
          expect(got.error).toBeUndefined();
          expect(got.requests.map((r) => [r.url, r.complete])).toEqual([
            ['/chunked', true],
            ['/marker', true],
          ]);
        } else if (s.error) {
          counts.error++;
        } else {
          counts.incomplete++;
          // Still waiting: llhttp has not finished the body, nor refused it before the connection ended.
          const got = await oracle.parse(Buffer.concat([Buffer.from(PREFIX), body]));
          expect(got.requests.filter((r) => r.complete)).toEqual([]);
          expect([undefined, 'HPE_INVALID_EOF_STATE']).toContain(got.error);
        }
      }),
      { numRuns: 1000, interruptAfterTimeLimit: 10_000 },
    );
    expect(counts.done).toBeGreaterThan(20);
    expect(counts.error).toBeGreaterThan(20);
  });
});
