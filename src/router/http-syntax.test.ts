import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RequestOracle } from '../../test/lib/llhttp-oracle.js';
import { skipEmptyLines, stepRequestHead, type HeadStep } from './fast-request-head.js';
import { checkRequestHead, endsInChunked } from './http-syntax.js';
import { normaliseOriginForm } from './request-target.js';

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
const MARKER = 'GET /marker HTTP/1.1\r\nHost: m\r\n\r\n';

function step(s: string): HeadStep {
  return stepRequestHead(skipEmptyLines(Buffer.from(s, 'latin1')), '10.0.0.1', true, MUTATING);
}

describe('checkRequestHead', () => {
  it('accepts a plain request head and reports its framing', () => {
    const head = 'POST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length:  12 \r\n\r\n';
    expect(checkRequestHead(Buffer.from(head), head.length)).toEqual({
      end: head.length,
      http10: false,
      hosts: 1,
      contentLength: 12,
      chunked: false,
    });
  });

  it.each([
    ['a control byte in a field value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n'],
    ['DEL in a field value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x7fb\r\n\r\n'],
    ['NUL in a field value', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n'],
    ['a bare LF', 'GET / HTTP/1.1\nHost: x\r\n\r\n'],
    ['a bare CR', 'GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n'],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
    ['no Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n'],
    [
      'a repeated Content-Length',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n',
    ],
    ['a signed Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n'],
    ['a list as Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\n'],
    ['a huge Content-Length', 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n'],
    [
      'Content-Length with Transfer-Encoding',
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n',
    ],
    [
      'Transfer-Encoding not ending in chunked',
      'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
    ],
    ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['a method that is not a token', 'G@T / HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['a field name that is not a token', 'GET / HTTP/1.1\r\nHost: x\r\nX(y): 1\r\n\r\n'],
    ['whitespace before a colon', 'GET / HTTP/1.1\r\nHost: x\r\nX : 1\r\n\r\n'],
    ['an unknown HTTP version', 'GET / HTTP/1.2\r\nHost: x\r\n\r\n'],
    ['HTTP/2.0 in an HTTP/1 request line', 'GET / HTTP/2.0\r\nHost: x\r\n\r\n'],
    ['a space after the version', 'GET / HTTP/1.1 \r\nHost: x\r\n\r\n'],
    ['a non-ASCII byte in the target', 'GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n'],
  ])('refuses %s', (_why, head) => {
    const r = checkRequestHead(Buffer.from(head, 'latin1'), head.length);
    expect(r).toHaveProperty('error');
  });

  it('refuses a malformed head as soon as the bad byte arrives, before the head ends', () => {
    const partial = 'GET / HTTP/1.1\nHost: x';
    expect(checkRequestHead(Buffer.from(partial), partial.length)).toHaveProperty('error');
    const fine = 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaa';
    expect(checkRequestHead(Buffer.from(fine), fine.length)).toBeUndefined();
  });

  it('reads Transfer-Encoding lists as llhttp does', () => {
    expect(endsInChunked('chunked')).toBe(true);
    expect(endsInChunked('gzip, CHUNKED')).toBe(true);
    expect(endsInChunked('chunked, gzip')).toBe(false);
    expect(endsInChunked('chunked, chunked')).toBe(false);
    expect(endsInChunked('chunked\t')).toBe(false);
    expect(endsInChunked('')).toBe(false);
  });
});

// --- Differential: the fast path against llhttp ----------------------------------------------------

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);

const fieldArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(pick(['Host', 'host', 'HOST']), pick(['a', 'b:80', '', 'a b', '[::1]:8'])),
  fc.tuple(
    pick(['Content-Length', 'content-length']),
    pick([
      '0',
      '1',
      '00',
      '+1',
      '-1',
      '0x1',
      '1 ',
      ' 1',
      '1\t',
      '99999999999999999999',
      '1,1',
      '1, 1',
      '',
      'a',
    ]),
  ),
  fc.tuple(
    pick(['Transfer-Encoding', 'transfer-encoding']),
    pick([
      'chunked',
      'CHUNKED',
      'chunked, gzip',
      'gzip, chunked',
      'chunked ',
      'chunked\t',
      ' chunked',
      'identity',
      'chunked,chunked',
      '',
      'gzip,chunked',
    ]),
  ),
  fc.tuple(pick(['Connection']), pick(['close', 'keep-alive', 'Upgrade', 'close, x-y', 'CLOSE', ''])),
  fc.tuple(
    pick(['X-Forwarded-For', 'Expect', 'Upgrade', 'TE', 'Keep-Alive']),
    pick(['1.2.3.4', '100-continue', 'h2c', 'trailers']),
  ),
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}$/), fc.stringMatching(/^[\x20-\x7e]{0,16}$/)),
);

