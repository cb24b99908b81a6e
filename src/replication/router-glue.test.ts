// The replication glue with a real router and real HTTP primaries on 127.0.0.1: which epoch a write carries
// to the primary that applies it, and which epoch it is logged (and replayed) under, when the write is held
// or retried across a promotion.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Router, type RouterRequest } from '../router/index.js';
import { allocatePort } from '../runtime/index.js';
import { replicationHooks } from './router-glue.js';
import { ServiceReplication } from './service-replication.js';

/** One request as a primary received it: every `x-understudy-epoch` line, and the seq header. */
interface Received {
  epochs: string[];
  seq: string | undefined;
}

interface Primary {
  id: string;
  port: number;
  received: Received[];
  /** Resolves when the primary has received its first request. */
  arrived: Promise<void>;
  /** `hold`: answers the requests held so far. */
  release(): void;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

/**
 * A primary that records what it receives and answers 200 — at once, or (`hold`) when released, or
 * (`hang`) never (a dying primary).
 */
async function primary(id: string, mode: 'answer' | 'hold' | 'hang' = 'answer'): Promise<Primary> {
  const received: Received[] = [];
  const held: ServerResponse[] = [];
  const answer = (res: ServerResponse): void => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(id);
  };
  const sockets = new Set<Socket>();
  let arrive: () => void = () => undefined;
  const arrived = new Promise<void>((r) => (arrive = r));
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      const epochs: string[] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2)
        if (req.rawHeaders[i]?.toLowerCase() === 'x-understudy-epoch')
          epochs.push(req.rawHeaders[i + 1] ?? '');
      const seq = req.headers['x-understudy-seq'];
      received.push({ epochs, seq: typeof seq === 'string' ? seq : undefined });
      arrive();
      if (mode === 'answer') answer(res);
      else if (mode === 'hold') held.push(res);
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p: Primary = {
    id,
    port: (server.address() as AddressInfo).port,
    received,
    arrived,
    release: () => {
      for (const res of held.splice(0)) answer(res);
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  cleanups.push(() => p.close());
  return p;
}

/** A router at epoch 1 (serving `first`, or nothing) wired to a replication of `/kv/` PUTs in `order`. */
async function service(order: 'serial' | 'pipelined', first: Primary | undefined) {
  const ref: { router?: Router } = {};
  const epoch = (): number => ref.router?.epoch ?? 1;
  const repl = new ServiceReplication({
    service: 'kv',
    rules: { methods: ['PUT'], paths: ['/kv/'], timeoutMs: 1000, strict: false, order },
    consistency: 'async',
    epoch,
    ...(order === 'pipelined' ? { stream: 'st', window: 8 } : {}),
  });
  cleanups.push(() => repl.close());
  let intercepted: () => void = () => undefined;
  const interceptedOnce = new Promise<void>((r) => (intercepted = r));
  const hooks = replicationHooks(repl, epoch);
  const router = await Router.create({
    service: 'kv',
    epoch: 1,
    backends: first ? [{ id: first.id, host: '127.0.0.1', port: first.port, epoch: 1 }] : [],
    waitForBackendMs: 10_000,
    interceptor: async (req) => {
      const d = await hooks.interceptor(req);
      intercepted();
      return d;
    },
    afterResponse: hooks.afterResponse,
  });
  ref.router = router;
  cleanups.push(() => router.close());
  if (order === 'pipelined' && first)
    repl.setPrimary({ instanceId: first.id, host: '127.0.0.1', port: first.port });
  const agent = new Agent();
  cleanups.push(() => agent.close());
  const put = async (key: string): Promise<{ status: number; body: string }> => {
    const res = await request(`${router.url}/kv/${key}`, { method: 'PUT', body: 'v', dispatcher: agent });
    return { status: res.statusCode, body: await res.body.text() };
  };
  /** The promotion: `to` serves under epoch 2 (older backends fenced first). */
  const promote = (to: Primary): void => {
    router.switchTo({ id: to.id, host: '127.0.0.1', port: to.port, epoch: 2 });
    repl.setPrimary({ instanceId: to.id, host: '127.0.0.1', port: to.port });
  };
  return { router, repl, put, promote, interceptedOnce };
}

describe('replicationHooks: the epoch of a write held or retried across a promotion (serial order)', () => {
  it('sends a write held for a primary across the switch to the promoted one under its epoch, and logs it so', async () => {
    const b = await primary('b');
    const s = await service('serial', undefined);
    // No primary while the write takes its turn (epoch 1): it waits for one.
    const answer = s.put('k');
    await s.interceptedOnce;
    s.promote(b);
    expect(await answer).toEqual({ status: 200, body: 'b' });
    expect(b.received.map((r) => r.epochs)).toEqual([['2']]);
    expect((s.repl.log.recent(0) ?? []).map((m) => [m.seq, m.epoch])).toEqual([[1, 2]]);
  });

  it('retries a write cut from the fenced primary on the promoted one under the new epoch, one epoch line each', async () => {
    const a = await primary('a', 'hang');
    const b = await primary('b');
    const s = await service('serial', a);
    const answer = s.put('k');
    await a.arrived;
    s.promote(b);
    expect(await answer).toEqual({ status: 200, body: 'b' });
    expect(a.received.map((r) => r.epochs)).toEqual([['1']]);
    expect(b.received.map((r) => r.epochs)).toEqual([['2']]);
    expect((s.repl.log.recent(0) ?? []).map((m) => [m.seq, m.epoch])).toEqual([[1, 2]]);
  });

  it('logs a write under the epoch it was sent with, even when the epoch of its primary is raised while it is in flight', async () => {
    const a = await primary('a', 'hold');
    const s = await service('serial', a);
    const answer = s.put('k');
    await a.arrived;
    s.router.setBackends([{ id: a.id, host: '127.0.0.1', port: a.port, epoch: 2 }]);
    a.release();
    expect(await answer).toEqual({ status: 200, body: 'a' });
    expect(a.received.map((r) => r.epochs)).toEqual([['1']]);
    expect((s.repl.log.recent(0) ?? []).map((m) => [m.seq, m.epoch])).toEqual([[1, 1]]);
  });
});

describe('replicationHooks: pipelined order keeps the arrival stamp', () => {
  it('retries a write cut from the fenced primary with its seq and the epoch stamped at arrival, logged under that epoch', async () => {
    const a = await primary('a', 'hang');
    const b = await primary('b');
    const s = await service('pipelined', a);
    const answer = s.put('k');
    await a.arrived;
    s.promote(b);
    expect(await answer).toEqual({ status: 200, body: 'b' });
    // Epochs never decrease along the seq order: a later seq the old primary applied keeps epoch 1.
    expect(a.received).toEqual([{ epochs: ['1'], seq: '1' }]);
    expect(b.received).toEqual([{ epochs: ['1'], seq: '1' }]);
    expect((s.repl.log.recent(0) ?? []).map((m) => [m.seq, m.kind, m.epoch])).toEqual([[1, 'apply', 1]]);
  });
});

describe('replicationHooks: what a serial write is logged under', () => {
  it('logs a write under the epoch of the primary that answered it, not the epoch current when it is logged', async () => {
    let current = 5;
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { methods: ['PUT'], paths: ['/kv/'], timeoutMs: 1000, strict: false },
      consistency: 'async',
      epoch: () => current,
    });
    cleanups.push(() => repl.close());
    const hooks = replicationHooks(repl, () => current);
    const d = await hooks.interceptor({
      id: 1,
      service: 'kv',
      method: 'PUT',
      path: '/kv/k',
      headers: {},
      body: Buffer.from('v'),
      remoteAddress: '127.0.0.1',
      receivedAt: 0,
    });
    expect(d).toMatchObject({ epochHeader: 'x-understudy-epoch' });
    expect(d?.headers?.['x-understudy-epoch']).toBeUndefined();
    current = 6;
    await d?.holdResponse?.({ statusCode: 200, backendId: 'a', epoch: 5 });
    expect((repl.log.recent(0) ?? []).map((m) => [m.seq, m.epoch])).toEqual([[1, 5]]);
  });
});

