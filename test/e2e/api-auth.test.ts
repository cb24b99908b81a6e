import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildOpenApi } from '../../src/api/index.js';
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
});

const chunked = (body: string): string => `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;

/**
 * Spellings of protected routes that reached a handler without the token on 3f26982, and others an
 * attacker would try. [method, target, extra headers, body].
 */
const spellings: [string, string, Record<string, string>?, string?][] = [
  ['POST', '/%761/services/kv/failover'],
  ['POST', '/%761/services/kv/failover', { 'content-type': 'application/json' }, '{}'],
  ['GET', '/%761/services'],
  ['GET', '/v%31/services'],
  ['GET', '/v1/servic%65s'],
  ['GET', '/%76%31/%73ervices'],
  ['GET', 'http://x/v1/services'],
  ['GET', 'HTTP://127.0.0.1/v1/services'],
  ['GET', 'http://127.0.0.1/healthz'],
  ['GET', '/%761/events/stream'],
  ['POST', '/%761/shutdown'],
  [
    'POST',
    '/v1/shutdown',
    { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
    chunked('{}'),
  ],
  ['POST', '/%761/instances/kv-0/restart', { 'content-type': 'application/json' }, '{"reason":"x"}'],
  ['POST', '/v1/services/kv/switchover'],
  ['HEAD', '/v1/services'],
  ['HEAD', '/%761/status'],
  ['OPTIONS', '/v1/services', { origin: 'http://evil.example', 'access-control-request-method': 'POST' }],
  ['OPTIONS', '*'],
  ['GET', '*'],
  ['GET', 'v1/services'],
  ['GET', '/v1/services#x'],
  ['GET', '//v1//services'],
  ['GET', '/./v1/../v1/services'],
  ['GET', '/v1/services/'],
  ['GET', '/v1/services;x=1'],
  ['GET', '/v1/services?x=1'],
  ['GET', '/v1/services%3F'],
  ['GET', '/V1/SERVICES'],
  ['GET', '/%2576/services'],
  ['GET', '/v1%2Fservices'],
  ['GET', '/v1/services/%2F'],
  ['GET', '/v1/services/%'],
  ['GET', '/v1/nothing'],
  ['GET', `/v1/services/${'a'.repeat(5000)}`],
  ['GET', `/v1/services?${'a'.repeat(20_000)}`],
  ['DELETE', '/v1/services/kv'],
  ['POST', '/healthz'],
];

const cases = spellings.map(([method, target, headers, body]) => ({
  method,
  target,
  headers: headers ?? {},
  body,
  label: `${method} ${target.length > 60 ? `${target.slice(0, 30)}… (${target.length} characters)` : target}`,
}));

describe('the control API without the token', () => {
  it.each(cases)(
    'refuses $label with 400 or 401 and reaches nothing',
    async ({ method, target, headers, body }) => {
      const r = await sendRaw(
        rig.port,
        rawRequest(rig.port, method, target, { headers, ...(body === undefined ? {} : { body }) }),
      );
      expect([400, 401, 431]).toContain(r.status);
      if (method !== 'HEAD') expect(r.body).toMatch(/"code":"UNDERSTUDY_ERR_API_(AUTH|REQUEST)"/);
      expect(r.body).not.toContain('"services"');
      expect(rig.stub.calls).toEqual([]);
    },
  );

  it('serves every spelling fastify routes to a protected route once the token is given', async () => {
    const auth = { authorization: `Bearer ${rig.token}` };
    const r = await sendRaw(rig.port, rawRequest(rig.port, 'GET', '/%761/services', { headers: auth }));
    expect(r.status).toBe(200);
    expect(rig.stub.calls.map((c) => c.method)).toEqual(['services']);
    const abs = await sendRaw(
      rig.port,
      rawRequest(rig.port, 'GET', `http://127.0.0.1:${rig.port}/v1/services`, { headers: auth }),
    );
    expect(abs.status).toBe(400);
  });
});

describe('the Host check of the control API', () => {
  const auth = (): Record<string, string> => ({ authorization: `Bearer ${rig.token}` });

  it.each(['127.0.0.1:PORT', 'localhost:PORT', 'LOCALHOST:PORT', '[::1]:PORT'])(
    'accepts Host %s',
    async (host) => {
      const r = await sendRaw(
        rig.port,
        rawRequest(rig.port, 'GET', '/v1/services', {
          headers: auth(),
          host: host.replace('PORT', String(rig.port)),
        }),
      );
      expect(r.status).toBe(200);
    },
  );

  it.each([
    'evil.example:PORT',
    'evil.example',
    '127.0.0.1',
    '127.0.0.1:1',
    'localhost.:PORT',
    '127.0.0.1:PORT@evil.example',
    '',
  ])(
    'refuses Host %j with 421 UNDERSTUDY_ERR_API_HOST, even with the token, and reaches nothing',
    async (host) => {
      const r = await sendRaw(
        rig.port,
        rawRequest(rig.port, 'POST', '/v1/services/kv/failover', {
          headers: auth(),
          host: host.replace('PORT', String(rig.port)),
        }),
      );
      expect(r.status).toBe(421);
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: 'UNDERSTUDY_ERR_API_HOST' } });
      expect(rig.stub.calls).toEqual([]);
    },
  );

  it('refuses an HTTP/1.0 request without a Host header', async () => {
    const r = await sendRaw(
      rig.port,
      `GET /v1/services HTTP/1.0\r\nauthorization: Bearer ${rig.token}\r\n\r\n`,
    );
    expect(r.status).toBe(421);
    expect(rig.stub.calls).toEqual([]);
  });

  it('lets the project client through: ApiClient sends an accepted Host', async () => {
    const { ApiClient } = await import('../../src/api/index.js');
    const services = await ApiClient.fromDataDir(rig.dataDir).services();
    expect(services.map((s) => s.name)).toEqual(['kv']);
  });
});

describe('the route table of the control API', () => {
  it('is the OpenAPI document: every route served is documented, and nothing else', () => {
    const served = rig.api.routes.filter((r) => r.method !== 'HEAD').map((r) => `${r.method} ${r.url}`);
    const paths = buildOpenApi().paths as Record<string, Record<string, unknown>>;
    const documented = Object.entries(paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );
    expect(served.sort()).toEqual(documented.sort());
  });
});

describe('the event stream of the control API', () => {
  it('streams decisions to a GET with the token, and answers a HEAD at once without subscribing', async () => {
    const auth = { authorization: `Bearer ${rig.token}` };
    const get = await sendRaw(rig.port, rawRequest(rig.port, 'GET', '/v1/events/stream', { headers: auth }));
    expect(get.status).toBe(200);
    expect(get.headers['content-type']).toBe('text/event-stream');
    expect(rig.stub.calls.map((c) => c.method)).toEqual(['decisions.subscribe']);
    rig.stub.calls.length = 0;
    const head = await sendRaw(
      rig.port,
      rawRequest(rig.port, 'HEAD', '/v1/events/stream', { headers: auth }),
    );
    expect(head.status).toBe(200);
    expect(rig.stub.calls).toEqual([]);
  });
});
