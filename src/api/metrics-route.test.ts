import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Telemetry } from '../telemetry/index.js';
import type { ApiControl } from './api-control.js';
import { ApiServer } from './api-server.js';

/** A control plane no metrics request may reach: /metrics reads the telemetry only. */
const untouchable = new Proxy({} as ApiControl, {
  get: (_t, name) => {
    throw new Error(`the metrics route reached the control plane (${String(name)})`);
  },
});

const open: { api: ApiServer; dataDir: string }[] = [];

afterEach(async () => {
  for (const { api, dataDir } of open.splice(0)) {
    await api.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

async function start(metricsPublic?: boolean): Promise<{ url: string; token: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'understudy-metrics-'));
  const telemetry = new Telemetry();
  telemetry.decision({ service: 'kv', kind: 'start' });
  const api = await ApiServer.start({
    control: untouchable,
    dataDir,
    telemetry,
    ...(metricsPublic === undefined ? {} : { metricsPublic }),
  });
  open.push({ api, dataDir });
  return { url: api.endpoint.url, token: readFileSync(join(dataDir, 'token'), 'utf8').trim() };
}

describe('GET /metrics', () => {
  it('needs the bearer token by default, and serves the Prometheus text exposition with it', async () => {
    const { url, token } = await start();
    const anonymous = await fetch(`${url}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: 'UNDERSTUDY_ERR_API_AUTH' } });
    const wrong = await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toContain('# TYPE understudy_decisions_total counter');
    expect(body).toContain('understudy_decisions_total{service="kv",kind="start"} 1');
  });

  it('is public with metricsPublic, while every other route still needs the token', async () => {
    const { url } = await start(true);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('understudy_decisions_total{service="kv",kind="start"} 1');
    for (const path of ['/v1/services', '/v1/status', '/metrics/../v1/services', '/nope']) {
      expect((await fetch(`${url}${path}`)).status, path).toBe(401);
    }
  });
});
