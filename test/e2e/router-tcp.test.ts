import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Router } from '../../src/router/index.js';
import { deadPort, sleep, tcpEchoBackend } from './fixtures/router/backends.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function echo(id: string) {
  const b = await tcpEchoBackend(id);
  cleanups.push(() => b.close());
  return b;
}

/** Opens a connection, sends `msg`, and resolves with the first reply. */
async function open(port: number): Promise<{ s: Socket; ask: (msg: string) => Promise<string> }> {
  const s = connect(port, '127.0.0.1');
  cleanups.push(async () => s.destroy());
  await new Promise((r) => s.once('connect', r));
  return {
    s,
    ask: (msg) =>
      new Promise((resolve, reject) => {
        s.once('data', (c) => resolve(c.toString()));
        s.once('error', reject);
        s.write(msg);
      }),
  };
}

describe('Router in TCP mode', () => {
  it('carries a large reply byte for byte to a client that stalls, and passes on the half-close', async () => {
    // The backend answers a client's half-close with 24 MiB, then closes.
    const payload = randomBytes(24 * 1024 * 1024);
    const server = createServer({ allowHalfOpen: true }, (sock) => {
      sock.resume();
      sock.on('end', () => sock.end(payload));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as { port: number }).port;
    const r = await Router.create({
      service: 'big',
      mode: 'tcp',
      backends: [{ id: 'a', host: '127.0.0.1', port }],
    });
    cleanups.push(() => r.close());
    const s = connect({ port: r.address.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(async () => s.destroy());
    await new Promise((res) => s.once('connect', res));
    s.end('give');
    // Stall: read nothing for a while, so the router's writes back up and it must stop reading upstream.
    s.pause();
    await sleep(300);
    const hash = createHash('sha256');
    let bytes = 0;
    s.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    s.resume();
    await new Promise((res) => s.once('end', res));
    expect(bytes).toBe(payload.length);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
  });

  it('pipes bytes both ways, sends new connections to the new backend after a switch and keeps old ones open', async () => {
    const a = await echo('a');
    const b = await echo('b');
    const r = await Router.create({
      service: 'tcp',
      mode: 'tcp',
      backends: [{ id: 'a', host: '127.0.0.1', port: a.port }],
    });
    cleanups.push(() => r.close());
    const c1 = await open(r.address.port);
    expect(await c1.ask('hello')).toBe('a:hello');
    r.switchTo({ id: 'b', host: '127.0.0.1', port: b.port });
    const c2 = await open(r.address.port);
    expect(await c2.ask('hi')).toBe('b:hi');
    // The old connection drains: it stays on the live old backend.
    expect(await c1.ask('still')).toBe('a:still');
    expect(r.stats().tcp).toMatchObject({ connections: 2, active: 2 });
  });

  it('waits for a backend when the primary refuses connections, then connects to its replacement', async () => {
    const b = await echo('b');
    const r = await Router.create({
      service: 'tcp',
      mode: 'tcp',
      backends: [{ id: 'a', host: '127.0.0.1', port: await deadPort() }],
      waitForBackendMs: 3000,
    });
    cleanups.push(() => r.close());
    const c = await open(r.address.port);
    const reply = c.ask('early bytes');
    await sleep(150);
    r.switchTo({ id: 'b', host: '127.0.0.1', port: b.port });
    expect(await reply).toBe('b:early bytes');
    expect(r.stats().tcp?.connectErrors).toBeGreaterThanOrEqual(1);
  });

  it('cuts connections to a fenced backend', async () => {
    const a = await echo('a');
    const r = await Router.create({
      service: 'tcp',
      mode: 'tcp',
      epoch: 1,
      backends: [{ id: 'a', host: '127.0.0.1', port: a.port, epoch: 1 }],
    });
    cleanups.push(() => r.close());
    const c = await open(r.address.port);
    expect(await c.ask('x')).toBe('a:x');
    const closed = new Promise((res) => c.s.once('close', res));
    r.setEpoch(2);
    await closed;
    expect(r.stats().fencing.cutInFlight).toBe(1);
    expect(r.backends).toEqual([]);
  });
});
