// The router's request semantics, end to end on real listeners (127.0.0.1, port 0): a write in any
// spelling of its target is replicated before it is acknowledged, or refused; a client cannot strip the
// router's forwarding headers nor send Understudy's internal ones; pipelined requests reach the backend
// in the order sent. Requests go over raw sockets: HTTP clients will not send most of these spellings.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { replicationHooks, ServiceReplication } from '../../src/replication/index.js';
import { normaliseRequestTarget, Router, type RouterOptions } from '../../src/router/index.js';
import { allocatePort } from '../../src/runtime/index.js';
import { httpBackend, type TestBackend } from './fixtures/router/backends.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length) await (cleanups.pop() as () => Promise<unknown>)().catch(() => undefined);
});

async function backend(...args: Parameters<typeof httpBackend>): Promise<TestBackend> {
  const b = await httpBackend(...args);
  cleanups.push(() => b.close());
  return b;
}

async function router(opts: Omit<RouterOptions, 'service'>): Promise<Router> {
  const r = await Router.create({ service: 'svc', ...opts });
  cleanups.push(() => r.close());
  return r;
}

const at = (b: { id: string; port: number }) => ({ id: b.id, host: '127.0.0.1', port: b.port });

/** Writes `bytes` in one write on a fresh connection and returns everything read until the server closes. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('connect', () => s.write(bytes, 'latin1'));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => {
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.on('error', reject);
  });
}

const statusOf = (response: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

describe('a write in any spelling of its target is replicated before it is acknowledged, or refused', () => {
  const kvServer = fileURLToPath(new URL('../../examples/kv/server.mjs', import.meta.url));
  const work = mkdtempSync(join(tmpdir(), 'understudy-target-'));
  const children: ChildProcess[] = [];
  let primary = 0;
  let echo = 0;

  async function startKv(dir: string): Promise<number> {
    const port = await allocatePort();
    const child = spawn(process.execPath, [kvServer, '--port', String(port), '--state', join(work, dir)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await new Promise((resolve) => child.stdout?.once('data', resolve));
    return port;
  }

  beforeAll(async () => {
    primary = await startKv('primary');
    echo = await startKv('echo');
  });
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  async function value(port: number, key: string): Promise<string | undefined> {
    const res = await fetch(`http://127.0.0.1:${port}/kv/${key}`);
    const text = await res.text();
    return res.status === 200 ? text : undefined;
  }

  // [request target (KEY: the key written, AUTH: the router's authority), replicated or refused]
  const spellings: Array<[string, 'replicated' | 'refused']> = [
    ['/kv/KEY', 'replicated'],
    ['http://AUTH/kv/KEY', 'replicated'],
    ['HTTP://AUTH/kv/KEY', 'replicated'],
    ['/k%76/KEY', 'replicated'],
    ['/%6b%76/KEY', 'replicated'],
    ['/x/../kv/KEY', 'replicated'],
    ['/%2e%2e/kv/./KEY', 'replicated'],
    ['//kv//KEY', 'replicated'],
    ['/kv/KEY%2Fx', 'replicated'],
    ['https://AUTH/kv/KEY', 'refused'],
    ['http://user@AUTH/kv/KEY', 'refused'],
    ['/kv/KEY%zz', 'refused'],
    ['/kv/KEY%00', 'refused'],
    ['/kv/KEY#x', 'refused'],
    ['/kv\\KEY', 'refused'],
  ];

  describe.each([true, false])('(fastPath %s)', (fastPath) => {
    let r: Router;
    let repl: ServiceReplication;
    let n = 0;
    beforeAll(async () => {
      repl = new ServiceReplication({
        service: 'kv',
        rules: { methods: ['PUT', 'DELETE'], paths: ['/kv/'], timeoutMs: 5000, strict: true },
        consistency: 'write-through',
        epoch: () => 1,
      });
      repl.addEcho({ instanceId: 'echo', host: '127.0.0.1', port: echo }, 0);
      const hooks = replicationHooks(repl, () => 1);
      r = await Router.create({
        service: 'kv',
        backends: [{ id: 'primary', host: '127.0.0.1', port: primary, epoch: 1 }],
        epoch: 1,
        mutatingMethods: ['PUT', 'DELETE'],
        interceptPathPrefixes: ['/kv/'],
        interceptor: hooks.interceptor,
        afterResponse: hooks.afterResponse,
        fastPath,
      });
    });
    afterAll(async () => {
      await r.close();
      await repl.close();
    });

    it.each(spellings)('PUT %s is %s', async (spelling, want) => {
      const key = `k${++n}-${String(fastPath)}`;
      const auth = `127.0.0.1:${r.address.port}`;
      const target = spelling.replace('KEY', key).replace('AUTH', auth);
      const body = `v-${key}`;
      const response = await raw(
        r.address.port,
        `PUT ${target} HTTP/1.1\r\nHost: ${auth}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      const written = spelling.endsWith('%2Fx') ? `${key}%2Fx` : key;
      if (want === 'refused') {
        expect(statusOf(response)).toBe(400);
        expect(await value(primary, written)).toBeUndefined();
      } else {
        expect(statusOf(response)).toBe(200);
        // Write-through: the client's 2xx was held until the echo applied the write.
        expect(await value(echo, written)).toBe(body);
        expect(await value(primary, written)).toBe(body);
      }
    });

    it("a method in lower case is refused (node's parser, behind both paths)", async () => {
      const auth = `127.0.0.1:${r.address.port}`;
      const key = `lower-${String(fastPath)}`;
      const put = `put /kv/${key} HTTP/1.1\r\nHost: ${auth}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`;
      expect(statusOf(await raw(r.address.port, put))).toBe(400);
      expect(await value(primary, key)).toBeUndefined();
    });

    it('DELETE of an absolute-form target reaches the echo before it is acknowledged', async () => {
      const auth = `127.0.0.1:${r.address.port}`;
      const key = `del-${String(fastPath)}`;
      const put = `PUT /kv/${key} HTTP/1.1\r\nHost: ${auth}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx`;
      expect(statusOf(await raw(r.address.port, put))).toBe(200);
      expect(await value(echo, key)).toBe('x');
      const del = `DELETE http://${auth}/kv/${key} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
      expect(statusOf(await raw(r.address.port, del))).toBe(200);
      expect(await value(echo, key)).toBeUndefined();
    });
  });
});

const names = (b: TestBackend, i: number): string[] => Object.keys(b.seen[i]?.headers ?? {});

describe.each([
  ['the fast path', true],
  ['the node:http path', false],
])('headers a client cannot control, on %s', (_name, fastPath) => {
  it('keeps X-Forwarded-* when the client names them in Connection', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)], fastPath });
    const p = r.address.port;
    const conn = 'Connection: close, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Drop';
    await raw(p, `GET /r HTTP/1.1\r\nHost: svc\r\nX-Drop: 1\r\n${conn}\r\n\r\n`);
    await raw(p, `POST /w HTTP/1.1\r\nHost: svc\r\nX-Drop: 1\r\nContent-Length: 1\r\n${conn}\r\n\r\nx`);
    for (const i of [0, 1]) {
      expect(a.seen[i]?.headers).toMatchObject({
        'x-forwarded-for': '127.0.0.1',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': 'svc',
      });
      expect(a.seen[i]?.headers['x-drop']).toBeUndefined();
    }
  });

  it("strips x-understudy-* headers from client requests, and sends the router's own", async () => {
    const a = await backend('a');
    const r = await router({
      backends: [at(a)],
      fastPath,
      interceptPathPrefixes: ['/kv/'],
      interceptor: () => ({ headers: { 'x-understudy-epoch': '3' } }),
    });
    const p = r.address.port;
    const internal =
      'X-Understudy-Epoch: 99\r\nx-understudy-seq: 7\r\nx-understudy-replay: 1\r\nX-Understudy-A-Longer-Name: z\r\n';
    await raw(p, `GET /r HTTP/1.1\r\nHost: svc\r\n${internal}Connection: close\r\n\r\n`);
    await raw(
      p,
      `PUT /kv/a HTTP/1.1\r\nHost: svc\r\n${internal}Content-Length: 1\r\nConnection: close\r\n\r\nx`,
    );
    expect(r.stats().http?.fastPath).toBe(fastPath ? 1 : 0);
    expect(names(a, 0).filter((n) => n.startsWith('x-understudy-'))).toEqual([]);
    expect(names(a, 1).filter((n) => n.startsWith('x-understudy-'))).toEqual(['x-understudy-epoch']);
    expect(a.seen[1]?.headers['x-understudy-epoch']).toBe('3');
  });

  it('forwards pipelined requests to the backend in the order the client sent them', async () => {
    const a = await backend('a');
    const r = await router({
      backends: [at(a)],
      fastPath,
      // A replication turn that takes a moment: a GET started alongside would overtake the POST.
      interceptor: () => new Promise((resolve) => setTimeout(() => resolve({}), 50)),
    });
    const p = r.address.port;
    const response = await raw(
      p,
      'POST /w HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\n\r\nhello' +
        'GET /r HTTP/1.1\r\nHost: svc\r\n\r\n' +
        'PUT /w2 HTTP/1.1\r\nHost: svc\r\nContent-Length: 2\r\n\r\nhi' +
        'GET /r2 HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n',
    );
    expect(a.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /w', 'GET /r', 'PUT /w2', 'GET /r2']);
    const bodies = [...response.matchAll(/a (?:POST|GET|PUT) \/\w+ \d+/g)].map((m) => m[0]);
    expect(bodies).toEqual(['a POST /w 5', 'a GET /r 0', 'a PUT /w2 2', 'a GET /r2 0']);
  });

  it('finishes every queued pipelined request when the client goes away mid-queue', async () => {
    const a = await backend('a');
    let release: (() => void) | undefined;
    const r = await router({
      backends: [at(a)],
      fastPath,
      interceptor: () => new Promise((resolve) => (release = () => resolve({}))),
    });
    const s = connect(r.address.port, '127.0.0.1');
    await new Promise((resolve) => s.once('connect', resolve));
    s.write(
      'POST /w HTTP/1.1\r\nHost: svc\r\nContent-Length: 1\r\n\r\nx' +
        'GET /r HTTP/1.1\r\nHost: svc\r\n\r\n' +
        'GET /r2 HTTP/1.1\r\nHost: svc\r\n\r\n',
    );
    while (r.stats().http?.requests !== 3) await new Promise((resolve) => setTimeout(resolve, 5));
    s.destroy();
    // The two waiting behind the POST finish at once; the POST when its replication turn comes.
    while (r.stats().http?.inFlight !== 1) await new Promise((resolve) => setTimeout(resolve, 5));
    release?.();
    while (r.stats().http?.inFlight !== 0) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(r.stats().http).toMatchObject({ requests: 3, responses: 3, inFlight: 0 });
    // The connection's queue is not stuck: a new connection is served.
    const after = await raw(r.address.port, 'GET /next HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n');
    expect(statusOf(after)).toBe(200);
    expect(a.seen.map((x) => x.url)).toEqual(['/next']);
  });

  it('answers 400 to a malformed target, CONNECT or a second Host, forwarding nothing, and OPTIONS * itself', async () => {
    const a = await backend('a');
    const r = await router({ backends: [at(a)], fastPath });
    const p = r.address.port;
    for (const req of [
      'GET /a%zz HTTP/1.1\r\nHost: svc\r\n\r\n',
      'GET https://svc/a HTTP/1.1\r\nHost: svc\r\n\r\n',
      'GET * HTTP/1.1\r\nHost: svc\r\n\r\n',
      'POST /a HTTP/1.1\r\nHost: svc\r\nHost: evil\r\nContent-Length: 0\r\n\r\n',
      'GET /a HTTP/1.1\r\nHost: svc\r\nHost: evil\r\n\r\n',
    ]) {
      const response = await raw(p, req);
      expect([req, statusOf(response)]).toEqual([req, 400]);
      expect(response).toContain('UNDERSTUDY_ERR_ROUTER_REQUEST');
    }
    const tunnel = await raw(p, 'CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\n');
    expect([statusOf(tunnel), tunnel.includes('UNDERSTUDY_ERR_ROUTER_REQUEST')]).toEqual([400, true]);
    const options = await raw(p, 'OPTIONS * HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n');
    expect(statusOf(options)).toBe(200);
    expect(a.seen).toEqual([]);
    expect(r.stats().http?.badRequests).toBe(6);
    // The absolute-form authority replaces Host; the backend gets origin-form.
    await raw(p, 'GET http://svc:81/b?x=1 HTTP/1.1\r\nHost: other\r\nConnection: close\r\n\r\n');
    expect([a.seen[0]?.url, a.seen[0]?.headers.host]).toEqual(['/b?x=1', 'svc:81']);
  });
});

describe('a write spelled through a method-override header', () => {
  it.each([true, false])(
    'is replicated to the echo, override and all, before it is acknowledged (fastPath %s)',
    async (fastPath) => {
      const primary = await backend('primary');
      const echo = await backend('echo');
      const repl = new ServiceReplication({
        service: 'svc',
        rules: { methods: ['PUT', 'DELETE'], paths: ['/kv/'], timeoutMs: 5000, strict: true },
        consistency: 'write-through',
        epoch: () => 0,
      });
      cleanups.push(() => repl.close());
      repl.addEcho({ instanceId: 'echo', host: '127.0.0.1', port: echo.port }, 0);
      const hooks = replicationHooks(repl, () => 0);
      const r = await router({
        backends: [at(primary)],
        mutatingMethods: ['PUT', 'DELETE'],
        interceptPathPrefixes: ['/kv/'],
        interceptor: hooks.interceptor,
        afterResponse: hooks.afterResponse,
        fastPath,
      });
      const p = r.address.port;
      const put = await raw(
        p,
        'POST /kv/a HTTP/1.1\r\nHost: svc\r\nX-HTTP-Method-Override: PUT\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv',
      );
      expect(statusOf(put)).toBe(200);
      expect(echo.seen.map((s) => [s.method, s.url, s.headers['x-http-method-override'], s.body])).toEqual([
        ['POST', '/kv/a', 'PUT', 'v'],
      ]);
      const del = await raw(
        p,
        'GET /kv/a HTTP/1.1\r\nHost: svc\r\nX-Method-Override: delete\r\nConnection: close\r\n\r\n',
      );
      expect(statusOf(del)).toBe(200);
      expect(echo.seen.map((s) => [s.method, s.url, s.headers['x-method-override']])).toEqual([
        ['POST', '/kv/a', undefined],
        ['GET', '/kv/a', 'delete'],
      ]);
      expect(primary.seen).toHaveLength(2);
      // An override the client named in Connection never reaches the primary, so the write is not one.
      const hidden = await raw(
        p,
        'POST /kv/b HTTP/1.1\r\nHost: svc\r\nX-HTTP-Method-Override: PUT\r\nContent-Length: 1\r\nConnection: close, X-HTTP-Method-Override\r\n\r\nv',
      );
      expect(statusOf(hidden)).toBe(200);
      expect(primary.seen[2]?.headers['x-http-method-override']).toBeUndefined();
      expect(echo.seen).toHaveLength(2);
    },
  );
});

describe("the request target, differentially against node's parser (what the backend runs)", () => {
  it.each([true, false])(
    'the router refuses what the parser or the normaliser refuses, and forwards exactly the normalised target (fastPath %s)',
    async (fastPath) => {
      const a = await backend('a');
      const r = await router({ backends: [at(a)], fastPath });
      const piece = fc.constantFrom(
        'a',
        'kv',
        '/',
        '//',
        '.',
        '..',
        '%2e',
        '%2E',
        '%76',
        '%2F',
        '%2f',
        '%25',
        '%zz',
        '%',
        '%00',
        '?',
        '#',
        '\\',
        ';',
        '"',
        '{',
        '|',
        '~',
        '\u00e9',
      );
      const prefix = fc.constantFrom('/', '/', '/', 'http://h', 'HTTP://h:1/', 'https://h/', 'h:80', '*');
      await fc.assert(
        fc.asyncProperty(prefix, fc.array(piece, { maxLength: 6 }), async (start, pieces) => {
          const target = start + pieces.join('');
          const request = `GET ${target} HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n`;
          const before = a.seen.length;
          const direct = statusOf(await raw(a.port, request));
          const parserRefuses = direct === 400;
          a.seen.length = before;
          const viaRouter = statusOf(await raw(r.address.port, request));
          const t = normaliseRequestTarget('GET', target);
          if (parserRefuses || !t.ok) {
            expect([target, viaRouter, a.seen.length]).toEqual([target, 400, before]);
          } else {
            expect([target, viaRouter, a.seen.length, a.seen[before]?.url]).toEqual([
              target,
              200,
              before + 1,
              t.path,
            ]);
          }
        }),
        { numRuns: 80 },
      );
    },
  );
});
