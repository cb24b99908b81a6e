// Every read from a client has a deadline and every listener a connection cap: a client trickling a
// request one byte at a time is answered 408 and closed, and connections beyond `maxConnections` are
// closed at once.
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Router, type RouterOptions } from '../../src/router/index.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function okBackend(): Promise<number> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return (server.address() as AddressInfo).port;
}

async function router(port: number, opts: Partial<RouterOptions>): Promise<Router> {
  const r = await Router.create({
    service: 'svc',
    backends: [{ id: 'b', host: '127.0.0.1', port }],
    ...opts,
  });
  cleanups.push(() => r.close());
  return r;
}

/** A client connection that records what it receives and whether the router closed it. */
function client(port: number): {
  s: Socket;
  received: () => string;
  closed: Promise<void>;
  isClosed: () => boolean;
} {
  const s = connect(port, '127.0.0.1');
  cleanups.push(async () => s.destroy());
  let received = '';
  let closed = false;
  s.on('data', (d: Buffer) => (received += d.toString('latin1')));
  s.on('error', () => undefined);
  const done = new Promise<void>((r) => s.on('close', () => r()));
  void done.then(() => (closed = true));
  return { s, received: () => received, closed: done, isClosed: () => closed };
}

/**
 * Writes `prefix`, then one byte every 200 ms while the connection stays open — at most `maxBytes`,
 * far longer than the deadline under test. Resolves once the router closed the connection or the
 * client gave up.
 */
async function trickle(c: ReturnType<typeof client>, prefix: string, maxBytes = 40): Promise<void> {
  c.s.write(prefix);
  for (let i = 0; i < maxBytes && !c.isClosed(); i++) {
    await new Promise((r) => setTimeout(r, 200));
    if (!c.isClosed()) c.s.write('a');
  }
}

/** Sends a request on an open connection and waits for its answer. */
async function roundTrip(c: ReturnType<typeof client>): Promise<void> {
  const before = c.received().length;
  c.s.write('GET /ping HTTP/1.1\r\nHost: x\r\n\r\n');
  await expect.poll(() => c.received().slice(before), { timeout: 5000 }).toMatch(/\r\n\r\nok$/);
}

describe.each([
  ['raw-socket fast path', true],
  ['node:http path only', false],
])('router deadlines and caps (%s)', { timeout: 20_000 }, (_name, fastPath) => {
  it('answers 408 and closes a client that trickles a request head a byte at a time past the head deadline', async () => {
    const r = await router(await okBackend(), {
      fastPath,
      requestHeadTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });
    const c = client(r.address.port);
    await trickle(c, 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(c.isClosed()).toBe(true);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers 408 and closes a client that trickles the body of a handed-off request past the request deadline', async () => {
    const r = await router(await okBackend(), {
      fastPath,
      requestHeadTimeoutMs: 1000,
      requestTimeoutMs: 1000,
    });
    const c = client(r.address.port);
    await trickle(c, 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n');
    expect(c.isClosed()).toBe(true);
    expect(c.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('answers 408 and closes a client that trickles its next head on a handed-off keep-alive connection', async () => {
    const r = await router(await okBackend(), {
      fastPath,
      requestHeadTimeoutMs: 1000,
      requestTimeoutMs: 1000,
      clientKeepAliveMs: 10_000,
    });
    const c = client(r.address.port);
    c.s.write('POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx');
    await expect.poll(() => c.received(), { timeout: 5000 }).toMatch(/\r\n\r\nok$/);
    const before = c.received().length;
    await trickle(c, 'GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    expect(c.isClosed()).toBe(true);
    expect(c.received().slice(before)).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection beyond maxConnections at once and keeps serving the ones within the cap', async () => {
    const r = await router(await okBackend(), { fastPath, maxConnections: 2 });
    const a = client(r.address.port);
    const b = client(r.address.port);
    await roundTrip(a);
    await roundTrip(b);
    const third = client(r.address.port);
    third.s.write('GET /third HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.race([third.closed, new Promise((res) => setTimeout(res, 5000))]);
    expect(third.isClosed()).toBe(true);
    expect(third.received()).toBe('');
    await roundTrip(a);
    // Once a connection within the cap closes, a new one is served.
    b.s.destroy();
    await b.closed;
    await expect
      .poll(
        async () => {
          const d = client(r.address.port);
          d.s.write('GET /later HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
          await d.closed;
          return d.received();
        },
        { timeout: 5000 },
      )
      .toMatch(/\r\n\r\nok$/);
  });
});

describe('router limits in TCP mode', { timeout: 20_000 }, () => {
  it('closes a connection beyond maxConnections at once', async () => {
    const r = await router(await okBackend(), { mode: 'tcp', maxConnections: 1 });
    const a = client(r.address.port);
    await roundTrip(a);
    const extra = client(r.address.port);
    extra.s.write('GET /extra HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.race([extra.closed, new Promise((res) => setTimeout(res, 5000))]);
    expect(extra.isClosed()).toBe(true);
    expect(extra.received()).toBe('');
  });
});
