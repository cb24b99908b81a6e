import { createHash } from 'node:crypto';
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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

describe('HTTP fast path', () => {
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
});
