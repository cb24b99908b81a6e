import { describe, expect, it } from 'vitest';
import {
  downstreamResponseHeaders,
  headBytes,
  sentBytes,
  headersAsForwarded,
  shadowHost,
  upstreamRequestHeaders,
} from './proxy-headers.js';

describe('upstreamRequestHeaders', () => {
  it('strips hop-by-hop headers and those named by Connection, keeps the rest in order', () => {
    const up = upstreamRequestHeaders(
      [
        'Host',
        'svc:80',
        'Connection',
        'keep-alive, X-Secret',
        'X-Secret',
        's',
        'TE',
        'trailers',
        'Transfer-Encoding',
        'chunked',
        'Expect',
        '100-continue',
        'Accept',
        '*/*',
      ],
      '10.1.1.1',
      'http',
    );
    expect(up.headers).toEqual([
      'Host',
      'svc:80',
      'Accept',
      '*/*',
      'x-forwarded-for',
      '10.1.1.1',
      'x-forwarded-proto',
      'http',
      'x-forwarded-host',
      'svc:80',
    ]);
    expect(up.hostIndex).toBe(1);
    expect(up.chunked).toBe(true);
    expect(up.contentLength).toBe(-1);
  });

  it('appends the client address to an existing X-Forwarded-For and replaces client-sent proto and host', () => {
    const up = upstreamRequestHeaders(
      [
        'x-forwarded-for',
        '1.1.1.1',
        'X-Forwarded-For',
        '2.2.2.2',
        'X-Forwarded-Proto',
        'https',
        'Content-Length',
        '12',
      ],
      '3.3.3.3',
      'http',
    );
    expect(up.headers).toEqual([
      'Content-Length',
      '12',
      'x-forwarded-for',
      '1.1.1.1, 2.2.2.2, 3.3.3.3',
      'x-forwarded-proto',
      'http',
    ]);
    expect(up.contentLength).toBe(12);
    expect(up.hostIndex).toBe(-1);
  });
});

describe("upstreamRequestHeaders: what a client cannot do to the router's headers", () => {
  it("keeps the router's forwarding headers when the client names them in Connection", () => {
    const up = upstreamRequestHeaders(
      [
        'Host',
        'svc',
        'Connection',
        'close, X-Forwarded-For, x-forwarded-proto, X-Forwarded-Host, Host, X-Drop',
        'X-Forwarded-For',
        '6.6.6.6',
        'X-Drop',
        '1',
      ],
      '10.0.0.1',
      'http',
    );
    expect(up.headers).toEqual([
      'Host',
      'svc',
      'x-forwarded-for',
      '10.0.0.1',
      'x-forwarded-proto',
      'http',
      'x-forwarded-host',
      'svc',
    ]);
    expect(up.hostIndex).toBe(1);
  });

  it('strips every x-understudy-* header the client sent, whatever its case or length', () => {
    const up = upstreamRequestHeaders(
      [
        'X-Understudy-Epoch',
        '99',
        'x-understudy-seq',
        '1',
        'x-understudy-replay',
        '1',
        'X-UNDERSTUDY-SOMETHING-WITH-A-LONG-NAME',
        'z',
        'x-understudyish',
        'kept',
      ],
      '10.0.0.1',
      'http',
    );
    expect(up.headers).toEqual([
      'x-understudyish',
      'kept',
      'x-forwarded-for',
      '10.0.0.1',
      'x-forwarded-proto',
      'http',
    ]);
  });

  it('replaces Host with the authority of an absolute-form target, and counts Host headers', () => {
    const up = upstreamRequestHeaders(['Host', 'other', 'Accept', '*/*'], '10.0.0.1', 'http', 'svc:80');
    expect(up.headers).toEqual([
      'Host',
      'svc:80',
      'Accept',
      '*/*',
      'x-forwarded-for',
      '10.0.0.1',
      'x-forwarded-proto',
      'http',
      'x-forwarded-host',
      'svc:80',
    ]);
    expect([up.host, up.hostIndex, up.hostCount]).toEqual(['svc:80', 1, 1]);
    expect(upstreamRequestHeaders(['host', 'a', 'Host', 'b'], '', 'http').hostCount).toBe(2);
  });
});

describe('method overrides and what the interceptor sees', () => {
  it('reports method overrides the backend receives, not one the client named in Connection', () => {
    const raw = ['X-HTTP-Method-Override', 'put', 'x-method-override', 'DELETE, patch'];
    expect(upstreamRequestHeaders(raw, '', 'http').methodOverrides).toEqual(['PUT', 'DELETE', 'PATCH']);
    const dropped = upstreamRequestHeaders([...raw, 'Connection', 'x-http-method-override'], '', 'http');
    expect(dropped.methodOverrides).toEqual(['DELETE', 'PATCH']);
    expect([...(dropped.dropped ?? [])]).toEqual(['x-http-method-override']);
  });

  it('gives the interceptor the headers as forwarded: Connection-named ones removed, Host from the authority', () => {
    const h = { host: 'a', 'x-http-method-override': 'PUT', 'x-request-id': 'r', 'x-understudy-epoch': '9' };
    expect(headersAsForwarded(h, undefined, { dropped: undefined, strippedInternal: false })).toBe(h);
    const up = { dropped: new Set(['x-http-method-override']), strippedInternal: true };
    expect(headersAsForwarded(h, 'svc:80', up)).toEqual({ host: 'svc:80', 'x-request-id': 'r' });
    expect(h['x-http-method-override']).toBe('PUT');
  });
});

describe('downstreamResponseHeaders', () => {
  it('drops hop-by-hop response headers and keeps repeated ones like Set-Cookie', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Transfer-Encoding',
      'chunked',
      'Keep-Alive',
      'timeout=5',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Connection',
      'X-Internal',
      'X-Internal',
      '1',
    ].map((s) => Buffer.from(s));
    expect(downstreamResponseHeaders(raw)).toEqual([
      'Content-Type',
      'text/plain',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
    ]);
  });
});

describe('shadowHost', () => {
  it('suffixes the host name with -shadow before any port, like Envoy', () => {
    expect(shadowHost('api.example.com')).toBe('api.example.com-shadow');
    expect(shadowHost('127.0.0.1:8080')).toBe('127.0.0.1-shadow:8080');
    expect(shadowHost('')).toBe('shadow');
  });
});

describe('head and body byte counts (the per-backend byte counters)', () => {
  it('counts `name: value\\r\\n` per header and the closing blank line, as on the wire', () => {
    const flat = ['host', 'a.example', 'x-n', '1'];
    expect(headBytes(flat)).toBe(Buffer.byteLength('host: a.example\r\nx-n: 1\r\n\r\n'));
    expect(headBytes([Buffer.from('content-length'), Buffer.from('5')])).toBe(
      'content-length: 5\r\n\r\n'.length,
    );
  });

  it('counts a body chunk as undici reports it: a buffer, a string (UTF-8 bytes) or a size', () => {
    expect(sentBytes(Buffer.alloc(10))).toBe(10);
    expect(sentBytes('é')).toBe(2);
    expect(sentBytes(7)).toBe(7);
    expect(sentBytes(undefined)).toBe(0);
  });
});
