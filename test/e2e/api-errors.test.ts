import { chmodSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, UnderstudyError } from '../../src/errors/index.js';
import { rawRequest, sendRaw, startApiRig, type ApiRig } from './lib/api-rig.js';

let rig: ApiRig;

beforeAll(async () => {
  rig = await startApiRig();
});
afterAll(async () => {
  await rig.close();
});
beforeEach(() => {
  rig.stub.calls.length = 0;
  rig.stub.failWith = undefined;
});

async function call(
  method: string,
  target: string,
  options: { headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; error: { code: string; message: string } }> {
  const headers = { authorization: `Bearer ${rig.token}`, ...options.headers };
  const r = await sendRaw(rig.port, rawRequest(rig.port, method, target, { ...options, headers }));
  return {
    status: r.status,
    error: (JSON.parse(r.body) as { error: { code: string; message: string } }).error,
  };
}

describe('the errors of the control API', () => {
  it.each([
    [ErrorCode.StoreConflict, 409],
    [ErrorCode.StoreUnavailable, 503],
    [ErrorCode.NotReplicated, 503],
    [ErrorCode.Usage, 400],
    [ErrorCode.Failover, 409],
    [ErrorCode.NotFound, 404],
  ])('answers a %s from the control plane with %i and keeps its code', async (code, status) => {
    rig.stub.failWith = new UnderstudyError(code, 'the control plane refused');
    const r = await call('POST', '/v1/services/kv/failover', {
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(r).toEqual({ status, error: { code, message: 'the control plane refused' } });
  });

  it('answers an unexpected error with 500 UNDERSTUDY_ERR_INTERNAL and never a stack', async () => {
    rig.stub.failWith = new Error('disk on fire');
    const r = await sendRaw(
      rig.port,
      rawRequest(rig.port, 'GET', '/v1/services', { headers: { authorization: `Bearer ${rig.token}` } }),
    );
    expect(r.status).toBe(500);
    expect(JSON.parse(r.body)).toEqual({ error: { code: ErrorCode.Internal, message: 'disk on fire' } });
    expect(r.body).not.toMatch(/\bat .*\.ts/);
  });

  it('answers an unknown service with 404 UNDERSTUDY_ERR_NOT_FOUND', async () => {
    expect(await call('GET', '/v1/services/nope')).toMatchObject({
      status: 404,
      error: { code: ErrorCode.NotFound },
    });
  });

  it("keeps the status of fastify's own rejections (400, 413, 415) with UNDERSTUDY_ERR_API_REQUEST", async () => {
    const json = { 'content-type': 'application/json' };
    const malformed = await call('POST', '/v1/shutdown', { headers: json, body: '{"reason":' });
    const tooLarge = await call('POST', '/v1/shutdown', {
      headers: json,
      body: JSON.stringify({ reason: 'x'.repeat(70_000) }),
    });
    const media = await call('POST', '/v1/shutdown', {
      headers: { 'content-type': 'text/x-nope' },
      body: 'hi',
    });
    const badUrl = await call('GET', '/v1/services/%zz');
    expect([malformed.status, tooLarge.status, media.status, badUrl.status]).toEqual([400, 413, 415, 400]);
    for (const r of [malformed, tooLarge, media, badUrl]) expect(r.error.code).toBe(ErrorCode.ApiRequest);
    expect(rig.stub.calls).toEqual([]);
  });
});

describe('the endpoint file of the control API', () => {
  it('is 0600 even when a stale temporary file with a wider mode is in the way', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'understudy-api-json-'));
    const stale = join(dataDir, `api.json.${process.pid}.tmp`);
    writeFileSync(stale, 'stale');
    chmodSync(stale, 0o644);
    const other = await startApiRig(dataDir);
    try {
      expect(statSync(join(dataDir, 'api.json')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dataDir, 'token')).mode & 0o777).toBe(0o600);
    } finally {
      await other.close();
    }
  });
});
