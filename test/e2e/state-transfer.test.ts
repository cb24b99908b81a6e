// Runtime-state transfer between two real examples/api processes: the running one's cache streamed
// into the new one before it serves.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { transferState } from '../../src/replication/index.js';
import { startExampleApi, type ExampleApi } from './fixtures/api/example-api.js';

describe('transferState with examples/api', () => {
  let running: ExampleApi;
  let fresh: ExampleApi;
  beforeAll(async () => {
    [running, fresh] = await Promise.all([
      startExampleApi({ UNDERSTUDY_STATE_TOKEN: 'token-of-running' }),
      startExampleApi({ UNDERSTUDY_STATE_TOKEN: 'token-of-fresh' }),
    ]);
    for (let i = 0; i < 100; i++) await (await request(`${running.url}/item/k${i}`)).body.text();
  });
  afterAll(async () => {
    await running?.close();
    await fresh?.close();
  });

  const ends = (fromToken = 'token-of-running', toToken = 'token-of-fresh') => ({
    from: { host: '127.0.0.1', port: running.port, token: fromToken },
    to: { host: '127.0.0.1', port: fresh.port, token: toToken },
    exportPath: '/state/export',
    importPath: '/state/import',
  });

  it("refuses a wrong token at either end, and the new instance's cache stays empty", async () => {
    await expect(transferState(ends('guess'))).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_STATE_TRANSFER',
      details: { step: 'export' },
    });
    await expect(transferState(ends(undefined, 'guess'))).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_STATE_TRANSFER',
      details: { step: 'import' },
    });
    expect((await fresh.stats()).cache.size).toBe(0);
  });

  it('stops a transfer larger than maxBytes', async () => {
    await expect(transferState({ ...ends(), maxBytes: 200 })).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_STATE_TRANSFER',
      details: { step: 'limit' },
    });
  });

  it('moves the whole cache, and the new instance then answers those keys as hits', async () => {
    const r = await transferState(ends());
    expect(r.importReply).toMatchObject({ imported: 100, rejected: 0 });
    expect(r.bytes).toBeGreaterThan(100 * 20);
    for (let i = 0; i < 100; i++) await (await request(`${fresh.url}/item/k${i}`)).body.text();
    expect((await fresh.stats()).cache).toMatchObject({ size: 100, hits: 100, misses: 0 });
  });
});
