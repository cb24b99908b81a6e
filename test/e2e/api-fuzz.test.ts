import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PUBLIC_ROUTES } from '../../src/api/index.js';
import { rawRequest, sendRaw, startApiRig, type ApiRig } from './lib/api-rig.js';

// Fuzzes the control API over raw TCP (no client library normalises the target) with spellings of
// the real route table: percent-encoding of any character (single, lower-case, double), case changes,
// absolute-form, doubled slashes, dot segments, trailing slashes, `;` parameters, query strings,
// fragments, random methods, bodies (chunked too), Authorization values and Host headers.

let rig: ApiRig;
beforeAll(async () => {
  rig = await startApiRig();
});
afterAll(async () => {
  await rig.close();
});

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;

type CharEdit = 'keep' | 'pct' | 'pct-lower' | 'double' | 'case';
const charEdit: fc.Arbitrary<CharEdit> = fc.oneof(
  { arbitrary: fc.constant<CharEdit>('keep'), weight: 40 },
  { arbitrary: fc.constant<CharEdit>('pct'), weight: 1 },
  { arbitrary: fc.constant<CharEdit>('pct-lower'), weight: 1 },
  { arbitrary: fc.constant<CharEdit>('double'), weight: 1 },
  { arbitrary: fc.constant<CharEdit>('case'), weight: 1 },
);

function editChar(c: string, edit: CharEdit): string {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  switch (edit) {
    case 'keep':
      return c;
    case 'pct':
      return `%${hex.toUpperCase()}`;
    case 'pct-lower':
      return `%${hex.toLowerCase()}`;
    case 'double':
      return `%25${hex.toUpperCase()}`;
    case 'case':
      return c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
  }
}

const SHAPES = [
  'double-slashes',
  'dot-segment',
  'dot-dot-segment',
  'trailing-slash',
  'semicolon',
  'query',
  'encoded-query',
  'fragment',
  'absolute-form',
  'absolute-form-self',
  'no-leading-slash',
  'backslashes',
] as const;
type Shape = (typeof SHAPES)[number];

