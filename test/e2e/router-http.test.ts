import { connect } from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Router, type RouterOptions } from '../../src/router/index.js';
import {
  client,
  deadPort,
  httpBackend,
  killableBackend,
  sleep,
  type TestBackend,
} from './fixtures/router/backends.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function backend(...args: Parameters<typeof httpBackend>): Promise<TestBackend> {
  const b = await httpBackend(...args);
  cleanups.push(() => b.close());
  return b;
}

let fastPath = true;
async function router(opts: Omit<RouterOptions, 'service'> & { service?: string }): Promise<Router> {
  const r = await Router.create({ service: 'svc', fastPath, ...opts });
  cleanups.push(() => r.close());
  return r;
}

function http() {
  const c = client();
  cleanups.push(() => c.agent.close());
  return c.send;
}

/** Sends one HTTP/1.1 request over a raw socket and returns everything the server sent until it closed. */
function rawHttp(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(lines.join('\r\n') + '\r\n\r\n'));
    let out = '';
    s.on('data', (c) => (out += c.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

const at = (b: Pick<TestBackend, 'id' | 'port'>, epoch = 0) => ({
  id: b.id,
  host: '127.0.0.1',
  port: b.port,
  epoch,
});

describe.each([
  ['raw-socket fast path', true],
  ['node:http path only', false],
])('Router in HTTP mode (%s)', (_name, fast) => {
  beforeEach(() => {
    fastPath = fast;
  });

  it('forwards GET and PUT with their bodies and sets X-Forwarded headers while stripping hop-by-hop headers', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)] });
    const send = http();
    // A raw request, so hop-by-hop headers a well-behaved client library refuses to send reach the router.
    const raw = await rawHttp(r.address.port, [
      'GET /items/1?x=2 HTTP/1.1',
      `Host: 127.0.0.1:${r.address.port}`,
      'X-Forwarded-For: 10.0.0.9',
      'X-Custom: kept',
      'Proxy-Authorization: secret',
      'Keep-Alive: timeout=3',
      'X-Drop-Me: 1',
      'Connection: close, X-Drop-Me',
    ]);
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(raw).toMatch(/\r\nx-backend: a\r\n/i);
    expect(raw).toContain('a GET /items/1?x=2 0');
    const put = await send(`${r.url}/items/1`, { method: 'PUT', body: 'hello world' });
    expect(put.text).toBe('a PUT /items/1 11');
    const [g, p] = a.seen;
    expect(g?.headers['x-forwarded-for']).toBe('10.0.0.9, 127.0.0.1');
    expect(g?.headers['x-forwarded-proto']).toBe('http');
    expect(g?.headers['x-forwarded-host']).toBe(`127.0.0.1:${r.address.port}`);
    expect(g?.headers['host']).toBe(`127.0.0.1:${r.address.port}`);
    expect(g?.headers['x-custom']).toBe('kept');
    expect(g?.headers['proxy-authorization']).toBeUndefined();
    expect(g?.headers['keep-alive']).toBeUndefined();
    expect(g?.headers['x-drop-me']).toBeUndefined();
    expect(p?.body).toBe('hello world');
    expect(r.stats().http?.requests).toBe(2);
    // A Connection header naming other headers, and a body, are for the full path.
    expect(r.stats().http?.fastPath).toBe(0);
  });

  it('answers HEAD and 204 without a body and passes 304 through', async () => {
    const a = await backend('a', (req, res) => {
      if (req.url === '/empty') {
        res.writeHead(204, { 'x-why': 'nothing' });
        res.end();
        return true;
      }
      if (req.url === '/cached') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
        return true;
      }
      if (req.method === 'HEAD') {
        res.writeHead(200, { 'content-length': '1234' });
        res.end();
        return true;
      }
      return false;
    });
    const r = await router({ backends: [at(a)] });
    const send = http();
    const head = await send(`${r.url}/x`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('1234');
    expect(head.text).toBe('');
    const empty = await send(`${r.url}/empty`);
    expect([empty.status, empty.headers['x-why'], empty.text]).toEqual([204, 'nothing', '']);
    const cached = await send(`${r.url}/cached`);
    expect([cached.status, cached.headers['etag']]).toEqual([304, '"v1"']);
    // The keep-alive connection still works after bodiless responses.
    expect((await send(`${r.url}/after`)).text).toBe('a GET /after 0');
  });

  it('streams a chunked request body larger than the retry bound and a large response body through', async () => {
    const big = 8 << 20;
    const a = await backend('a', (req, res) => {
      if (req.url !== '/download') return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (sent < big) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return true;
    });
    const r = await router({ backends: [at(a)], maxBufferedBodyBytes: 1 << 20 });
    const send = http();
    async function* upload(): AsyncGenerator<Buffer> {
      for (let i = 0; i < big / 65536; i++) yield Buffer.alloc(65536, 1);
    }
    const up = await send(`${r.url}/upload`, { method: 'POST', body: Readable.from(upload()) });
    expect(up.text).toBe(`a POST /upload ${big}`);
    const down = await send(`${r.url}/download`);
    expect(down.text.length).toBe(big);
    expect(r.stats().http?.retries).toBe(0);
  });

  it('sends every new request to the new backend as soon as the set is switched', async () => {
    const a = await backend('a');
    const b = await backend('b');
    const r = await router({ backends: [at(a)] });
    const send = http();
    expect((await send(`${r.url}/1`)).headers['x-backend']).toBe('a');
    r.switchTo(at(b));
    for (let i = 0; i < 5; i++) expect((await send(`${r.url}/2`)).headers['x-backend']).toBe('b');
    expect(r.backends).toEqual(['b']);
    // Plain GETs take the raw-socket fast path when it is on.
    expect(r.stats().http?.fastPath).toBe(fast ? 6 : 0);
  });

  it('retries an idempotent request once on the new backend when the old one dies mid-request', async () => {
    const holder: { r?: Router } = {};
    const b = await backend('b');
    const a = await backend('a', (req) => {
      // The primary dies while handling the request; the control plane switches meanwhile.
      holder.r?.switchTo(at(b));
      req.socket.destroy();
      return true;
    });
    const r = await router({ backends: [at(a)] });
    holder.r = r;
    const send = http();
    for (const method of ['GET', 'PUT']) {
      r.switchTo(at(a));
      const res = await send(`${r.url}/k`, { method, body: method === 'PUT' ? 'v' : undefined });
      expect(res.status).toBe(200);
      expect(res.text).toBe(`b ${method} /k ${method === 'PUT' ? 1 : 0}`);
    }
    expect(r.stats().http?.retries).toBe(2);
  });

  it('retries reset reads on new connections, not on other pooled ones of the killed backend', async () => {
    const a = await killableBackend('a');
    cleanups.push(() => a.close());
    const b = await backend('b');
    const r = await router({ backends: [at(a)], waitForBackendMs: 3000 });
    const send = http();
    // Several pooled connections to a, all idle.
    const warm = await Promise.all(Array.from({ length: 6 }, (_, i) => send(`${r.url}/w${i}`)));
    expect(warm.map((w) => w.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(a.connections).toBeGreaterThan(1);
    // Killed: every connection resets when used, and new ones are still accepted for 100 ms (a process
    // being torn down), then refused; the failover switches to b after 200 ms.
    a.kill(100);
    setTimeout(() => r.switchTo(at(b)), 200);
    const one = await send(`${r.url}/k`);
    expect([one.status, one.text]).toEqual([200, 'b GET /k 0']);
    const res = await Promise.all(Array.from({ length: 6 }, (_, i) => send(`${r.url}/k${i}`)));
    expect(res.map((x) => [x.status, x.text])).toEqual(
      Array.from({ length: 6 }, (_, i) => [200, `b GET /k${i} 0`]),
    );
    expect(r.stats().http?.retries).toBe(1);
  });

  it('answers a non-idempotent request 503 with a JSON error when its backend dies before answering', async () => {
    const a = await backend('a', (req) => {
      req.socket.destroy();
      return true;
    });
    const r = await router({ backends: [at(a)] });
    const res = await http()(`${r.url}/orders`, { method: 'POST', body: '{"n":1}' });
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    const body = JSON.parse(res.text) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('UNDERSTUDY_ERR_ROUTER_UNAVAILABLE');
    expect(body.error.message).toMatch(/not retried/);
    expect(a.seen).toHaveLength(1);
    expect(r.stats().http?.unavailable).toBe(1);
  });

  it('streams a body larger than the retry bound without holding it, so its request is not retried', async () => {
    const a = await backend('a', (req) => {
      req.socket.destroy();
      return true;
    });
    const r = await router({ backends: [at(a)], maxBufferedBodyBytes: 1024 });
    const res = await http()(`${r.url}/big`, { method: 'PUT', body: Buffer.alloc(64 * 1024, 1) });
    expect(res.status).toBe(503);
    expect(a.seen).toHaveLength(1);
    expect(a.seen[0]?.bodyBytes).toBe(64 * 1024);
    expect(r.stats().http?.retries).toBe(0);
  });

  it('does not retry PUT when retryPutDelete is off', async () => {
    const a = await backend('a', (req) => {
      req.socket.destroy();
      return true;
    });
    const r = await router({ backends: [at(a)], retryPutDelete: false });
    expect((await http()(`${r.url}/k`, { method: 'PUT', body: 'x' })).status).toBe(503);
    expect(a.seen).toHaveLength(1);
  });

  it('holds requests while no backend is available and sends them once a backend appears', async () => {
    const a = await backend('a');
    const r = await router({ backends: [], waitForBackendMs: 3000 });
    const send = http();
    const pending = Promise.all([send(`${r.url}/w1`), send(`${r.url}/w2`, { method: 'POST', body: 'p' })]);
    await sleep(150);
    expect(r.stats().waiting).toBe(2);
    r.setBackends([at(a)]);
    const [w1, w2] = await pending;
    expect([w1.status, w1.text]).toEqual([200, 'a GET /w1 0']);
    expect([w2.status, w2.text]).toEqual([200, 'a POST /w2 1']);
  });

  it('answers 503 when no backend appears within waitForBackendMs', async () => {
    const r = await router({ backends: [], waitForBackendMs: 200 });
    const res = await http()(`${r.url}/x`);
    expect(res.status).toBe(503);
    expect(res.ms).toBeGreaterThanOrEqual(190);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'UNDERSTUDY_ERR_ROUTER_UNAVAILABLE' } });
    expect(r.stats().http?.errors.noBackend).toBe(1);
  });

  it('re-sends any request refused by a dead backend to the primary that replaces it', async () => {
    const dead = await deadPort();
    const b = await backend('b');
    const r = await router({
      backends: [{ id: 'a', host: '127.0.0.1', port: dead }],
      waitForBackendMs: 3000,
    });
    const pending = http()(`${r.url}/orders`, { method: 'POST', body: 'x' });
    await sleep(150);
    r.switchTo(at(b));
    const res = await pending;
    expect([res.status, res.text]).toEqual([200, 'b POST /orders 1']);
    expect(r.stats().http?.errors.connect).toBeGreaterThanOrEqual(1);
  });

  it('lets an in-flight request to a live old backend complete after a switch (drain)', async () => {
    const a = await backend('a', async (req, res) => {
      if (req.url !== '/slow') return false;
      await sleep(400);
      res.end('a slow done');
      return true;
    });
    const b = await backend('b');
    const r = await router({ backends: [at(a)] });
    const send = http();
    const slow = send(`${r.url}/slow`);
    await sleep(100);
    r.switchTo(at(b));
    expect((await send(`${r.url}/fast`)).headers['x-backend']).toBe('b');
    expect(r.stats().backends.find((x) => x.id === 'a')?.state).toBe('draining');
    expect((await slow).text).toBe('a slow done');
    await sleep(50);
    expect(r.stats().backends.map((x) => x.id)).toEqual(['b']);
  });

  it('never sends to a backend of an older epoch and counts what it refused', async () => {
    const a = await backend('a', async (req, res) => {
      if (req.url !== '/slow') return false;
      await sleep(2000);
      res.end('a late answer');
      return true;
    });
    const b = await backend('b');
    const r = await router({ backends: [at(a, 2)], epoch: 2 });
    const send = http();
    expect(r.setBackends([at(a, 2), at(b, 1)]).refused).toEqual(['b']);
    expect(r.backends).toEqual(['a']);
    // A switch made only of stale backends changes nothing.
    expect(r.switchTo(at(b, 1)).refused).toEqual(['b']);
    expect(r.backends).toEqual(['a']);
    const slow = send(`${r.url}/slow`);
    await sleep(100);
    // Promotion: epoch 3 fences a (its in-flight GET is cut and retried on b), then b serves.
    r.switchTo(at(b, 3));
    const res = await slow;
    expect([res.status, res.text]).toEqual([200, 'b GET /slow 0']);
    expect(r.stats().fencing).toEqual({ epoch: 3, refusedBackends: 3, cutInFlight: 1 });
    expect(() => r.setEpoch(2)).toThrow(expect.objectContaining({ code: 'UNDERSTUDY_ERR_ROUTER_CONFIG' }));
  });

  it('holds mutating requests while paused, lets reads through, and forwards the held ones on resume', async () => {
    const a = await backend('a', async (req, res) => {
      if (req.url !== '/slow-write') return false;
      await sleep(300);
      res.end('written');
      return true;
    });
    const b = await backend('b');
    const r = await router({ backends: [at(a)] });
    const send = http();
    const inflight = send(`${r.url}/slow-write`, { method: 'POST', body: 'x' });
    await sleep(50);
    let paused = false;
    const pausing = r.pause().then(() => (paused = true));
    const held = send(`${r.url}/w`, { method: 'PUT', body: 'y' });
    expect((await send(`${r.url}/read`)).text).toBe('a GET /read 0');
    expect(paused).toBe(false);
    await inflight;
    await pausing;
    expect(r.stats().pause).toMatchObject({ paused: true, held: 1 });
    r.switchTo(at(b));
    r.resume();
    expect((await held).text).toBe('b PUT /w 1');
    expect(a.seen.map((s) => s.url)).not.toContain('/w');
  });

  it('answers held mutations 503 when a pause outlasts maxPauseMs', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)], maxPauseMs: 150 });
    await r.pause();
    const res = await http()(`${r.url}/w`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(503);
    expect(a.seen).toHaveLength(0);
    r.resume();
  });

  it('balances by least outstanding requests', async () => {
    const slowHandler = async (
      req: Parameters<NonNullable<Parameters<typeof httpBackend>[1]>>[0],
      res: Parameters<NonNullable<Parameters<typeof httpBackend>[1]>>[1],
    ) => {
      if (req.url !== '/slow') return false;
      await sleep(500);
      res.end('slow');
      return true;
    };
    const a = await backend('a', slowHandler);
    const b = await backend('b', slowHandler);
    const r = await router({ backends: [at(a), at(b)] });
    const send = http();
    const slow = send(`${r.url}/slow`);
    await sleep(100);
    const busy = a.seen.length === 1 ? 'a' : 'b';
    const quick: string[] = [];
    for (let i = 0; i < 6; i++) quick.push((await send(`${r.url}/q`)).headers['x-backend'] as string);
    expect(quick.every((x) => x !== busy)).toBe(true);
    await slow;
    const after: string[] = [];
    for (let i = 0; i < 6; i++) after.push((await send(`${r.url}/q`)).headers['x-backend'] as string);
    expect(new Set(after)).toEqual(new Set(['a', 'b']));
  });

  it('aborts the upstream request when the client goes away and counts it', async () => {
    let upstreamClosed = false;
    const a = await backend('a', async (req, res) => {
      res.on('close', () => (upstreamClosed = true));
      await sleep(3000);
      if (!res.destroyed) res.end('late');
      return true;
    });
    const r = await router({ backends: [at(a)] });
    const s = connect(r.address.port, '127.0.0.1', () => s.write(`GET /slow HTTP/1.1\r\nHost: x\r\n\r\n`));
    s.on('error', () => undefined);
    await sleep(150);
    s.destroy();
    for (let i = 0; i < 40 && !upstreamClosed; i++) await sleep(25);
    expect(upstreamClosed).toBe(true);
    const st = r.stats();
    expect(st.http?.errors.clientAborted).toBe(1);
    expect(st.http?.inFlight).toBe(0);
    expect(st.backends[0]?.inFlight).toBe(0);
  });

  it('answers pipelined requests in order and honours Connection: close on the last', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)] });
    const raw = await rawHttp(r.address.port, [
      'GET /p1 HTTP/1.1',
      'Host: x',
      '',
      'GET /p2 HTTP/1.1',
      'Host: x',
      'Connection: close',
    ]);
    expect(raw.indexOf('a GET /p1 0')).toBeGreaterThan(0);
    expect(raw.indexOf('a GET /p2 0')).toBeGreaterThan(raw.indexOf('a GET /p1 0'));
  });

  it('answers Expect: 100-continue and forwards the body', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)] });
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect(r.address.port, '127.0.0.1', () =>
        s.write(
          `PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
        ),
      );
      let out = '';
      s.on('data', (c) => {
        out += c.toString();
        if (out.startsWith('HTTP/1.1 100') && !out.includes('hello')) s.write('hello');
      });
      s.on('end', () => resolve(out));
      s.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 100 Continue/);
    expect(raw).toContain('a PUT /e 5');
    expect(a.seen[0]?.headers['expect']).toBeUndefined();
  });

  it('reports per-backend latency, counters and event-loop delay as plain data', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)] });
    const send = http();
    for (let i = 0; i < 3; i++) await send(`${r.url}/s`);
    const s = r.stats();
    expect(s.backends[0]).toMatchObject({ id: 'a', state: 'serving', requests: 3, inFlight: 0 });
    expect(s.backends[0]?.latency.count).toBe(3);
    expect(s.eventLoopDelay.maxMs).toBeGreaterThanOrEqual(0);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
  });

  it('rejects bad options with a config error naming the field', async () => {
    await expect(Router.create({ service: 'svc', mirrorFraction: 2 })).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_ROUTER_CONFIG',
      details: { field: 'mirrorFraction' },
    });
    await expect(
      Router.create({ service: 'svc', backends: [{ id: 'a', host: '127.0.0.1', port: 0 }] }),
    ).rejects.toMatchObject({ code: 'UNDERSTUDY_ERR_ROUTER_CONFIG' });
  });

  it('closes idempotently and stops accepting connections', async () => {
    const a = await backend('a');
    const r = await Router.create({ service: 'svc', fastPath, backends: [at(a)] });
    const send = http();
    expect((await send(`${r.url}/x`)).status).toBe(200);
    await Promise.all([r.close(), r.close()]);
    await r.close();
    await expect(send(`${r.url}/y`)).rejects.toThrow();
  });
});
