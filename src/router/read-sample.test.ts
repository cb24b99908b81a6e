import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { headFields, ReadSample, SAMPLED_HEADERS } from './read-sample.js';

/** Offers a read the way the router does: only when the sample wants it. */
function offer(s: ReadSample, method: string, path: string, headers: string[] = []): void {
  if (s.wants(method)) s.add(method, path, headers);
}

describe('ReadSample', () => {
  it('keeps reads only: GET and HEAD, never a write', () => {
    const s = new ReadSample();
    for (const m of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) offer(s, m, `/x/${m}`);
    s.add('POST', '/added-anyway', []);
    expect(s.reads().map((r) => `${r.method} ${r.path}`)).toEqual(['GET /x/GET', 'HEAD /x/HEAD']);
  });

  it('never keeps credentials nor forwarding headers, only the headers that select a representation', () => {
    const s = new ReadSample();
    s.add('GET', '/item/k1', [
      'Host',
      'api.example',
      'Authorization',
      'Bearer secret-token',
      'Cookie',
      'session=secret-cookie',
      'Proxy-Authorization',
      'Basic c2VjcmV0',
      'X-Api-Key',
      'secret-key',
      'x-forwarded-for',
      '203.0.113.9',
      'Accept',
      'application/json',
      'Accept-Encoding',
      'gzip',
    ]);
    const [read] = s.reads();
    expect(read?.headers).toEqual([
      'host',
      'api.example',
      'accept',
      'application/json',
      'accept-encoding',
      'gzip',
    ]);
    expect(JSON.stringify(s.reads())).not.toMatch(/secret|203\.0\.113/);
  });

  it('keeps the most recent maxReads reads, oldest first', () => {
    const s = new ReadSample({ maxReads: 3, stride: 1 });
    for (let i = 0; i < 10; i++) offer(s, 'GET', `/r${i}`);
    expect(s.reads().map((r) => r.path)).toEqual(['/r7', '/r8', '/r9']);
  });

  it('once full, keeps one read in `stride`', () => {
    const s = new ReadSample({ maxReads: 2, stride: 3 });
    for (let i = 0; i < 8; i++) offer(s, 'GET', `/r${i}`);
    // /r0 and /r1 fill it; then /r4 and /r7 (every third of /r2…/r7) replace the oldest.
    expect(s.reads().map((r) => r.path)).toEqual(['/r4', '/r7']);
  });

  it('does not keep a read larger than maxReadBytes', () => {
    const s = new ReadSample({ maxReadBytes: 64 });
    offer(s, 'GET', `/${'a'.repeat(100)}`);
    offer(s, 'GET', '/small', ['user-agent', 'u'.repeat(100)]);
    offer(s, 'GET', '/ok');
    expect(s.reads().map((r) => r.path)).toEqual(['/ok']);
    expect(s.tooLarge).toBe(2);
  });

  it('stays within its byte bound by dropping the oldest reads', () => {
    const s = new ReadSample({ maxReads: 100, maxBytes: 50, stride: 1 });
    for (let i = 0; i < 10; i++) offer(s, 'GET', `/${String(i).repeat(19)}`); // 20 bytes each
    expect(s.bytes).toBeLessThanOrEqual(50);
    expect(s.reads().map((r) => r.path)).toEqual([`/${'8'.repeat(19)}`, `/${'9'.repeat(19)}`]);
  });

  it('whatever arrives, stays within both bounds, keeps reads in arrival order and no header outside the allow-list', () => {
    fc.assert(
      fc.property(
        fc.record({
          maxReads: fc.integer({ min: 1, max: 20 }),
          maxBytes: fc.integer({ min: 1, max: 400 }),
          stride: fc.integer({ min: 1, max: 4 }),
        }),
        fc.array(
          fc.record({
            method: fc.constantFrom('GET', 'HEAD', 'POST', 'DELETE'),
            len: fc.integer({ min: 1, max: 120 }),
            headers: fc.array(
              fc.tuple(
                fc.constantFrom('Host', 'Cookie', 'authorization', 'Accept', 'x-secret', 'User-Agent'),
                fc.string({ maxLength: 30 }),
              ),
              { maxLength: 4 },
            ),
          }),
          { maxLength: 80 },
        ),
        (opts, reqs) => {
          const s = new ReadSample({ ...opts, maxReadBytes: 200 });
          reqs.forEach((r, i) => offer(s, r.method, `/${i}`.padEnd(r.len, 'x'), r.headers.flat()));
          const kept = s.reads();
          expect(kept.length).toBeLessThanOrEqual(opts.maxReads);
          // One read may exceed maxBytes on its own (it is kept alone, as the most recent).
          if (kept.length > 1) expect(s.bytes).toBeLessThanOrEqual(opts.maxBytes);
          expect(s.bytes).toBe(kept.reduce((n, r) => n + r.bytes, 0));
          const order = kept.map((r) => Number(/^\/(\d+)/.exec(r.path)?.[1]));
          expect(order).toEqual([...order].sort((a, b) => a - b));
          for (const r of kept) {
            expect(['GET', 'HEAD']).toContain(r.method);
            for (let i = 0; i < r.headers.length; i += 2)
              expect(SAMPLED_HEADERS.has(r.headers[i] as string)).toBe(true);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses bounds that are not positive integers', () => {
    expect(() => new ReadSample({ maxReads: 0 })).toThrow(/readSample\.maxReads/);
    expect(() => new ReadSample({ stride: 1.5 })).toThrow(/readSample\.stride/);
  });
});

describe('headFields', () => {
  it('reads the header fields of a forwarded head', () => {
    const head = Buffer.from(
      'GET /item/k1 HTTP/1.1\r\nHost: api\r\nAccept: */*\r\nx-forwarded-for: 127.0.0.1\r\n\r\n',
      'latin1',
    );
    expect(headFields(head)).toEqual(['Host', 'api', 'Accept', '*/*', 'x-forwarded-for', '127.0.0.1']);
  });
});
