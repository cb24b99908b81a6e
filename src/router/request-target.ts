// The request target, normalised once at the edge (RFC 9112 §3.2, RFC 3986 §6.2.2) so that every
// decision the router and the replication layer make about a request — mutation or not, intercepted or
// not, mirrored, routed — is made on exactly the bytes the backend will act on: the normalised target is
// what is classified AND what is forwarded. What cannot be normalised without guessing is refused (400).
//
// Normalisation of the path (the query is kept as sent, only checked):
//   - absolute-form `http://authority/p?q` → `/p?q`, the authority replacing Host (RFC 9112 §3.2.2);
//     any other scheme (compared case-insensitively, so `HTTP://` is http), userinfo, or an empty or
//     malformed authority → 400;
//   - `%XX` of an unreserved character decoded (`/k%76` → `/kv`), every other `%xx` upper-cased;
//     a malformed escape or `%00` → 400;
//   - runs of `/` merged (`//kv//b` → `/kv/b`: a WHATWG-URL backend reads a leading `//` as an authority);
//   - dot segments removed (`/x/../kv`, `/%2e%2e/kv` → `/kv`);
//   - `\`, `#` (a fragment is never part of a request target), a control or non-ASCII byte → 400;
//   - `*` only for OPTIONS, authority-form (CONNECT) → 400.
// Escapes that a backend may or may not decode into a separator (`%2F`, `%5C`, `%3B`, `%25`, overlong
// UTF-8 `%C0…`/`%C1…`) are kept: rejecting them would refuse legitimate keys (`/kv/a%2Fb`); instead
// {@link pathMayMatch} treats such a path as matching every prefix, so a mutating request spelled that
// way is always replicated (replaying on the echo exactly what the primary received is harmless; missing
// it loses a write).

/** A request target the router accepts. */
export interface AcceptedTarget {
  readonly ok: true;
  /** Normalised origin-form path and query (`*` for `OPTIONS *`): what is classified and forwarded. */
  readonly path: string;
  /** The authority of an absolute-form target, which replaces the Host header; otherwise undefined. */
  readonly authority: string | undefined;
}

/** A request target the router refuses with 400. */
export interface RejectedTarget {
  readonly ok: false;
  /** Why, for the 400 body. */
  readonly reason: string;
}

/** Outcome of {@link normaliseRequestTarget}. */
export type RequestTarget = AcceptedTarget | RejectedTarget;

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  const l = c | 0x20;
  return (
    (l >= 0x61 && l <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

function reject(reason: string): RejectedTarget {
  return { ok: false, reason };
}

/**
 * Normalises an origin-form target (`/path?query`); `undefined` when it must be refused. Returns the
 * input itself (no allocation) when it is already normal — the common case on the hot path.
 */
export function normaliseOriginForm(target: string): string | undefined {
  if (target.charCodeAt(0) !== 0x2f) return undefined;
  let q = target.length;
  let work = false;
  let prev = 0;
  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x23) return undefined; // controls, space, non-ASCII, '#'
    if (i < q) {
      if (c === 0x3f) q = i;
      else if (c === 0x5c)
        return undefined; // '\': some backends read it as '/'
      else if (c === 0x25 || (prev === 0x2f && (c === 0x2f || c === 0x2e))) work = true;
    }
    prev = c;
  }
  if (!work) return target;
  const path = decodeUnreserved(target.slice(0, q));
  if (path === undefined) return undefined;
  return removeDotSegments(path) + target.slice(q);
}

/** Decodes `%XX` of unreserved characters and upper-cases the others; undefined for a bad escape or `%00`. */
function decodeUnreserved(path: string): string | undefined {
  if (!path.includes('%')) return path;
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i)) {
    const h = hexValue(path.charCodeAt(i + 1));
    const l = hexValue(path.charCodeAt(i + 2));
    if (h < 0 || l < 0) return undefined;
    const byte = h * 16 + l;
    if (byte === 0) return undefined;
    out += path.slice(from, i);
    out += isUnreserved(byte) ? String.fromCharCode(byte) : `%${HEX[h]}${HEX[l]}`;
    i += 3;
    from = i;
  }
  return out + path.slice(from);
}

/** Merges runs of `/` and removes `.` and `..` segments (RFC 3986 §5.2.4; `..` never climbs above root). */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const s = segments[i] as string;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      // A trailing dot segment leaves a trailing slash (`/a/.` → `/a/`).
      if (i === last) out.push('');
    } else if (s !== '' || i === last) out.push(s);
  }
  return `/${out.join('/')}`;
}

