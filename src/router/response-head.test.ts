import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ResponseOracle } from '../../test/lib/llhttp-oracle.js';
import { ChunkedScanner } from './chunked-scanner.js';
import { parseResponseHead } from './response-head.js';

describe('parseResponseHead', () => {
  it('frames a response by Content-Length, chunked, or until close, and removes hop-by-hop fields', () => {
    const p = parseResponseHead(
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5',
      false,
      false,
    );
    expect(p?.mode).toBe('length');
    expect(p?.length).toBe(5);
    expect(p?.head.toString()).toBe('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked', false, false)?.mode).toBe(
      'chunked',
    );
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip', false, false)?.mode).toBe('close');
  });

  it.each([
    [
      'Content-Length and Transfer-Encoding together',
      'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked',
    ],
    [
      'Transfer-Encoding and Content-Length together',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3',
    ],
    ['a repeated Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3'],
    ['a control byte in a field value', 'HTTP/1.1 200 OK\r\nX: a\x01b\r\nContent-Length: 1'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 1'],
    ['a bare LF', 'HTTP/1.1 200 OK\nContent-Length: 1'],
    ['whitespace before a colon', 'HTTP/1.1 200 OK\r\nContent-Length : 1'],
    [
      '`chunked` followed by a tab (llhttp does not read it as chunked)',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t',
    ],
    ['Transfer-Encoding in HTTP/1.0', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked'],
    ['an unknown version', 'HTTP/1.2 200 OK\r\nContent-Length: 1'],
  ])('refuses %s', (_why, head) => {
    expect(parseResponseHead(head, false, false)).toBeUndefined();
  });
});

// --- Differential: the fast path's response framing against llhttp's -------------------------------

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);
const usually = <T>(value: T, others: readonly T[]): fc.Arbitrary<T> =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(value) }, { weight: 1, arbitrary: pick(others) });

const fieldArb: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(
    pick(['Content-Length', 'content-length']),
    pick(['0', '3', '5', '03', '+3', '-1', '3 ', '3, 3', '', '99999999999999999999', 'x']),
  ),
  fc.tuple(
    pick(['Transfer-Encoding', 'transfer-encoding']),
    pick([
      'chunked',
      'CHUNKED',
      'gzip, chunked',
      'chunked, gzip',
      'gzip',
      'chunked\t',
      'chunked ',
      'chunked,',
      'identity',
    ]),
  ),
  fc.tuple(pick(['Connection']), pick(['close', 'keep-alive', 'Upgrade', 'close, keep-alive'])),
  fc.tuple(
    pick(['Keep-Alive', 'Proxy-Connection', 'Content-Type', 'Set-Cookie']),
    pick(['timeout=5', 'text/plain', 'a=b']),
  ),
  fc.tuple(fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}$/), fc.stringMatching(/^[\x20-\x7e]{0,12}$/)),
);

const responseArb = fc
  .record({
    status: usually('HTTP/1.1 200 OK', [
      'HTTP/1.1 200',
      'HTTP/1.1 200 ',
      'HTTP/1.0 200 OK',
      'HTTP/1.1 204 No Content',
      'HTTP/1.1 304 Not Modified',
      'HTTP/1.1 404 Not Found',
      'HTTP/1.1 099 X',
      'HTTP/1.1 600 X',
      'HTTP/2.0 200 OK',
      'HTTP/1.1  200 OK',
      'HTTP/1.1 200 O\x01K',
      'HTTP/1.1 20 OK',
      'http/1.1 200 OK',
    ]),
    lines: fc.array(
      fc.record({
        field: fieldArb,
        sep: usually(': ', [':', ' : ', ':\t', ' :']),
        eol: usually('\r\n', ['\n', '\r', '\r\r\n', '\r\n ']),
      }),
      { maxLength: 4 },
    ),
    body: fc.oneof(
      pick([
        '3\r\nabc\r\n0\r\n\r\n',
        '5\r\nhello\r\n0\r\nX: y\r\n\r\n',
        '0\r\n\r\n',
        'abc',
        'hello world',
        '',
      ]),
      fc.string({ maxLength: 20 }),
    ),
    inserts: fc.array(
      fc.tuple(fc.nat(), fc.oneof(pick([0, 1, 9, 10, 13, 32, 0x7f, 0x80]), fc.integer({ min: 0, max: 255 }))),
      {
        maxLength: 1,
      },
    ),
  })
  .map((r) => {
    let s = `${r.status}\r\n`;
    for (const l of r.lines) s += `${l.field[0]}${l.sep}${l.field[1]}${l.eol}`;
    s += '\r\n';
    for (const [at, byte] of r.inserts) {
      const k = at % (s.length + 1);
      s = s.slice(0, k) + String.fromCharCode(byte) + s.slice(k);
    }
    return Buffer.from(s + r.body, 'latin1');
  });

