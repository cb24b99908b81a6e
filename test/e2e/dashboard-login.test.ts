import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiServer } from '../../src/api/index.js';
import { ControlStub } from './lib/api-rig.js';

/**
 * The dashboard's login against a real API server on 127.0.0.1 (over a control-plane stub that records
 * what reached it): one-time codes, the session cookie, CSRF on the failover POST, no data without a
 * session, and the token never in a URL.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'understudy-ui-login-'));
const webDir = join(dataDir, 'web');
let api: ApiServer;
let stub: ControlStub;
let token: string;
let base: string;

beforeAll(async () => {
  mkdirSync(webDir);
  writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>Understudy</title>');
  writeFileSync(join(webDir, 'app.js'), 'console.log(1)');
  stub = new ControlStub();
  api = await ApiServer.start({ control: stub, dataDir, ui: { webDir, loginCodeTtlMs: 60_000 } });
  token = readFileSync(join(dataDir, 'token'), 'utf8').trim();
  base = api.endpoint.url;
});

afterAll(async () => {
  await api.close();
  rmSync(dataDir, { recursive: true, force: true });
});

async function loginCode(): Promise<{ code: string; path: string }> {
  const r = await fetch(`${base}/v1/ui/login-codes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(r.status).toBe(200);
  return (await r.json()) as { code: string; path: string };
}

async function login(): Promise<{ cookie: string; res: Response }> {
  const { path } = await loginCode();
  const res = await fetch(base + path, { redirect: 'manual' });
  const cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
  return { cookie, res };
}

describe('dashboard login', () => {
  it('exchanges a code for an HttpOnly SameSite=Strict cookie and redirects to a URL without the code', async () => {
    const { code, path } = await loginCode();
    expect(path).toBe(`/ui/login?code=${code}`);
    expect(path).not.toContain(token);
    const res = await fetch(base + path, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/ui/');
    const set = res.headers.get('set-cookie') ?? '';
    expect(set).toMatch(/^understudy_session=[\w-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
    expect(set).not.toContain(token);
    expect(set).not.toContain(code);
  });

  it('refuses a code used twice, and a made-up one, with a page saying what to do', async () => {
    const { path } = await loginCode();
    expect((await fetch(base + path, { redirect: 'manual' })).status).toBe(303);
    const again = await fetch(base + path, { redirect: 'manual' });
    expect(again.status).toBe(401);
    expect(again.headers.get('set-cookie')).toBeNull();
    expect(await again.text()).toContain('understudy dashboard');
    expect((await fetch(`${base}/ui/login?code=nope`, { redirect: 'manual' })).status).toBe(401);
  });

  it('does not use up a code on a HEAD (a link preview)', async () => {
    const { path } = await loginCode();
    expect((await fetch(base + path, { method: 'HEAD', redirect: 'manual' })).status).toBe(200);
    expect((await fetch(base + path, { redirect: 'manual' })).status).toBe(303);
  });

  it('needs the bearer token for a login code: a session cannot mint one', async () => {
    const { cookie } = await login();
    const r = await fetch(`${base}/v1/ui/login-codes`, { method: 'POST', headers: { cookie } });
    expect(r.status).toBe(401);
  });

  it('serves the page and assets without a session, but no data', async () => {
    expect((await fetch(`${base}/ui/`)).status).toBe(200);
    const js = await fetch(`${base}/ui/assets/app.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('x-frame-options')).toBe('DENY');
    expect((await fetch(`${base}/ui/assets/..%2Ftoken`)).status).toBe(404);
    stub.calls.length = 0;
    for (const path of [
      '/v1/services',
      '/v1/services/kv/samples',
      '/v1/events',
      '/v1/services/kv/forecast',
    ]) {
      const r = await fetch(base + path, { headers: { cookie: 'understudy_session=forged' } });
      expect(r.status, path).toBe(401);
    }
    expect(stub.calls).toEqual([]);
  });

  it('lets a session read what the dashboard shows, and nothing else', async () => {
    const { cookie } = await login();
    for (const path of [
      '/v1/services',
      '/v1/services/kv/samples',
      '/v1/services/kv/forecast',
      '/v1/events',
    ]) {
      const r = await fetch(base + path, { headers: { cookie } });
      expect(r.status, path).toBe(200);
    }
    const shutdown = await fetch(`${base}/v1/shutdown`, {
      method: 'POST',
      headers: { cookie, 'x-understudy-ui': '1', origin: base, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(shutdown.status).toBe(401);
    expect(stub.calls.some((c) => c.method === 'onShutdown')).toBe(false);
  });

  it('takes a failover POST on a session only with the CSRF header and a same-origin Origin', async () => {
    const { cookie } = await login();
    const post = (headers: Record<string, string>) =>
      fetch(`${base}/v1/services/kv/failover`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json', ...headers },
        body: '{}',
      });
    stub.calls.length = 0;
    expect((await post({ origin: base })).status).toBe(401);
    expect((await post({ 'x-understudy-ui': '1' })).status).toBe(401);
    expect((await post({ 'x-understudy-ui': '1', origin: 'http://evil.example' })).status).toBe(401);
    expect(stub.calls.filter((c) => c.method === 'forceFailover')).toEqual([]);
    expect((await post({ 'x-understudy-ui': '1', origin: base })).status).toBe(200);
    expect(stub.calls.filter((c) => c.method === 'forceFailover')).toHaveLength(1);
  });

  it('answers history and forecast of an unknown service with 404, and a bad query with 400', async () => {
    const { cookie } = await login();
    expect((await fetch(`${base}/v1/services/nope/samples`, { headers: { cookie } })).status).toBe(404);
    expect((await fetch(`${base}/v1/services/nope/forecast`, { headers: { cookie } })).status).toBe(404);
    const bad = await fetch(`${base}/v1/services/kv/samples?after=-1`, { headers: { cookie } });
    expect(bad.status).toBe(400);
    expect(JSON.stringify(await bad.json())).toContain('query.after');
  });

  it('says a service without an autoscaler makes no forecast', async () => {
    const r = await fetch(`${base}/v1/services/kv/forecast`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await r.json()).toMatchObject({ service: 'kv', forecasting: false });
  });
});

describe('an expired login code', () => {
  it('is refused once its lifetime has passed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'understudy-ui-expiry-'));
    let now = 1_000_000;
    const server = await ApiServer.start({
      control: new ControlStub(),
      dataDir: dir,
      ui: { webDir, now: () => now },
    });
    try {
      const t = readFileSync(join(dir, 'token'), 'utf8').trim();
      const r = await fetch(`${server.endpoint.url}/v1/ui/login-codes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t}` },
      });
      const { path } = (await r.json()) as { path: string };
      now += 60_001;
      expect((await fetch(server.endpoint.url + path, { redirect: 'manual' })).status).toBe(401);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