// host = IP-literal / IPv4address / reg-name, then an optional port (RFC 3986 §3.2.2, §3.2.3).
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?$/;
const ABSOLUTE = /^([A-Za-z][A-Za-z0-9+\-.]*):\/\/([^/?#]*)(.*)$/s;

/**
 * Normalises a request target to origin-form, or says why it is refused. `method` is the request's
 * method as parsed (node's parser only delivers upper-case known methods).
 */
export function normaliseRequestTarget(method: string, target: string): RequestTarget {
  if (target === '*') {
    return method === 'OPTIONS'
      ? { ok: true, path: '*', authority: undefined }
      : reject('the asterisk target is only allowed with OPTIONS');
  }
  if (method === 'CONNECT') return reject('CONNECT is not supported');
  if (target.charCodeAt(0) === 0x2f) {
    const path = normaliseOriginForm(target);
    return path === undefined
      ? reject('malformed request target (bad escape, %00, a backslash, a fragment or a byte outside ASCII)')
      : { ok: true, path, authority: undefined };
  }
  const m = ABSOLUTE.exec(target);
  if (m === null)
    return reject('the request target must be origin-form (/path) or absolute-form (http://host/path)');
  const [, scheme, authority, rest] = m as unknown as [string, string, string, string];
  if (scheme.toLowerCase() !== 'http') return reject(`scheme ${scheme} is not served here (http only)`);
  if (authority.includes('@')) return reject('userinfo is not allowed in the request target');
  if (!AUTHORITY.test(authority)) return reject('malformed authority in the request target');
  const origin = rest === '' ? '/' : rest.charCodeAt(0) === 0x3f ? `/${rest}` : rest;
  const path = normaliseOriginForm(origin);
  if (path === undefined) return reject('malformed path in the absolute-form request target');
  return { ok: true, path, authority };
}

/**
 * Escapes a backend may decode into a separator (`/`, `\`, `;`) or into another escape (`%`), and the
 * lead bytes of overlong UTF-8 (`%C0%AF`, which a lax decoder reads as `/`).
 */
const AMBIGUOUS = /%(?:2F|5C|3B|25|C0|C1)/i;

/** The path as the loosest common backend could read it: path parameters (`;…`) cut, case folded. */
function loose(path: string): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return (p.includes(';') ? p.replace(/;[^/]*/g, '') : p).toLowerCase();
}

/**
 * Whether a normalised path may be under one of `prefixes` as a backend could read it — conservative:
 * true when the path matches a prefix as is, or case-insensitively with path parameters (`/kv;x=1/b`)
 * cut (Tomcat, Spring and case-insensitive routers read those as `/kv/b`), or when it carries an
 * escape a backend may decode into a separator (`%2F`, `%5C`, `%3B`, `%25`, overlong UTF-8 `%C0`,
 * `%C1`). Used for every "is this a mutation" decision, so no spelling of a mutating request escapes
 * replication; replicating a request that was not a mutation only costs the echo a replay of what the
 * primary did.
 */
export function pathMayMatch(path: string, prefixes: readonly string[]): boolean {
  for (const p of prefixes) if (path.startsWith(p)) return true;
  if (prefixes.length === 0) return false;
  const q = path.indexOf('?');
  if (AMBIGUOUS.test(q < 0 ? path : path.slice(0, q))) return true;
  const l = loose(path);
  for (const p of prefixes) if (l.startsWith(loose(p))) return true;
  return false;
}

/**
 * Headers through which a client asks a backend to treat a request as another method (Express's
 * method-override, Rails, ASP.NET, Google APIs): a `POST` carrying `X-HTTP-Method-Override: PUT` is a
 * PUT to such a backend. The router forwards them unchanged and classifies the request under both
 * methods, so a write spelled this way is still replicated (and the header is replayed with it).
 */
export const METHOD_OVERRIDE_HEADERS = [
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const;

/** Whether `lower` (a lower-case header name) is one of {@link METHOD_OVERRIDE_HEADERS}. */
export function isMethodOverrideHeader(lower: string): boolean {
  return lower === 'x-http-method-override' || lower === 'x-http-method' || lower === 'x-method-override';
}

/** The methods a client asked for through {@link METHOD_OVERRIDE_HEADERS} (upper-case), or none. */
export function methodOverrides(headers: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const out: string[] = [];
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const v = headers[name];
    for (const s of Array.isArray(v) ? v : v === undefined ? [] : [v])
      for (const m of s.split(',')) if (m.trim() !== '') out.push(m.trim().toUpperCase());
  }
  return out;
}