function reshape(path: string, shape: Shape, port: number): string {
  switch (shape) {
    case 'double-slashes':
      return path.replace(/\//g, '//');
    case 'dot-segment':
      return `/.${path}`;
    case 'dot-dot-segment':
      return path.replace(/^\/([^/]*)/, '/$1/../$1');
    case 'trailing-slash':
      return `${path}/`;
    case 'semicolon':
      return path.replace(/^\/([^/]*)/, '/$1;x=1');
    case 'query':
      return `${path}?service=kv&after=0`;
    case 'encoded-query':
      return `${path}%3Fx=1`;
    case 'fragment':
      return `${path}#frag`;
    case 'absolute-form':
      return `http://x${path}`;
    case 'absolute-form-self':
      return `HTTP://127.0.0.1:${port}${path}`;
    case 'no-leading-slash':
      return path.slice(1);
    case 'backslashes':
      return path.replace(/\//g, '\\');
  }
}

interface Attempt {
  route: { method: string; url: string };
  target: string;
  method: string;
  body: { headers: Record<string, string>; body?: string };
  host: string | null;
}

/** A request built from one route of the server's own route table, spelled some other way. */
function attempt(port: number): fc.Arbitrary<Attempt> {
  const routes = rig.api.routes;
  return fc
    .record({
      route: fc.constantFrom(...routes),
      edits: fc.array(charEdit, { minLength: 40, maxLength: 40 }),
      shapes: fc.subarray([...SHAPES], { maxLength: 2 }),
      method: fc.oneof(
        { arbitrary: fc.constant(undefined), weight: 3 },
        { arbitrary: fc.constantFrom(...METHODS), weight: 1 },
      ),
      body: fc.constantFrom<Attempt['body']>(
        { headers: {} },
        { headers: { 'content-type': 'application/json' }, body: '{}' },
        { headers: { 'content-type': 'application/json' }, body: '{"reason":"fuzz"}' },
        { headers: { 'content-type': 'application/json' }, body: '{"to":"kv-1","colour":"red"}' },
        { headers: { 'content-type': 'application/json' }, body: '{"reason":' },
        { headers: { 'content-type': 'text/plain' }, body: 'hello' },
        {
          headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          body: '2\r\n{}\r\n0\r\n\r\n',
        },
      ),
      host: fc.oneof(
        { arbitrary: fc.constant(`127.0.0.1:${port}`), weight: 6 },
        { arbitrary: fc.constant(`localhost:${port}`), weight: 2 },
        {
          arbitrary: fc.constantFrom('evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`),
          weight: 1,
        },
        { arbitrary: fc.constant(null), weight: 1 },
      ),
    })
    .map(({ route, edits, shapes, method, body, host }) => {
      const concrete = route.url.replace(':name', 'kv').replace(':id', 'kv-0');
      let target = [...concrete].map((c, i) => editChar(c, edits[i % edits.length] ?? 'keep')).join('');
      for (const s of shapes) target = reshape(target, s, port);
      return { route, target, method: method ?? route.method, body, host };
    });
}

const notTheToken = fc.constantFrom<Record<string, string>>(
  {},
  { authorization: 'Bearer wrong' },
  { authorization: `Bearer ${'0'.repeat(64)}` },
  { authorization: 'Bearer' },
  { authorization: 'Basic dXNlcjpwYXNz' },
  { authorization: '' },
);

describe('the control API under fuzzed request targets', () => {
  it('answers 2xx without the token only on public routes, reaches no control method, and never 5xx', async () => {
    expect(rig.api.routes.length).toBeGreaterThan(10);
    await fc.assert(
      fc.asyncProperty(attempt(rig.port), notTheToken, async (a, auth) => {
        rig.stub.calls.length = 0;
        const request = rawRequest(rig.port, a.method, a.target, {
          headers: { ...a.body.headers, ...auth },
          host: a.host,
          ...(a.body.body === undefined ? {} : { body: a.body.body }),
        });
        const r = await sendRaw(rig.port, request);
        expect(r.status, r.raw).toBeGreaterThanOrEqual(200);
        expect(r.status, r.raw).toBeLessThan(500);
        if (r.status < 300) {
          expect(PUBLIC_ROUTES.has(a.route.url), `${a.method} ${a.target}`).toBe(true);
          if (a.method !== 'HEAD' && a.route.url === '/healthz')
            expect(JSON.parse(r.body)).toEqual({ ok: true });
        } else {
          // The dashboard's public files (no data) answer 404 when not built or for an unknown asset.
          const dashboard = PUBLIC_ROUTES.has(a.route.url) && a.route.url !== '/healthz';
          expect(
            [400, 401, 421, 431, ...(dashboard ? [404] : [])],
            `${a.method} ${a.target}: ${r.raw}`,
          ).toContain(r.status);
        }
        expect(rig.stub.calls, `${a.method} ${a.target}`).toEqual([]);
      }),
      { numRuns: 300, interruptAfterTimeLimit: 6_000, markInterruptAsFailure: false },
    );
  });

  it('never answers 5xx to any spelling, even with the token', async () => {
    rig.stub.calls.length = 0;
    await fc.assert(
      fc.asyncProperty(attempt(rig.port), async (a) => {
        const request = rawRequest(rig.port, a.method, a.target, {
          headers: { ...a.body.headers, authorization: `Bearer ${rig.token}` },
          host: a.host,
          ...(a.body.body === undefined ? {} : { body: a.body.body }),
        });
        const r = await sendRaw(rig.port, request);
        expect(r.status, r.raw).toBeGreaterThanOrEqual(200);
        expect(r.status, `${a.method} ${a.target}: ${r.raw}`).toBeLessThan(500);
      }),
      { numRuns: 150, interruptAfterTimeLimit: 4_000, markInterruptAsFailure: false },
    );
    // The spellings are not all refused: many reach the control plane, so the property says something.
    expect(rig.stub.calls.length).toBeGreaterThan(0);
  });
});