/** One header line before mutation: name, separator, value, line ending. */
const lineArb = fc.record({
  field: fieldArb,
  sep: fc.oneof(
    { weight: 6, arbitrary: fc.constant(': ') },
    { weight: 1, arbitrary: pick([':', ' : ', ':\t', ' :', ':  ']) },
  ),
  eol: fc.oneof(
    { weight: 12, arbitrary: fc.constant('\r\n') },
    { weight: 1, arbitrary: pick(['\n', '\r', '\r\r\n', '\n\r', '\r\n ']) },
  ),
});

const requestArb = fc
  .record({
    lead: fc.oneof(
      { weight: 8, arbitrary: fc.constant('') },
      { weight: 1, arbitrary: pick(['\r\n', '\r\n\r\n', '\n']) },
    ),
    method: fc.oneof(
      { weight: 6, arbitrary: pick(['GET', 'HEAD']) },
      { weight: 1, arbitrary: pick(['POST', 'get', 'G ET', 'GE\x01T', 'OPTIONS', 'FOO']) },
    ),
    target: fc.oneof(
      { weight: 4, arbitrary: pick(['/', '/a?b=c', '/a/../b', '//x']) },
      { weight: 1, arbitrary: pick(['*', 'http://x/y', '/a b', '/\x7f', '/\x80', '/%00', '']) },
    ),
    version: fc.oneof(
      { weight: 6, arbitrary: fc.constant('HTTP/1.1') },
      {
        weight: 1,
        arbitrary: pick([
          'HTTP/1.0',
          'HTTP/1.2',
          'HTTP/2.0',
          'HTTP/1.1 ',
          'http/1.1',
          'HTTP/1.10',
          'HTTP/0.9',
        ]),
      },
    ),
    gap: fc.oneof({ weight: 8, arbitrary: fc.constant(' ') }, { weight: 1, arbitrary: pick(['  ', '\t']) }),
    lines: fc.array(lineArb, { maxLength: 5 }),
    withHost: fc.boolean(),
    // A clean request keeps its fields but loses every syntax mutation: most such requests are proxied.
    clean: fc.boolean(),
    tail: fc.oneof(
      { weight: 10, arbitrary: fc.constant('\r\n') },
      { weight: 1, arbitrary: pick(['\n', '\r\r\n', '']) },
    ),
    // Bytes inserted anywhere: the ones parsers disagree on most often, or any byte.
    inserts: fc.array(
      fc.tuple(
        fc.nat(),
        fc.oneof(
          pick([0x00, 0x01, 0x08, 0x0b, 0x0c, 0x1f, 0x7f, 0x09, 0x0a, 0x0d, 0x20, 0x80, 0xff, 0x3a]),
          fc.integer({ min: 0, max: 255 }),
        ),
      ),
      { maxLength: 2 },
    ),
  })
  .map((r) => {
    const lines = r.withHost
      ? [{ field: ['Host', 'x'] as [string, string], sep: ': ', eol: '\r\n' }, ...r.lines]
      : r.lines;
    if (r.clean) {
      const fields = lines.filter((l) => !/^(content-length|transfer-encoding|host)$/i.test(l.field[0]));
      let s = `GET ${r.target.startsWith('/') ? r.target.replace(/[^\x21-\x7e]/g, '') : '/'} HTTP/1.1\r\nHost: x\r\n`;
      for (const l of fields) s += `${l.field[0]}: ${l.field[1]}\r\n`;
      // Half the clean requests get one of the inserted bytes, within the head (not in its final CRLF).
      const insert = r.withHost ? r.inserts[0] : undefined;
      if (insert !== undefined) {
        const k = insert[0] % (s.length - 1);
        s = s.slice(0, k) + String.fromCharCode(insert[1]) + s.slice(k);
      }
      return `${s}\r\n`;
    }
    let s = `${r.lead}${r.method}${r.gap}${r.target}${r.gap}${r.version}\r\n`;
    for (const l of lines) s += `${l.field[0]}${l.sep}${l.field[1]}${l.eol}`;
    s += r.tail;
    for (const [at, byte] of r.inserts) {
      const k = at % (s.length + 1);
      s = s.slice(0, k) + String.fromCharCode(byte) + s.slice(k);
    }
    return s;
  });

