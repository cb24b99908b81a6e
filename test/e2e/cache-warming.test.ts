// Cache warming by mirrored reads: the router copies sampled live reads to a warm-pool echo (a real
// examples/api process), so the echo's cache is warm before it serves; and a warm-up before a new
// instance serves, from copies of live reads or from the router's sample of recent reads replayed.
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { Router } from '../../src/router/index.js';
import { startExampleApi, type ExampleApi } from './fixtures/api/example-api.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function api(): Promise<ExampleApi> {
  const a = await startExampleApi();
  cleanups.push(() => a.close());
  return a;
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe.each([
  ['raw-socket fast path', true],
  ['node:http path only', false],
])('Router cache warming (%s)', (_name, fastPath) => {
  it("a warm echo's cache holds the keys live reads used, and only reads are copied", async () => {
    const [primary, echo] = await Promise.all([api(), api()]);
    const r = await Router.create({
      service: 'api',
      fastPath,
      backends: [{ id: 'p', host: '127.0.0.1', port: primary.port }],
    });
    cleanups.push(() => r.close());
    r.setWarmReads([{ id: 'e', host: '127.0.0.1', port: echo.port }], 1);
    for (let i = 0; i < 40; i++) await (await request(`${r.url}/item/k${i % 20}`)).body.text();
    await (await request(`${r.url}/item/k0`, { method: 'POST' })).body.text(); // a write: never copied
    await waitFor(() => r.stats().warmReads.completed === 40, 'the 40 warming copies');
    expect(r.stats().warmReads).toMatchObject({ shadows: ['e'], fraction: 1, sent: 40, failed: 0 });
    const warmed = (await echo.stats()).cache;
    // 20 distinct keys: the first copy of each missed, the second hit — the echo's cache is warm.
    expect(warmed).toMatchObject({ warmCopies: 40, misses: 20, hits: 20, size: 20 });
    // Promoted, it answers those keys from its cache.
    for (let i = 0; i < 20; i++) await (await request(`${echo.url}/item/k${i}`)).body.text();
    expect((await echo.stats()).cache).toMatchObject({ misses: 20, hits: 40 });
    // The clients were answered by the primary only.
    expect((await primary.stats()).cache).toMatchObject({ misses: 20, hits: 20, warmCopies: 0 });
  });

  it('a warm-up copies every live read to its target until it has answered that many, then stops', async () => {
    const [primary, echo, target] = await Promise.all([api(), api(), api()]);
    const r = await Router.create({
      service: 'api',
      fastPath,
      backends: [{ id: 'p', host: '127.0.0.1', port: primary.port }],
    });
    cleanups.push(() => r.close());
    r.setWarmReads([{ id: 'e', host: '127.0.0.1', port: echo.port }], 0); // the pool's echo: no sample
    const warming = r.warmUp({ id: 't', host: '127.0.0.1', port: target.port }, 30, 20_000);
    // Live traffic: reads and a write. The warm-up ends on its own once 30 copies were answered.
    let ended: unknown;
    void warming.then((w) => (ended = w));
    for (let i = 0; i < 100 && ended === undefined; i++) {
      await (await request(`${r.url}/item/k${i % 10}`)).body.text();
      if (i === 5) await (await request(`${r.url}/item/k0`, { method: 'POST' })).body.text();
    }
    const w = await warming;
    expect(w).toMatchObject({ source: 'live', completed: 30, failed: 0, dropped: 0, ended: 'done' });
    const copies = (await target.stats()).cache.warmCopies;
    expect(copies).toBe(30);
    // After it: no more copies to it, none to the unsampled echo.
    for (let i = 0; i < 10; i++) await (await request(`${r.url}/item/k${i}`)).body.text();
    expect((await target.stats()).cache.warmCopies).toBe(30);
    expect((await echo.stats()).cache.warmCopies).toBe(0);
    expect(r.stats().warmReads.sent).toBe(30);
  });

  it('a warm-up replays the recent live reads to its target at once, with no live traffic, and without their credentials', async () => {
    const [primary, target] = await Promise.all([api(), api()]);
    // A plain listener beside it sees what a replayed read carries.
    const seen: Array<Record<string, string | string[] | undefined>> = [];
    const probe = createServer((req, res) => {
      seen.push(req.headers);
      res.end('ok');
    });
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => probe.close(r)));
    const r = await Router.create({
      service: 'api',
      fastPath,
      backends: [{ id: 'p', host: '127.0.0.1', port: primary.port }],
    });
    cleanups.push(() => r.close());
    const headers = {
      authorization: 'Bearer secret-token',
      cookie: 'session=secret',
      accept: 'application/json',
    };
    for (let i = 0; i < 20; i++) await (await request(`${r.url}/item/k${i}`, { headers })).body.text();
    await (await request(`${r.url}/item/w`, { method: 'POST' })).body.text(); // a write: never sampled
    expect(r.stats().readSample).toMatchObject({ reads: 20, recorded: 20 });
    // The live traffic has stopped: the warm-up's 200 reads come from the sample, 10 rounds of it.
    const w = await r.warmUp({ id: 't', host: '127.0.0.1', port: target.port }, 200, 20_000);
    expect(w).toMatchObject({
      source: 'replay',
      sampled: 20,
      sent: 200,
      completed: 200,
      failed: 0,
      ended: 'done',
    });
    const cache = (await target.stats()).cache;
    expect(cache).toMatchObject({ warmCopies: 200, misses: 20, hits: 180, size: 20 });
    expect((await primary.stats()).cache.warmCopies).toBe(0);
    const p = await r.warmUp(
      { id: 'probe', host: '127.0.0.1', port: (probe.address() as AddressInfo).port },
      20,
      20_000,
    );
    expect(p).toMatchObject({ source: 'replay', completed: 20 });
    expect(seen).toHaveLength(20);
    for (const h of seen) {
      expect(h).toMatchObject({ accept: 'application/json', 'x-understudy-mirror': 'warm' });
      expect(h.authorization).toBeUndefined();
      expect(h.cookie).toBeUndefined();
    }
  });

  it('a replayed warm-up to an instance that does not answer keeps at most 8 reads in flight and ends at its timeout', async () => {
    const primary = await api();
    // Accepts connections and reads requests, never answers.
    const requests: string[] = [];
    const mute = createNetServer((sock) => sock.on('data', (d) => requests.push(d.toString('latin1'))));
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => mute.close(r)));
    const r = await Router.create({
      service: 'api',
      fastPath,
      backends: [{ id: 'p', host: '127.0.0.1', port: primary.port }],
    });
    cleanups.push(() => r.close());
    for (let i = 0; i < 5; i++) await (await request(`${r.url}/item/k${i}`)).body.text();
    const port = (mute.address() as AddressInfo).port;
    const w = await r.warmUp({ id: 'mute', host: '127.0.0.1', port }, 2000, 300);
    expect(w).toMatchObject({ source: 'replay', sampled: 5, sent: 8, completed: 0, ended: 'timeout' });
    expect(requests.join('').match(/^GET \/item\/k\d /gm)).toHaveLength(8);
  });

  it('a warm-up without live reads ends at its timeout, having sent nothing', async () => {
    const target = await api();
    const r = await Router.create({ service: 'api', fastPath, backends: [] });
    cleanups.push(() => r.close());
    const w = await r.warmUp({ id: 't', host: '127.0.0.1', port: target.port }, 100, 200);
    expect(w).toMatchObject({ source: 'live', sent: 0, completed: 0, ended: 'timeout' });
  });

  it('a sample rate of 0 copies nothing', async () => {
    const [primary, echo] = await Promise.all([api(), api()]);
    const r = await Router.create({
      service: 'api',
      fastPath,
      backends: [{ id: 'p', host: '127.0.0.1', port: primary.port }],
    });
    cleanups.push(() => r.close());
    r.setWarmReads([{ id: 'e', host: '127.0.0.1', port: echo.port }], 0);
    for (let i = 0; i < 10; i++) await (await request(`${r.url}/item/k${i}`)).body.text();
    expect(r.stats().warmReads.sent).toBe(0);
    expect((await echo.stats()).cache.size).toBe(0);
  });
});
