import { createHash } from 'node:crypto';
import { createServer, get, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Router } from './router.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

/**
 * 24 MiB — more than loopback socket buffers hold, so the router's writes to a stalled client queue —
 * whose every 4-byte word differs, so bytes forwarded twice, lost or out of order change the hash.
 */
const BODY = Buffer.alloc(24 * 1024 * 1024);
for (let i = 0; i < BODY.length; i += 4) BODY.writeUInt32BE(i >>> 2, i);
const BODY_SHA = createHash('sha256').update(BODY).digest('hex');

async function bigBackend(): Promise<number> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // Uneven writes, each its own chunk.
      for (let at = 0; at < BODY.length;) {
        const n = Math.min(BODY.length - at, 100_000 + (at % 7919));
        res.write(BODY.subarray(at, at + n));
        at += n;
      }
      res.end();
    } else {
      res.writeHead(200, { 'content-length': String(BODY.length) });
      res.end(BODY);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as AddressInfo).port;
}

/** GETs `url`, stalling 300 ms on the first body bytes so the router's writes back up, then reading. */
function slowGet(url: string): Promise<{ status: number; sha: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      const h = createHash('sha256');
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        h.update(c);
        if (bytes === 0) {
          res.pause();
          setTimeout(() => res.resume(), 300);
        }
        bytes += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, sha: h.digest('hex'), bytes }));
      res.on('error', reject);
    }).on('error', reject);
  });
}

describe('HTTP fast path', { timeout: 20_000 }, () => {
  it('forwards large response bodies byte for byte to a stalled client, with Content-Length and chunked framing', async () => {
    const port = await bigBackend();
    const router = await Router.create({
      service: 'svc',
      backends: [{ id: 'b', host: '127.0.0.1', port }],
    });
    cleanups.push(() => router.close());
    const [a, b] = await Promise.all([slowGet(`${router.url}/length`), slowGet(`${router.url}/chunked`)]);
    expect(a).toEqual({ status: 200, sha: BODY_SHA, bytes: BODY.length });
    expect(b).toEqual({ status: 200, sha: BODY_SHA, bytes: BODY.length });
    // Both went through the fast path and its upstream connections stayed reusable.
    const again = await slowGet(`${router.url}/length`);
    expect(again.sha).toBe(BODY_SHA);
    expect(router.stats().http?.fastPath).toBe(3);
    expect(router.stats().http?.handedOff).toBe(0);
  });

  it('parses repeated request and response heads once but answers each request for itself', async () => {
    // Bodies of equal length, so the backend's response heads are byte for byte the same.
    const seen: Array<{ method: string; url: string; xff: string | undefined }> = [];
    const server = createServer((req, res) => {
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        xff: req.headers['x-forwarded-for'] as string,
      });
      const body = `${req.method} ${req.url}`.slice(0, 6).padEnd(6, '.');
      res.writeHead(200, { 'content-length': '6', 'content-type': 'text/plain' });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const router = await Router.create({
      service: 'svc',
      backends: [{ id: 'b', host: '127.0.0.1', port: (server.address() as AddressInfo).port }],
    });
    cleanups.push(() => router.close());
    const host = `Host: 127.0.0.1:${router.address.port}`;
    const raw = await rawExchange(router.address.port, [
      `GET /a HTTP/1.1\r\n${host}\r\n\r\n`,
      `GET /a HTTP/1.1\r\n${host}\r\n\r\n`,
      `HEAD /a HTTP/1.1\r\n${host}\r\n\r\n`,
      `GET /b HTTP/1.1\r\n${host}\r\n\r\n`,
      `GET /b HTTP/1.1\r\n${host}\r\nConnection: close\r\n\r\n`,
    ]);
    const answers = splitResponses(raw, [false, false, true, false, false]);
    expect(answers.map((a) => a.body)).toEqual(['GET /a', 'GET /a', '', 'GET /b', 'GET /b']);
    expect(answers.map((a) => /\r\nconnection: close\r\n/i.test(a.head))).toEqual([
      false,
      false,
      false,
      false,
      true,
    ]);
    expect(seen.map((x) => `${x.method} ${x.url}`)).toEqual([
      'GET /a',
      'GET /a',
      'HEAD /a',
      'GET /b',
      'GET /b',
    ]);
    expect(seen.every((x) => x.xff === '127.0.0.1')).toBe(true);
    expect(router.stats().http?.fastPath).toBe(5);
  });

  it('mirrors a repeated request once shadows are set, though its head was parsed before without mirroring', async () => {
    const primary = await countingBackend();
    const shadow = await countingBackend();
    const router = await Router.create({
      service: 'svc',
      backends: [{ id: 'p', host: '127.0.0.1', port: primary.port }],
    });
    cleanups.push(() => router.close());
    const s = connect(router.address.port, '127.0.0.1');
    cleanups.push(async () => s.destroy());
    const request = `GET /m HTTP/1.1\r\nHost: 127.0.0.1:${router.address.port}\r\n\r\n`;
    const answered = (n: number): Promise<void> =>
      vi.waitFor(() => expect(primary.count()).toBe(n), { timeout: 5000 });
    s.write(request);
    await answered(1);
    router.setShadows([{ id: 's', host: '127.0.0.1', port: shadow.port }]);
    s.write(request);
    await answered(2);
    await vi.waitFor(() => expect(shadow.count()).toBe(1), { timeout: 5000 });
  });
});

async function countingBackend(): Promise<{ port: number; count: () => number }> {
  let n = 0;
  const server = createServer((_req, res) => {
    n++;
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as AddressInfo).port, count: () => n };
}

/** Sends `requests` in one write (pipelined) and returns everything received until the router closes. */
function rawExchange(port: number, requests: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(requests.join('')));
    let out = '';
    s.on('data', (c: Buffer) => (out += c.toString('latin1')));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

/** Splits pipelined responses framed by Content-Length; `isHead[i]` marks answers to HEAD (no body). */
function splitResponses(raw: string, isHead: boolean[]): Array<{ head: string; body: string }> {
  const out: Array<{ head: string; body: string }> = [];
  let at = 0;
  for (const head of isHead) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const h = raw.slice(at, end + 2);
    const len = head ? 0 : Number(/\r\ncontent-length: (\d+)/i.exec(h)?.[1] ?? 0);
    out.push({ head: h, body: raw.slice(end + 4, end + 4 + len) });
    at = end + 4 + len;
  }
  return out;
}