/** Field lines of a head llhttp parsed, as lower-case `name: value` strings. */
function fields(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    out.push(`${(raw[i] as string).toLowerCase()}: ${raw[i + 1] as string}`);
  return out;
}

describe('the fast path against llhttp (differential)', { timeout: 20_000 }, () => {
  let oracle: RequestOracle;
  beforeAll(async () => {
    oracle = await RequestOracle.start();
  });
  afterAll(() => oracle.close());

  it('forwards only what llhttp frames the same way, waits only on what llhttp accepts so far, and refuses the rest', async () => {
    const counts = { fast: 0, refuse: 0, handoff: 0, wait: 0 };
    await fc.assert(
      fc.asyncProperty(requestArb, async (text) => {
        const input = Buffer.from(text, 'latin1');
        const lead = input.length - skipEmptyLines(input).length;
        const s = step(text);
        counts[s.kind]++;
        if (s.kind === 'fast') {
          // Framing: llhttp ends this request exactly where the fast path does (the marker request follows;
          // after `Connection: close` both read nothing more).
          const marker = s.req.closeAfter ? '' : MARKER;
          const cut = Buffer.concat([input.subarray(0, lead + s.end), Buffer.from(marker)]);
          const got = await oracle.parse(cut);
          expect(got.error).toBeUndefined();
          // The fast path forwards the normalised form of the target llhttp read (request-target.ts).
          const urls = got.requests.map((r) => normaliseOriginForm(r.url));
          expect(urls).toEqual(marker ? [s.req.target, '/marker'] : [s.req.target]);
          const first = got.requests[0] as (typeof got.requests)[number];
          expect(first.method).toBe(s.req.method);
          expect(first.body.length).toBe(0);
          expect(first.complete).toBe(true);
          // What goes upstream is read by llhttp as the same request, with no field the client did not send.
          const up = await oracle.parse(s.req.head);
          expect(up.error).toBeUndefined();
          expect(up.requests.map((r) => `${r.method} ${r.url}`)).toEqual([`${s.req.method} ${s.req.target}`]);
          const sent = new Set(fields(first.rawHeaders));
          const forwarded = fields((up.requests[0] as (typeof up.requests)[number]).rawHeaders);
          for (const f of forwarded) if (!f.startsWith('x-forwarded-')) expect(sent).toContain(f);
        } else if (s.kind === 'wait') {
          // A head the fast path keeps waiting for is one llhttp has not refused either.
          const got = await oracle.parse(input);
          expect(got.requests.filter((r) => r.complete)).toEqual([]);
          expect([undefined, 'HPE_INVALID_EOF_STATE']).toContain(got.error);
        }
      }),
      { numRuns: 1000, interruptAfterTimeLimit: 10_000 },
    );
    // The generator reaches every outcome (a property over one kind of input would prove little).
    expect(counts.fast).toBeGreaterThan(10);
    expect(counts.refuse).toBeGreaterThan(10);
    expect(counts.handoff + counts.wait).toBeGreaterThan(0);
  });
});
