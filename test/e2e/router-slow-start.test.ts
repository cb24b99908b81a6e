// The built-in router's gradual traffic shift, with real backends on 127.0.0.1.
import { afterEach, describe, expect, it } from 'vitest';
import { Router } from '../../src/router/index.js';
import { client, httpBackend, type TestBackend } from './fixtures/router/backends.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function backend(id: string): Promise<TestBackend> {
  const b = await httpBackend(id);
  cleanups.push(() => b.close());
  return b;
}

const at = (b: TestBackend) => ({ id: b.id, host: '127.0.0.1', port: b.port });

describe.each([
  ['raw-socket fast path', true],
  ['node:http path only', false],
])('Router slow start (%s)', (_name, fastPath) => {
  async function countAfterJoin(slowStartMs: number): Promise<{ old: number; joined: number }> {
    const a = await backend('old');
    const b = await backend('joined');
    const r = await Router.create({ service: 'svc', fastPath, backends: [at(a)] });
    cleanups.push(() => r.close());
    const c = client();
    cleanups.push(() => c.agent.close());
    r.setBackends([at(a), { ...at(b), slowStartMs }]);
    const seen = { old: 0, joined: 0 };
    for (let i = 0; i < 220; i++) {
      const res = await c.send(`${r.url}/x`);
      seen[res.headers['x-backend'] as 'old' | 'joined']++;
    }
    const joined = r.stats().backends.find((s) => s.id === 'joined');
    expect(joined?.rampingUp).toBe(slowStartMs > 0);
    return seen;
  }

  it('a member joining with a slow start gets about a tenth of its share at first', async () => {
    // A 10-minute window: the few hundred requests here all land in its first percent.
    const seen = await countAfterJoin(600_000);
    expect(seen.joined).toBeGreaterThanOrEqual(15);
    expect(seen.joined).toBeLessThanOrEqual(30);
  });

  it('a member joining without a slow start takes an equal share at once', async () => {
    const seen = await countAfterJoin(0);
    expect(seen.joined).toBeGreaterThanOrEqual(100);
    expect(seen.old).toBeGreaterThanOrEqual(100);
  });
});
