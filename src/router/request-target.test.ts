import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normaliseOriginForm, normaliseRequestTarget, pathMayMatch } from './request-target.js';

const path = (method: string, target: string): string | undefined => {
  const t = normaliseRequestTarget(method, target);
  return t.ok ? t.path : undefined;
};

describe('normaliseRequestTarget', () => {
  it('turns absolute-form into origin-form whose authority replaces Host, for http in any case', () => {
    expect(normaliseRequestTarget('PUT', 'http://svc:8080/kv/b?x=1')).toEqual({
      ok: true,
      path: '/kv/b?x=1',
      authority: 'svc:8080',
    });
    expect(normaliseRequestTarget('PUT', 'HTTP://svc/kv/b')).toEqual({
      ok: true,
      path: '/kv/b',
      authority: 'svc',
    });
    expect(normaliseRequestTarget('GET', 'http://[::1]:80')).toEqual({
      ok: true,
      path: '/',
      authority: '[::1]:80',
    });
    expect(path('GET', 'http://svc?q')).toBe('/?q');
  });

  it('refuses other schemes, userinfo, empty or malformed authorities, and authority-form', () => {
    for (const t of [
      'https://svc/kv/b',
      'ftp://svc/kv/b',
      'http://user@svc/kv/b',
      'http:///kv/b',
      'http://sv c/kv/b',
      'http://svc:80:80/kv/b',
      'svc:443',
      'kv/b',
      'http:/kv/b',
    ])
      expect(normaliseRequestTarget('PUT', t).ok, t).toBe(false);
    expect(normaliseRequestTarget('CONNECT', 'svc:443').ok).toBe(false);
  });

  it('allows the asterisk target only with OPTIONS', () => {
    expect(path('OPTIONS', '*')).toBe('*');
    expect(path('GET', '*')).toBeUndefined();
    expect(path('DELETE', '*')).toBeUndefined();
  });

  it('decodes unreserved escapes, upper-cases the others, merges slashes and removes dot segments', () => {
    const cases: Array<[string, string]> = [
      ['/kv/b', '/kv/b'],
      ['/k%76/b', '/kv/b'],
      ['/%6B%76/b', '/kv/b'],
      ['/kv/a%2fb', '/kv/a%2Fb'],
      ['/kv/a%20b', '/kv/a%20b'],
      ['/x/../kv/b', '/kv/b'],
      ['/%2e%2e/kv/b', '/kv/b'],
      ['/x/%2E%2E/kv/./b', '/kv/b'],
      ['/../../kv/b', '/kv/b'],
      ['//kv//b', '/kv/b'],
      ['/kv/b/.', '/kv/b/'],
      ['/kv/b/..', '/kv/'],
      ['/kv/b?next=/../x//y', '/kv/b?next=/../x//y'],
      ['/.well-known/x', '/.well-known/x'],
      ['/', '/'],
    ];
    for (const [input, want] of cases) expect(path('PUT', input), input).toBe(want);
  });

  it('refuses bad escapes, %00, backslashes, fragments and bytes outside printable ASCII', () => {
    for (const t of [
      '/kv/%zz',
      '/kv/%4',
      '/kv/%',
      '/kv/%00',
      '/kv\\b',
      '/kv/b#x',
      '/kv/b?q#x',
      '/kv/\u00e9',
      '/kv/\u0001',
    ])
      expect(path('PUT', t), JSON.stringify(t)).toBeUndefined();
  });
});

describe('normaliseOriginForm', () => {
  it('returns the very same string when nothing needs normalising', () => {
    const t = '/kv/some-key?x=1&y=2';
    expect(normaliseOriginForm(t)).toBe(t);
  });

  // A backend that parses the target with WHATWG URL (node, undici, Deno, browsers' fetch spec) acts on
  // url.pathname; the router classifies and forwards the normalised target: they must be the same.
  it('gives a target that a WHATWG URL backend reads back unchanged, and is idempotent', () => {
    const piece = fc.constantFrom(
      'a',
      'kv',
      'B',
      '.',
      '..',
      '%2e',
      '%2E%2e',
      '%76',
      '%2F',
      '%41',
      '%7e',
      '-',
      '_',
      '~',
      '',
      ';x=1',
      '%20',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 8 }), fc.boolean(), (pieces, query) => {
        const target = `/${pieces.join('/')}${query ? '?a=/../b' : ''}`;
        const n = normaliseOriginForm(target);
        if (n === undefined) return false;
        const url = new URL(n, 'http://backend');
        const q = n.indexOf('?');
        expect(url.pathname).toBe(q < 0 ? n : n.slice(0, q));
        expect(normaliseOriginForm(n)).toBe(n);
        // Same resource as the client named, as a WHATWG backend would have read it (slashes aside).
        const merged = (p: string): string =>
          decodeURIComponent(p.replace(/%2F/gi, '%252F')).replace(/\/+/g, '/');
        expect(merged(url.pathname)).toBe(
          merged(new URL(target.replace(/\/\/+/g, '/'), 'http://backend').pathname),
        );
        return true;
      }),
      { numRuns: 500 },
    );
  });
});

describe('pathMayMatch', () => {
  it('matches a prefix as is, case-insensitively, with path parameters cut, and on ambiguous escapes', () => {
    const p = ['/kv/'];
    expect(pathMayMatch('/kv/b', p)).toBe(true);
    expect(pathMayMatch('/KV/b', p)).toBe(true);
    expect(pathMayMatch('/kv;jsessionid=1/b', p)).toBe(true);
    expect(pathMayMatch('/kv%2Fb', p)).toBe(true);
    expect(pathMayMatch('/k%5Cv/b', p)).toBe(true);
    expect(pathMayMatch('/kv%C0%AFb', p)).toBe(true);
    expect(pathMayMatch('/k%25%37%36/b', p)).toBe(true);
    expect(pathMayMatch('/other', p)).toBe(false);
    expect(pathMayMatch('/other?x=/kv/', p)).toBe(false);
    expect(pathMayMatch('/other?x=%2F', p)).toBe(false);
    expect(pathMayMatch('/kv%2Fb', [])).toBe(false);
  });
});
