// The router parses as strictly as llhttp: a malformed request is answered 400 and never reaches a
// backend; a backend response framed two ways (Content-Length and Transfer-Encoding) never reaches
// the client.
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Router } from '../../src/router/index.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

/**
 * A raw TCP backend: records every byte it receives and answers each request head (CRLFCRLF) with
 * `answer` — or, by default, an empty 200.
 */
async function rawBackend(answer = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'): Promise<{
  port: number;
  received: () => string;
}> {
  let received = '';
  const server: Server = createServer((s) => {
    let pending = '';
    s.on('error', () => undefined);
    s.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      pending += d.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(end + 4);
        s.write(answer);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.emit('close');
      }),
  );
  return { port: (server.address() as AddressInfo).port, received: () => received };
}

async function routerTo(port: number, fastPath = true): Promise<Router> {
  const r = await Router.create({
    service: 'svc',
    fastPath,
    backends: [{ id: 'b', host: '127.0.0.1', port }],
    clientKeepAliveMs: 20_000,
  });
  cleanups.push(() => r.close());
  return r;
}

/** Writes `bytes` and returns what came back until the router closed the connection (or 8 s passed). */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.write(Buffer.from(bytes, 'latin1')));
    let out = '';
    const guard = setTimeout(() => {
      s.destroy();
      resolve(`${out}<no close>`);
    }, 8000);
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('close', () => {
      clearTimeout(guard);
      resolve(out);
    });
    s.on('error', () => undefined);
  });
}

const status = (raw: string): string => raw.slice(0, raw.indexOf('\r\n'));

describe('router request parsing', { timeout: 20_000 }, () => {
  it.each([
    ['a control byte in a header value', 'GET /a HTTP/1.1\r\nHost: x\r\nX-Evil: a\x01b\r\n\r\n'],
    ['a NUL in a header value', 'GET /a HTTP/1.1\r\nHost: x\r\nX-Evil: a\x00b\r\n\r\n'],
    ['a bare-LF request', 'GET /a HTTP/1.1\nHost: x\n\n'],
    ['a bare CR inside the head', 'GET /a HTTP/1.1\r\nHost: x\rX: y\r\n\r\n'],
    ['duplicate Host', 'GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n'],
    ['obs-fold', 'GET /a HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n'],
    ['whitespace before a colon', 'GET /a HTTP/1.1\r\nHost : x\r\n\r\n'],
    ['an invalid HTTP version', 'GET /a HTTP/1.7\r\nHost: x\r\n\r\n'],
    [
      'Content-Length with Transfer-Encoding',
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'a repeated Content-Length',
      'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx',
    ],
    ['a signed Content-Length', 'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\nx'],
    [
      'Transfer-Encoding not ending in chunked',
      'POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n',
    ],
  ])('answers 400 to %s, closes, and forwards nothing', async (_why, request) => {
    const b = await rawBackend();
    const r = await routerTo(b.port);
    const got = await exchange(r.address.port, request);
    expect(status(got)).toBe('HTTP/1.1 400 Bad Request');
    expect(got.endsWith('<no close>')).toBe(false);
    expect(b.received()).toBe('');
  });

  it('answers 400 to a duplicate Host on a connection the fast path handed to node:http', async () => {
    const b = await rawBackend();
    const r = await routerTo(b.port);
    const got = await exchange(
      r.address.port,
      'POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx' +
        'GET /second HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n',
    );
    expect(got.match(/HTTP\/1\.1 \d{3}/g)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 400']);
    expect(b.received()).toContain('POST /first');
    expect(b.received()).not.toContain('/second');
  });

  it('answers 400 to a duplicate Host with the fast path off (node:http accepts it)', async () => {
    const b = await rawBackend();
    const r = await routerTo(b.port, false);
    const got = await exchange(r.address.port, 'GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n');
    expect(status(got)).toBe('HTTP/1.1 400 Bad Request');
    expect(b.received()).toBe('');
  });

  it('still proxies well-formed requests after the empty lines a client may send before them', async () => {
    const b = await rawBackend();
    const r = await routerTo(b.port);
    const got = await exchange(
      r.address.port,
      '\r\nGET /a HTTP/1.1\r\nHost: x\r\nX-Tab: a\tb\r\nX-Latin: caf\xe9\r\nConnection: close\r\n\r\n',
    );
    expect(status(got)).toBe('HTTP/1.1 200 OK');
    expect(b.received()).toContain('X-Tab: a\tb\r\n');
    expect(r.stats().http?.fastPath).toBe(1);
  });
});

describe('router response framing', { timeout: 20_000 }, () => {
  it('never forwards a response with both Content-Length and Transfer-Encoding: the client gets 502', async () => {
    const b = await rawBackend(
      'HTTP/1.1 200 OK\r\nContent-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    const r = await routerTo(b.port);
    const got = await exchange(r.address.port, 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(status(got)).toBe('HTTP/1.1 502 Bad Gateway');
    expect(got).not.toMatch(/transfer-encoding/i);
    expect(got).toContain('UNDERSTUDY_ERR_ROUTER_UNAVAILABLE');
  });

  it('refuses (502) a response whose Transfer-Encoding llhttp and the fast path would frame differently', async () => {
    // "chunked" followed by a tab: llhttp reads the body until the connection closes, the old fast path
    // framed it as chunked (and kept both connections open). The router now refuses the ambiguous head.
    const b = await rawBackend('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\t\r\n\r\n0\r\n\r\n');
    const r = await routerTo(b.port);
    const got = await exchange(r.address.port, 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(status(got)).toBe('HTTP/1.1 502 Bad Gateway');
  });
});
