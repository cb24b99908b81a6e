import { afterEach, describe, expect, it } from 'vitest';
import { UnderstudyError } from '../../src/errors/index.js';
import {
  Router,
  type RouterOptions,
  type RouterOutcome,
  type RouterRequest,
} from '../../src/router/index.js';
import { client, deadPort, httpBackend, sleep, type TestBackend } from './fixtures/router/backends.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function backend(...args: Parameters<typeof httpBackend>): Promise<TestBackend> {
  const b = await httpBackend(...args);
  cleanups.push(() => b.close());
  return b;
}

async function router(opts: Omit<RouterOptions, 'service'>): Promise<Router> {
  const r = await Router.create({ service: 'svc', ...opts });
  cleanups.push(() => r.close());
  return r;
}

function http() {
  const c = client();
  cleanups.push(() => c.agent.close());
  return c.send;
}

const at = (b: TestBackend) => ({ id: b.id, host: '127.0.0.1', port: b.port });

describe('Router replication hooks', () => {
  it('offers mutating requests with their body to the interceptor, forwards its headers and reports the outcome', async () => {
    const a = await backend('a');
    const seen: RouterRequest[] = [];
    const outcomes: RouterOutcome[] = [];
    const r = await router({
      backends: [at(a)],
      interceptPathPrefixes: ['/kv/'],
      interceptor: (req) => {
        seen.push(req);
        return Promise.resolve({ headers: { 'x-understudy-seq': String(seen.length) } });
      },
      afterResponse: (_req, o) => outcomes.push(o),
    });
    const send = http();
    await send(`${r.url}/kv/a`, { method: 'PUT', body: 'v1' });
    await send(`${r.url}/kv/a`);
    await send(`${r.url}/other`, { method: 'POST', body: 'z' });
    expect(seen.map((s) => [s.method, s.path, s.body?.toString()])).toEqual([['PUT', '/kv/a', 'v1']]);
    expect(a.seen[0]?.headers['x-understudy-seq']).toBe('1');
    expect(a.seen[2]?.headers['x-understudy-seq']).toBeUndefined();
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      statusCode: 200,
      backendStatus: 200,
      backendId: 'a',
      error: undefined,
    });
  });

  it('holds the response until the write-through callback releases it', async () => {
    const a = await backend('a');
    let release: (() => void) | undefined;
    const r = await router({
      backends: [at(a)],
      interceptor: () => ({
        holdResponse: (info) => {
          expect(info).toMatchObject({ statusCode: 200, backendId: 'a' });
          return new Promise((resolve) => (release = () => resolve({ release: true })));
        },
      }),
    });
    let answered = false;
    const pending = http()(`${r.url}/w`, { method: 'POST', body: 'x' }).then((res) => {
      answered = true;
      return res;
    });
    await sleep(200);
    expect(a.seen).toHaveLength(1);
    expect(answered).toBe(false);
    release?.();
    const res = await pending;
    expect([res.status, res.text]).toEqual([200, 'a POST /w 1']);
  });

  it('replaces a held response when replication refuses it (strict write-through)', async () => {
    const a = await backend('a');
    const r = await router({
      backends: [at(a)],
      interceptor: () => ({
        holdResponse: () =>
          Promise.reject(
            new UnderstudyError('UNDERSTUDY_ERR_NOT_REPLICATED', 'no echo applied the write in time'),
          ),
      }),
    });
    const res = await http()(`${r.url}/w`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(503);
    expect(JSON.parse(res.text)).toEqual({
      error: { code: 'UNDERSTUDY_ERR_NOT_REPLICATED', message: 'no echo applied the write in time' },
    });
  });

  it('answers directly when the interceptor responds, and 503 with its code when it rejects', async () => {
    const a = await backend('a');
    const r = await router({
      backends: [at(a)],
      interceptor: (req) =>
        req.path === '/big'
          ? { respond: { status: 413, body: 'too large to replicate' } }
          : Promise.reject(new UnderstudyError('UNDERSTUDY_ERR_FAILOVER', 'switchover in progress')),
    });
    const send = http();
    const big = await send(`${r.url}/big`, { method: 'POST', body: 'x' });
    expect([big.status, big.text]).toEqual([413, 'too large to replicate']);
    const no = await send(`${r.url}/x`, { method: 'POST', body: 'x' });
    expect(no.status).toBe(503);
    expect(JSON.parse(no.text)).toMatchObject({ error: { code: 'UNDERSTUDY_ERR_FAILOVER' } });
    expect(a.seen).toHaveLength(0);
  });

  it('can impose a total order on mutations through the interceptor and afterResponse', async () => {
    const order: string[] = [];
    const a = await backend('a', async (req, res, body) => {
      order.push(body.toString());
      await sleep(body.toString() === '1' ? 150 : 0);
      res.end('ok');
      return true;
    });
    let tail = Promise.resolve();
    const releases = new Map<number, () => void>();
    const r = await router({
      backends: [at(a)],
      interceptor: (req) => {
        const prev = tail;
        let done!: () => void;
        tail = new Promise<void>((res) => (done = res));
        releases.set(req.id, done);
        return prev.then(() => ({}));
      },
      afterResponse: (req) => releases.get(req.id)?.(),
    });
    const send = http();
    const p = [1, 2, 3].map((n) => send(`${r.url}/w`, { method: 'POST', body: String(n) }));
    await Promise.all(p);
    expect(order).toEqual(['1', '2', '3']);
  });

  it('mirrors requests to shadows with a -shadow Host, and a slow or dead shadow never delays the client', async () => {
    const a = await backend('a');
    const shadow = await backend('s', async (_req, res) => {
      await sleep(1500);
      res.end('shadow');
      return true;
    });
    const r = await router({
      backends: [at(a)],
      shadows: [at(shadow), { id: 'dead', host: '127.0.0.1', port: await deadPort() }],
      maxMirrorInFlight: 3,
      mirrorTimeoutMs: 2000,
    });
    const send = http();
    const times: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await send(`${r.url}/m${i}`, { method: 'POST', body: 'payload' });
      expect(res.text).toBe(`a POST /m${i} 7`);
      times.push(res.ms);
    }
    expect(Math.max(...times)).toBeLessThan(1000);
    await sleep(100);
    expect(shadow.seen[0]?.headers['host']).toBe(`127.0.0.1-shadow:${r.address.port}`);
    expect(shadow.seen[0]?.body).toBe('payload');
    const m = r.stats().mirror;
    // The slow shadow holds its copies; the bound of 3 in flight drops the rest.
    expect(m.dropped).toBeGreaterThan(0);
    expect(m.sent + m.dropped).toBe(8);
  });

  it('mirrors only the sampled fraction of requests', async () => {
    const a = await backend('a');
    const shadow = await backend('s');
    let i = 0;
    const r = await router({
      backends: [at(a)],
      shadows: [at(shadow)],
      mirrorFraction: 0.25,
      random: () => [0.1, 0.5, 0.9, 0.7][i++ % 4] as number,
    });
    const send = http();
    for (let k = 0; k < 8; k++) await send(`${r.url}/q${k}`);
    await sleep(100);
    expect(shadow.seen.map((s) => s.url)).toEqual(['/q0', '/q4']);
    r.setShadows([]);
    await send(`${r.url}/after`);
    expect(r.stats().mirror.shadows).toEqual([]);
  });

  it('lets the interceptor force or suppress mirroring of one request', async () => {
    const a = await backend('a');
    const shadow = await backend('s');
    const r = await router({
      backends: [at(a)],
      shadows: [at(shadow)],
      mirrorFraction: 0,
      interceptor: (req) => ({ mirror: req.path === '/force' }),
    });
    const send = http();
    await send(`${r.url}/force`, { method: 'POST', body: 'f' });
    await send(`${r.url}/plain`, { method: 'POST', body: 'p' });
    await send(`${r.url}/read`);
    await sleep(100);
    expect(shadow.seen.map((x) => [x.url, x.body])).toEqual([['/force', 'f']]);
  });
});
