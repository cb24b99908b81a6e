// Router → instance on another host goes through TLS, on real hosts (network namespaces): etcd and a
// control replica in `s1`, an `understudy agent` in `h1`. The service's instance listens on h1's
// loopback only, so nothing in s1 can reach it in plain TCP; yet requests through the leader's router
// in s1 are answered by it — through h1's agent's TLS ingress. A client without a certificate of the
// cluster CA is refused there, with a log line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureClusterKey } from '../../src/agent/index.js';
import {
  startNetnsAgent,
  startNetnsControl,
  startNetnsEtcd,
  type NetnsProc,
} from '../../src/cli/netns-cluster.js';
import { netnsSupport, NetnsLab } from '../lib/netns.js';
import { waitFor } from './lib/cli.js';

const support = netnsSupport();
if (!support.ok) console.warn(`skipping router TLS across network namespaces: ${support.reason}`);

const ROUTER_PORT = 18081;

describe.skipIf(!support.ok)('router → instance across hosts through the TLS ingress', () => {
  let lab: NetnsLab;
  let dir: string;
  let agent: NetnsProc;
  let control: NetnsProc;

  /** Runs a node script in namespace `ns`; its standard output. */
  const node = (ns: string, script: string): string =>
    lab.run(ns, process.execPath, ['-e', script]).stdout.trim();

  /** One GET from `ns` to `url`: `<status> <body>`, or `error <code>`. */
  const get = (ns: string, url: string): string =>
    node(
      ns,
      `const r = require('http').get(${JSON.stringify(url)}, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => console.log(res.statusCode + ' ' + b)); });
       r.setTimeout(2000, () => r.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
       r.on('error', (e) => console.log('error ' + e.code));`,
    );

  beforeAll(async () => {
    lab = NetnsLab.create({ hosts: ['s1', 'h1'] });
    dir = mkdtempSync(join(tmpdir(), 'us-hosts-tls-ingress-'));
    const etcd = await startNetnsEtcd(lab, { members: ['s1'], dataDir: dir });
    const key = join(dir, 'cluster.key');
    ensureClusterKey(key);
    const started = await startNetnsAgent(lab, { store: etcd.url, host: 'h1', zone: 'z1', clusterKey: key });
    agent = started.proc;
    if (!started.serving) throw new Error(`agent h1 did not start: ${agent.out()}`);
    const spec = join(dir, 'web.yaml');
    // The instance binds h1's loopback only and answers with its id and port.
    const server = `require('http').createServer((q, s) => s.end('{instance} on {port}')).listen({port}, '127.0.0.1')`;
    writeFileSync(
      spec,
      `services:
  - name: web
    command: [${JSON.stringify(process.execPath)}, -e, ${JSON.stringify(server)}]
    ports: { http: 0 }
    routing: { listen: '0.0.0.0:${ROUTER_PORT}' }
    health: { exec: ['true'], interval: 200ms, timeout: 1s }
    echo: { count: 0 }
`,
    );
    control = startNetnsControl(lab, 's1', {
      spec,
      store: etcd.url,
      name: 'c-s1',
      clusterKey: key,
      dataDir: join(dir, 'control-s1'),
    });
  }, 60_000);

  afterAll(async () => {
    await lab?.close(); // kills etcd, the agent, the control replica and the instance with their namespaces
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the TLS ingress on the agent’s TLS port', () => {
    expect(agent.out()).toMatch(
      /serving https:\/\/[\d.]+:\d+ .*TLS ingress to its instances on the same port/,
    );
  });

  it('answers through the router from the instance on h1, which nothing in s1 can reach in plain TCP', async () => {
    const router = `http://${lab.address('s1')}:${ROUTER_PORT}/`;
    let answer = '';
    await waitFor(
      () => /^200 /.test((answer = get('s1', router))),
      40_000,
      () =>
        `the router in s1 to answer 200 (last: ${answer})\ncontrol: ${control.out().slice(-2000)}\nagent: ${agent.out().slice(-2000)}`,
    );
    const m = /^200 (web-\d+) on (\d+)$/.exec(answer);
    expect(m).not.toBeNull();
    const port = m![2]!;
    // Plain TCP from the router's host to the instance's host: refused (it listens on h1's loopback).
    expect(get('s1', `http://${lab.address('h1')}:${port}/`)).toBe('error ECONNREFUSED');
    // Several more requests, all answered by it.
    for (let i = 0; i < 5; i++) expect(get('s1', router)).toBe(`200 ${m![1]} on ${port}`);
  }, 60_000);

  it('refuses a TLS client without a certificate of the cluster CA at the ingress, and logs why', async () => {
    const api = /serving (https:\/\/[\d.]+:\d+)/.exec(agent.out())![1]!;
    const { hostname, port } = new URL(api);
    const out = node(
      's1',
      `const s = require('tls').connect({ host: '${hostname}', port: ${port}, servername: '1.web-1.understudy', rejectUnauthorized: false });
       let got = ''; s.on('data', (d) => (got += d)); s.on('secureConnect', () => s.write('GET / HTTP/1.1\\r\\nhost: x\\r\\n\\r\\n'));
       s.on('error', () => undefined); s.on('close', () => console.log('closed ' + got.length));`,
    );
    expect(out).toBe('closed 0');
    await waitFor(
      () => /ingress refused .*1\.web-1\.understudy: .*\(none presented\)/.test(agent.out()),
      5000,
      () => `the refusal in the agent's log: ${agent.out().slice(-1000)}`,
    );
  });
});
