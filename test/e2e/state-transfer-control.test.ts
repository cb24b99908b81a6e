// The control plane's join point: before a warm echo serves, transferRuntimeState streams the state of
// the running primary (a real examples/api process) into it and records the transfer as a decision.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { serviceSchema } from '../../src/config/index.js';
import { DecisionLog } from '../../src/control/index.js';
import type { InstanceRecord } from '../../src/control/records.js';
import { transferRuntimeState, warmUpCodePaths, type ServingSetHost } from '../../src/control/serving-set.js';
import { stateTokenFor, STATE_TOKEN_ENV } from '../../src/control/state-token.js';
import { Router } from '../../src/router/index.js';
import { SqliteStateStore } from '../../src/store/index.js';
import { startExampleApi, type ExampleApi } from './fixtures/api/example-api.js';

const rec = (id: string, role: 'primary' | 'echo', slot: number, port: number): InstanceRecord => ({
  id,
  service: 'api',
  role,
  slot,
  host: 'local',
  phase: 'running',
  ports: { http: port },
  stateDir: '/nonexistent',
  restarts: [],
  limits: {},
  epoch: 0,
});

describe('transferRuntimeState (stateTransfer in the spec)', () => {
  let dir: string;
  let store: SqliteStateStore;
  let decisions: DecisionLog;
  let primary: ExampleApi;
  let echo: ExampleApi;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'understudy-transfer-'));
    store = await SqliteStateStore.create({ dataDir: dir });
    decisions = await DecisionLog.create({ store });
    [primary, echo] = await Promise.all([
      startExampleApi({ [STATE_TOKEN_ENV]: stateTokenFor('api-1') }),
      startExampleApi({ [STATE_TOKEN_ENV]: stateTokenFor('api-2') }),
    ]);
    for (let i = 0; i < 30; i++) await (await request(`${primary.url}/item/k${i}`)).body.text();
  });
  afterAll(async () => {
    await primary?.close();
    await echo?.close();
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function hostFor(
    stateTransfer: Record<string, unknown>,
    recs: InstanceRecord[],
    router?: Router,
  ): ServingSetHost {
    const spec = serviceSchema.parse({ name: 'api', command: ['node'], stateTransfer });
    const plane = {
      endpointOf: (r: InstanceRecord) => ({ host: '127.0.0.1', port: r.ports.http ?? 0 }),
      router,
    };
    return {
      decisions,
      specOf: () => spec,
      instancesOf: () => recs,
      services: { plane: () => plane },
    } as unknown as ServingSetHost;
  }

  it('streams the primary’s cache into the echo and records the bytes and time', async () => {
    const target = rec('api-2', 'echo', 1, echo.port);
    const host = hostFor({ export: '/state/export', import: '/state/import' }, [
      rec('api-1', 'primary', 0, primary.port),
      target,
    ]);
    await transferRuntimeState(host, target, host.specOf('api'));
    expect((await echo.stats()).cache).toMatchObject({ imported: 30, size: 30 });
    const d = (await decisions.list()).find((x) => x.kind === 'state-transfer' && x.instance === 'api-2');
    expect(d?.outcome.status).toBe('ok');
    expect(d?.inputs).toMatchObject({ from: 'api-1', bytes: expect.any(Number), ms: expect.any(Number) });
  });

  it('records a refused transfer (an instance whose token this control process cannot derive) and goes on', async () => {
    const target = rec('api-9', 'echo', 1, echo.port); // its process holds api-2's token
    const host = hostFor({ export: '/state/export', import: '/state/import' }, [
      rec('api-1', 'primary', 0, primary.port),
      target,
    ]);
    await transferRuntimeState(host, target, host.specOf('api'));
    const d = (await decisions.list()).find((x) => x.kind === 'state-transfer' && x.instance === 'api-9');
    expect(d?.outcome.status).toBe('failed');
    expect(d?.outcome.detail).toMatch(/import answered 403.*serves without the transferred state/);
  });

  it('then warms the echo on copies of live reads (stateTransfer.warmUpReads) before it serves', async () => {
    const router = await Router.create({
      service: 'api',
      backends: [{ id: 'api-1', host: '127.0.0.1', port: primary.port }],
    });
    try {
      const target = rec('api-2', 'echo', 1, echo.port);
      const host = hostFor(
        { export: '/state/export', import: '/state/import', warmUpReads: 40, warmUpTimeout: '20s' },
        [rec('api-1', 'primary', 0, primary.port), target],
        router,
      );
      const before = (await echo.stats()).cache;
      const warming = warmUpCodePaths(host, target, host.specOf('api'));
      let done = false;
      void warming.then(() => (done = true));
      // Live traffic to the serving primary, until the warm-up has what it asked for.
      for (let i = 0; i < 400 && !done; i++)
        await (await request(`${router.url}/item/k${i % 30}`)).body.text();
      expect(await warming).toMatchObject({ reads: 40, completed: 40, ended: 'done' });
      const after = (await echo.stats()).cache;
      // Every copy was a read of a transferred key: answered from the imported cache.
      expect(after.warmCopies - before.warmCopies).toBe(40);
      expect(after.hits - before.hits).toBe(40);
      expect(after.misses).toBe(before.misses);
    } finally {
      await router.close();
    }
  });

  it('warms the echo from the router’s sample of recent reads when no live traffic comes', async () => {
    const router = await Router.create({
      service: 'api',
      backends: [{ id: 'api-1', host: '127.0.0.1', port: primary.port }],
    });
    try {
      for (let i = 0; i < 30; i++) await (await request(`${router.url}/item/k${i}`)).body.text();
      const target = rec('api-2', 'echo', 1, echo.port);
      const host = hostFor(
        { export: '/state/export', import: '/state/import', warmUpReads: 300, warmUpTimeout: '20s' },
        [rec('api-1', 'primary', 0, primary.port), target],
        router,
      );
      const before = (await echo.stats()).cache;
      // No request reaches the router from here on: the 300 reads are the 30 sampled ones, replayed.
      const w = await warmUpCodePaths(host, target, host.specOf('api'));
      expect(w).toMatchObject({ reads: 300, completed: 300, ended: 'done', source: 'replay', sampled: 30 });
      const after = (await echo.stats()).cache;
      expect(after.warmCopies - before.warmCopies).toBe(300);
      expect(after.hits - before.hits).toBe(300); // every key was transferred before
    } finally {
      await router.close();
    }
  });

  it('does no warm-up with warmUpReads 0', async () => {
    const target = rec('api-2', 'echo', 1, echo.port);
    const host = hostFor({ export: '/state/export', import: '/state/import', warmUpReads: 0 }, [target]);
    expect(await warmUpCodePaths(host, target, host.specOf('api'))).toBeUndefined();
  });
});
