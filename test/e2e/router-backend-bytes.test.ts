// The built-in router counts the bytes it exchanges with each backend (the network I/O of an HTTP
// service's instances in their profile), on both HTTP paths, with real backends on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import { Router } from '../../src/router/index.js';
import { client, httpBackend } from './fixtures/router/backends.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

const ANSWER = 'x'.repeat(50_000);

describe.each([
  ['raw-socket fast path', true],
  ['node:http path only', false],
])('Router byte counters per backend (%s)', (_name, fastPath) => {
  it('counts request and response bytes, heads included, per backend', async () => {
    const big = await httpBackend('big', (req, res) => {
      if (req.method !== 'GET') return false;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(ANSWER);
      return true;
    });
    cleanups.push(() => big.close());
    const r = await Router.create({
      service: 'svc',
      fastPath,
      backends: [{ id: 'big', host: '127.0.0.1', port: big.port }],
    });
    cleanups.push(() => r.close());
    const c = client();
    cleanups.push(() => c.agent.close());
    for (let i = 0; i < 4; i++) expect((await c.send(`${r.url}/read/${i}`)).text.length).toBe(50_000);
    const afterReads = r.stats().backends.find((b) => b.id === 'big')?.bytes;
    // Four answers of 50 000 bytes plus their heads (well under 500 bytes each); four request heads.
    expect(afterReads?.in).toBeGreaterThan(4 * 50_000);
    expect(afterReads?.in).toBeLessThan(4 * 50_500);
    expect(afterReads?.out).toBeGreaterThan(4 * 40);
    expect(afterReads?.out).toBeLessThan(4 * 1000);
    // A 100 000-byte upload (a write: the node:http path on both) is counted as it is sent.
    const upload = await c.send(`${r.url}/write`, { method: 'POST', body: Buffer.alloc(100_000, 1) });
    expect(upload.text).toBe('big POST /write 100000');
    const afterWrite = r.stats().backends.find((b) => b.id === 'big')?.bytes;
    expect((afterWrite?.out ?? 0) - (afterReads?.out ?? 0)).toBeGreaterThan(100_000);
    expect((afterWrite?.out ?? 0) - (afterReads?.out ?? 0)).toBeLessThan(101_000);
  });
});
