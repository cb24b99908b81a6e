import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpecFile } from '../config/index.js';
import { ControlPlane } from '../control/index.js';
import { ProcessRuntime } from '../runtime/index.js';
import { SqliteStateStore } from '../store/index.js';
import { ApiClient } from './api-client.js';
import { ApiServer } from './api-server.js';

const dataDir = mkdtempSync(join(tmpdir(), 'understudy-api-'));
let api: ApiServer;
let control: ControlPlane;
let store: SqliteStateStore;
let token: string;

beforeAll(async () => {
  const specFile = join(dataDir, 'spec.yaml');
  writeFileSync(
    specFile,
    `services:\n  - name: sleeper\n    command: [sleep, '30']\n    ports: {}\n    echo: { count: 1 }\n`,
  );
  store = await SqliteStateStore.create({ dataDir });
  const runtime = await ProcessRuntime.create({});
  control = await ControlPlane.create({ spec: loadSpecFile(specFile), dataDir, store, runtime });
  api = await ApiServer.start({ control, dataDir });
  await control.start();
  token = (await import('node:fs')).readFileSync(join(dataDir, 'token'), 'utf8').trim();
});

afterAll(async () => {
  await api.close();
  await control.close();
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function call(
  path: string,
  init: RequestInit & { auth?: string | false } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (init.auth !== false) headers.authorization = `Bearer ${init.auth ?? token}`;
  const res = await fetch(api.endpoint.url + path, { ...init, headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the HTTP API', () => {
  it('stores its token with mode 0600', () => {
    expect(statSync(join(dataDir, 'token')).mode & 0o777).toBe(0o600);
    expect(token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('answers 401 without the bearer token, and with a wrong one', async () => {
    for (const auth of [false, 'nope'] as const) {
      const r = await call('/v1/services', { auth });
      expect(r.status).toBe(401);
      expect(r.body.error).toMatchObject({ code: 'UNDERSTUDY_ERR_API_AUTH' });
    }
  });

  it('refuses a percent-encoded failover without the token and leaves the primary running', async () => {
    const primary = control.instances().find((i) => i.role === 'primary' && i.service === 'sleeper');
    expect(primary?.pid).toBeGreaterThan(0);
    // node's client sends the path as written; fetch would normalise it.
    const status = await new Promise<number>((resolve, reject) => {
      const { hostname, port } = new URL(api.endpoint.url);
      const req = request(
        { hostname, port, method: 'POST', path: '/%761/services/sleeper/failover' },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(401);
    const after = control.instances().find((i) => i.id === primary?.id);
    expect(after).toMatchObject({ role: 'primary', pid: primary?.pid });
    expect(() => process.kill(primary?.pid ?? 0, 0)).not.toThrow();
  });

  it('serves healthz without a token', async () => {
    expect((await call('/healthz', { auth: false })).status).toBe(200);
  });

  it('lists services with a running primary and echo', async () => {
    const r = await call('/v1/services');
    const [svc] = r.body.services as { name: string; instances: { role: string; pid: number }[] }[];
    expect(svc?.name).toBe('sleeper');
    expect(svc?.instances.map((i) => i.role).sort()).toEqual(['echo', 'primary']);
    expect(svc?.instances.every((i) => i.pid > 0)).toBe(true);
  });

  it('validates query parameters with field-naming errors', async () => {
    const r = await call('/v1/events?limit=lots&colour=red');
    expect(r.status).toBe(400);
    const error = r.body.error as { code: string; problems: { field: string }[] };
    expect(error.code).toBe('UNDERSTUDY_ERR_API_REQUEST');
    expect(error.problems.map((p) => p.field).sort()).toEqual(['query', 'query.limit']);
  });

  it('validates request bodies, including malformed JSON', async () => {
    const inst = (await call('/v1/instances')).body.instances as { id: string }[];
    const id = inst[0]?.id ?? '';
    const wrongType = await call(`/v1/instances/${id}/restart`, {
      method: 'POST',
      body: JSON.stringify({ reason: 42 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(wrongType.status).toBe(400);
    expect(
      (wrongType.body.error as { problems: { field: string; message: string }[] }).problems[0],
    ).toMatchObject({ field: 'body.reason' });
    const malformed = await call(`/v1/instances/${id}/restart`, {
      method: 'POST',
      body: '{"reason":',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).toBe(400);
    expect((malformed.body.error as { code: string }).code).toBe('UNDERSTUDY_ERR_API_REQUEST');
  });

  it('restarts an instance on request and records the decision (a lone primary only when forced)', async () => {
    const client = ApiClient.fromDataDir(dataDir);
    const first = (await client.instances()).find((i) => i.role === 'primary');
    await expect(client.restart(first?.id ?? '', 'test restart')).rejects.toMatchObject({
      code: 'UNDERSTUDY_ERR_UNSAFE',
      details: { status: 409 },
    });
    const decision = await client.restart(first?.id ?? '', 'test restart', true);
    expect(decision).toMatchObject({ kind: 'restart', instance: first?.id, why: 'requested: test restart' });
    expect(decision.outcome).toEqual({ status: 'ok', detail: expect.stringMatching(/^pid \d+/) });
    const after = (await client.instances()).find((i) => i.id === first?.id);
    expect(after?.pid).not.toBe(first?.pid);
    const events = await client.events({ service: 'sleeper' });
    expect(events.some((e) => e.seq === decision.seq && e.outcome.status === 'ok')).toBe(true);
  });

  it('answers 404 with the error shape for unknown instances and routes', async () => {
    expect((await call('/v1/instances/nope')).status).toBe(404);
    const r = await call('/v1/instances/nope/restart', {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(404);
    expect((r.body.error as { code: string }).code).toBe('UNDERSTUDY_ERR_NOT_FOUND');
    expect((await call('/v1/nothing')).status).toBe(404);
  });

  it('publishes an OpenAPI document naming every route', async () => {
    const r = await call('/v1/openapi.json');
    expect(r.body.openapi).toBe('3.1.0');
    expect(Object.keys(r.body.paths as object)).toEqual(
      expect.arrayContaining([
        '/v1/services',
        '/v1/instances',
        '/v1/events',
        '/healthz',
        '/v1/instances/{id}/restart',
      ]),
    );
  });
});