/** Field lines of a parsed head, as lower-case `name: value` strings. */
function fields(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2)
    out.push(`${(raw[i] as string).toLowerCase()}: ${raw[i + 1] as string}`);
  return out;
}

/**
 * What the fast path does with `response`: the bytes it sends the client and the backend's message as
 * it framed it (`message`), or why it sends nothing.
 */
function forwarded(
  response: Buffer,
): { out: Buffer; message: Buffer; untilClose: boolean } | 'refused' | 'incomplete' {
  const end = response.indexOf('\r\n\r\n');
  if (end < 0) return 'incomplete';
  const p = parseResponseHead(response.toString('latin1', 0, end), false, false);
  if (p === undefined) return 'refused';
  if (p.informational) return 'incomplete';
  const rest = response.subarray(end + 4);
  let bodyEnd: number;
  switch (p.mode) {
    case 'none':
      bodyEnd = 0;
      break;
    case 'length':
      if (rest.length < p.length) return 'incomplete';
      bodyEnd = p.length;
      break;
    case 'close':
      bodyEnd = rest.length;
      break;
    case 'chunked': {
      const sc = new ChunkedScanner();
      bodyEnd = sc.scan(rest);
      if (sc.error) return 'refused';
      if (bodyEnd < 0) return 'incomplete';
    }
  }
  return {
    out: Buffer.concat([p.head, rest.subarray(0, bodyEnd)]),
    message: response.subarray(0, end + 4 + bodyEnd),
    untilClose: p.mode === 'close',
  };
}

describe('response framing against llhttp (differential)', { timeout: 20_000 }, () => {
  let oracle: ResponseOracle;
  beforeAll(async () => {
    oracle = await ResponseOracle.start();
  });
  afterAll(() => oracle.close());

  it('sends the client only what llhttp reads as the same message the backend sent', async () => {
    const counts = { forwarded: 0, refused: 0, incomplete: 0 };
    await fc.assert(
      fc.asyncProperty(responseArb, async (response) => {
        const out = forwarded(response);
        if (typeof out === 'string') {
          counts[out]++;
          return;
        }
        counts.forwarded++;
        // The backend's message as the fast path framed it, then a stray byte: llhttp must end the message
        // exactly there (and refuse the byte), unless the message is read until the connection closes.
        const sent = await oracle.parse(
          out.untilClose ? out.message : Buffer.concat([out.message, Buffer.from([0])]),
        );
        const seen = await oracle.parse(out.out);
        expect(sent.error).toBeUndefined();
        expect(sent.complete).toBe(true);
        expect(sent.trailing).toBe(!out.untilClose);
        expect(seen.error).toBeUndefined();
        expect(seen.complete).toBe(true);
        expect(seen.status).toBe(sent.status);
        expect(seen.body.toString('latin1')).toBe(sent.body.toString('latin1'));
        const original = new Set(fields(sent.rawHeaders));
        for (const f of fields(seen.rawHeaders))
          if (!f.startsWith('connection:')) expect(original).toContain(f);
      }),
      { numRuns: 600, interruptAfterTimeLimit: 10_000 },
    );
    expect(counts.forwarded).toBeGreaterThan(20);
    expect(counts.refused).toBeGreaterThan(20);
  });
});
