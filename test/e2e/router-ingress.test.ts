// The router's connections to instances on other hosts go through the TLS ingress of their host's
// agent (src/agent/tls-ingress.ts), on loopback here: the backend's address (192.0.2.10, TEST-NET-1) is
// never dialled itself — a plain connection there could not succeed — only the ingress its host has,
// which pipes the connection to the real instance (bound to loopback only).
import { connect as netConnect } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentServer,
  issueLeaf,
  TlsIngress,
  type ClusterCa,
  type LocalAgent,
  type TlsIdentity,
} from '../../src/agent/index.js';
import { Router } from '../../src/router/index.js';
import { startIngressHost, type IngressHost } from '../lib/ingress-host.js';

const SECRET = 'router-ingress-secret-0123456789abcdef';
const REMOTE = '192.0.2.10';
let host: IngressHost | undefined;
let local: LocalAgent;
let ca: ClusterCa;
let control: TlsIdentity;
let ingress: TlsIngress;
let ingressPort: number;
let webPort: number;
let echoPort: number;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  host = await startIngressHost({ secret: SECRET, prefix: 'us-router-ingress-' });
  ({ local, ca, control, ingress, port: ingressPort } = host);
  webPort = await local.allocatePort();
  echoPort = await local.allocatePort();
  await host.startInstance(
    'web-1',
    `require('http').createServer((q, s) => { q.resume(); q.on('end', () => s.end('web-1 ' + q.method)); }).listen(${webPort}, '127.0.0.1')`,
    webPort,
  );
  await host.startInstance(
    'echo-1',
    `require('net').createServer((s) => s.pipe(s)).listen(${echoPort}, '127.0.0.1')`,
    echoPort,
  );
}, 30_000);

afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
  await host?.close();
});

async function router(mode: 'http' | 'tcp'): Promise<Router> {
  const r = await Router.create({ service: mode === 'http' ? 'web' : 'echo', mode, connectTimeoutMs: 2000 });
  closers.push(() => r.close());
  r.setUpstreamTls({
    ...control,
    ingressOf: (address) => (address === REMOTE ? { host: '127.0.0.1', port: ingressPort } : undefined),
  });
  return r;
}

describe('router → instance on another host, through TLS', () => {
  it('reaches the instance through its host’s TLS ingress, reusing the connection for later requests', async () => {
    const r = await router('http');
    r.setBackends([{ id: 'web-1', host: REMOTE, port: webPort }]);
    const before = ingress.stats().forwarded;
    for (let i = 0; i < 8; i++) {
      const res = await request(`${r.url}/item/${i}`);
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('web-1 GET');
    }
    for (let i = 0; i < 3; i++) {
      const res = await request(`${r.url}/item/${i}`, { method: 'POST', body: `v${i}` });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('web-1 POST');
    }
    const up = r.stats().upstream;
    expect(up.plain).toBe(0);
    // Keep-alive: one connection for the fast path's reads and one for the full path's writes at most.
    expect(up.tls).toBeGreaterThanOrEqual(1);
    expect(up.tls).toBeLessThanOrEqual(2);
    expect(ingress.stats().forwarded - before).toBe(up.tls);
  });

  it('sends mirrored copies to a shadow on another host through the ingress as well', async () => {
    const r = await router('http');
    r.setBackends([{ id: 'web-1', host: '127.0.0.1', port: webPort }]);
    r.setShadows([{ id: 'web-1', host: REMOTE, port: webPort }], 1);
    const res = await request(`${r.url}/mirrored`);
    expect(await res.body.text()).toBe('web-1 GET');
    for (let i = 0; i < 100 && r.stats().mirror.completed < 1; i++)
      await new Promise((w) => setTimeout(w, 20));
    expect(r.stats().mirror).toMatchObject({ completed: 1, failed: 0 });
    expect(r.stats().upstream.tls).toBe(1);
  });

  it('pipes a TCP-mode service’s bytes through the ingress too', async () => {
    const r = await router('tcp');
    r.setBackends([{ id: 'echo-1', host: REMOTE, port: echoPort }]);
    const s = netConnect({ host: '127.0.0.1', port: r.address.port });
    closers.push(async () => s.destroy());
    const reply = await new Promise<string>((resolve, reject) => {
      s.once('data', (d: Buffer) => resolve(d.toString()));
      s.once('error', reject);
      s.write('ping through TLS');
    });
    expect(reply).toBe('ping through TLS');
    expect(r.stats().upstream).toMatchObject({ tls: 1, plain: 0 });
  });

  it('refuses an ingress whose certificate does not name the address dialled: no request reaches the instance', async () => {
    const liar = new TlsIngress({ agent: local, log: () => undefined });
    const wrong = await AgentServer.start({
      agent: local,
      secret: SECRET,
      tls: await issueLeaf(ca, { name: 'h9', ips: ['10.9.9.9'] }),
      ingress: liar,
    });
    closers.push(() => wrong.close());
    const r = await Router.create({ service: 'web', waitForBackendMs: 300, connectTimeoutMs: 2000 });
    closers.push(() => r.close());
    r.setUpstreamTls({
      ...control,
      ingressOf: () => ({ host: '127.0.0.1', port: Number(new URL(wrong.url).port) }),
    });
    r.setBackends([{ id: 'web-1', host: REMOTE, port: webPort }]);
    const res = await request(`${r.url}/x`);
    expect(res.statusCode).toBe(503);
    await res.body.dump();
    expect(r.stats().upstream.tlsErrors).toBeGreaterThanOrEqual(1);
    expect(liar.stats().forwarded).toBe(0);
  });

  it('dials an instance on this machine in plain TCP even with TLS set', async () => {
    const r = await router('http');
    r.setBackends([{ id: 'web-1', host: '127.0.0.1', port: webPort }]);
    const res = await request(`${r.url}/local`);
    expect(await res.body.text()).toBe('web-1 GET');
    expect(r.stats().upstream).toMatchObject({ tls: 0 });
    expect(r.stats().upstream.plain).toBeGreaterThanOrEqual(1);
  });
});