/** The kv example on 127.0.0.1, in a temporary state directory; stopped after the test. */
async function kv(): Promise<{ port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'understudy-glue-kv-'));
  const port = await allocatePort();
  const server = fileURLToPath(new URL('../../examples/kv/server.mjs', import.meta.url));
  const child = spawn(process.execPath, [server, '--port', String(port), '--state', join(dir, 'kv')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise((resolve, reject) => {
    child.stdout?.once('data', resolve);
    child.once('exit', () => reject(new Error('the kv example exited before listening')));
  });
  return { port };
}

/** An instance that cannot be asked: it resets every request. `asked(n)` resolves once it got n. */
async function unreachable(): Promise<{ port: number; asked(n: number): Promise<void> }> {
  let count = 0;
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const sockets = new Set<Socket>();
  const server = createServer((req) => {
    count++;
    for (const w of waiters.filter((x) => count >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
    req.socket.destroy();
  });
  server.on('connection', (sk: Socket) => {
    sockets.add(sk);
    sk.on('close', () => sockets.delete(sk));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const sk of sockets) sk.destroy();
        server.close(() => r());
      }),
  );
  return {
    port: (server.address() as AddressInfo).port,
    asked: (n) => (count >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  };
}

describe('replicationHooks: a pipelined write left unanswered across a promotion', () => {
  it('is not skipped while the promoted primary it was sent to cannot be asked, and is logged as applied once it answers', async () => {
    let current = 1;
    const repl = new ServiceReplication({
      service: 'kv',
      rules: { methods: ['PUT'], paths: ['/kv/'], timeoutMs: 1000, strict: false, order: 'pipelined' },
      consistency: 'async',
      epoch: () => current,
      stream: 'st',
      window: 8,
    });
    cleanups.push(() => repl.close());
    const hooks = replicationHooks(repl, () => current);
    const req: RouterRequest = {
      id: 1,
      service: 'kv',
      method: 'PUT',
      path: '/kv/k',
      headers: { 'content-type': 'text/plain' },
      body: Buffer.from('v1'),
      remoteAddress: '127.0.0.1',
      receivedAt: 0,
    };
    const d = await hooks.interceptor(req);
    // Stamped (seq 1, epoch 1) before the promotion; the router sends it to the promoted primary (epoch 2),
    // which applies it, but its answer is lost.
    current = 2;
    const b = await kv();
    const res = await request(`http://127.0.0.1:${b.port}/kv/k`, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain', ...d?.headers },
      body: 'v1',
    });
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    // For a while the promoted primary cannot be asked how it consumed seq 1.
    const away = await unreachable();
    repl.setPrimary({ instanceId: 'b', host: '127.0.0.1', port: away.port });
    hooks.afterResponse(req, {
      statusCode: 0,
      backendStatus: 0,
      backendId: 'b',
      epoch: 2,
      error: 'reset',
      durationMs: 0,
    });
    const logged = async (): Promise<void> => {
      for (let i = 0; i < 500 && repl.log.lastSeq < 1; i++) await new Promise((r) => setTimeout(r, 10));
    };
    // Asked again after a failed ask: not skipped, since the primary it was sent to is not fenced.
    await Promise.race([away.asked(2), logged()]);
    expect(repl.log.lastSeq).toBe(0);
    // It can be asked again (a new target id: setPrimary ignores the current one).
    repl.setPrimary({ instanceId: 'b-again', host: '127.0.0.1', port: b.port });
    await logged();
    expect((repl.log.recent(0) ?? []).map((m) => [m.seq, m.kind, m.epoch])).toEqual([[1, 'apply', 1]]);
  });
});
