// The fast path's reading of a request head: strict framing first (http-syntax.ts, as llhttp frames
// it), then the rewrite of a plain GET/HEAD head for the backend, or the verdict to wait, refuse or hand
// the connection to node:http.
import { checkRequestHead } from './http-syntax.js';
import { forwardedFor, isInternalHeader } from './proxy-headers.js';
import { normaliseOriginForm } from './request-target.js';

/** Largest request or response head the fast path reads, bytes. */
export const MAX_HEAD = 16 * 1024;
/** The end of a head. */
export const CRLFCRLF = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** What the fast path learned from a request head it can handle. */
export interface FastRequest {
  readonly method: string;
  readonly target: string;
  /** The head sent upstream (X-Forwarded-* added, hop-by-hop removed), latin1 bytes. */
  readonly head: Buffer;
  readonly closeAfter: boolean;
  readonly host: string;
  /** Flat header list, built only when the request is mirrored. */
  readonly flat: readonly string[] | undefined;
  readonly hostIndex: number;
}

/** Parses a request head; `undefined` when the fast path should not handle it. */
function parseRequest(
  head: string,
  clientIp: string,
  mirror: boolean,
  mutating: ReadonlySet<string>,
): FastRequest | undefined {
  const lines = head.split('\r\n');
  const first = lines[0] as string;
  const sp1 = first.indexOf(' ');
  const sp2 = first.lastIndexOf(' ');
  if (sp1 <= 0 || sp2 <= sp1 || first.slice(sp2 + 1) !== 'HTTP/1.1') return undefined;
  const method = first.slice(0, sp1);
  if ((method !== 'GET' && method !== 'HEAD') || mutating.has(method)) return undefined;
  // Normalised as on the full path (request-target.ts), so mirroring and the backend see the same target;
  // absolute-form and anything refused are left to the full path, which rewrites or answers 400.
  const target = normaliseOriginForm(first.slice(sp1 + 1, sp2));
  if (target === undefined) return undefined;
  let out = `${method} ${target} HTTP/1.1\r\n`;
  let xff = '';
  let host = '';
  let hostCount = 0;
  let closeAfter = false;
  const flat: string[] | undefined = mirror ? [] : undefined;
  let hostIndex = -1;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0 || line.includes('\n') || line.includes('\r') || line.includes('\0')) return undefined;
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) return undefined;
    // The router's own headers are never taken from a client (proxy-headers.ts, isInternalHeader).
    if (isInternalHeader(name)) continue;
    const value = line.slice(colon + 1).trim();
    const lower = name.length <= 19 ? name.toLowerCase() : '';
    if (name.length === 22 && name.toLowerCase() === 'x-http-method-override') return undefined;
    switch (lower) {
      case 'content-length':
        if (value !== '0') return undefined;
        continue;
      // (A method override may make this GET a write: the full path classifies it, request-target.ts.)
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
      case 'x-http-method':
      case 'x-method-override':
        return undefined;
      case 'connection': {
        for (const t of value.split(',')) {
          const tok = t.trim().toLowerCase();
          if (tok === 'close') closeAfter = true;
          else if (tok !== '' && tok !== 'keep-alive') return undefined;
        }
        continue;
      }
      case 'keep-alive':
      case 'te':
      case 'trailer':
      case 'proxy-connection':
      case 'proxy-authorization':
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
        continue;
      case 'x-forwarded-for':
        xff = xff === '' ? value : `${xff}, ${value}`;
        continue;
      case 'host':
        host = value;
        hostCount++;
        if (flat) hostIndex = flat.length + 1;
        break;
    }
    out += `${name}: ${value}\r\n`;
    flat?.push(name, value);
  }
  if (hostCount !== 1) return undefined;
  // Connection naming anything but close/keep-alive was handed off above, so no client header named there
  // is left to strip and the forwarding headers below are the router's own.
  const fwd = forwardedFor(xff, clientIp);
  out += `x-forwarded-for: ${fwd}\r\nx-forwarded-proto: http\r\nx-forwarded-host: ${host}\r\n\r\n`;
  flat?.push('x-forwarded-for', fwd, 'x-forwarded-proto', 'http', 'x-forwarded-host', host);
  return { method, target, head: Buffer.from(out, 'latin1'), closeAfter, host, flat, hostIndex };
}

/** What the fast path does with the bytes at the start of a client's buffer ({@link stepRequestHead}). */
export type HeadStep =
  /** An unfinished head, valid so far: wait for more bytes (up to the head deadline). */
  | { readonly kind: 'wait' }
  /** Malformed: answer 400 and close. */
  | { readonly kind: 'refuse'; readonly reason: string }
  /** Well formed but not for the fast path: node:http takes the connection, bytes included. */
  | { readonly kind: 'handoff' }
  /** Proxied on the fast path: `req.head` goes upstream; the request ends at `end`. */
  | { readonly kind: 'fast'; readonly end: number; readonly req: FastRequest };

const WAIT: HeadStep = { kind: 'wait' };
const HANDOFF: HeadStep = { kind: 'handoff' };

/**
 * Decides what the fast path does with `buf` (empty lines before a request already skipped, see
 * {@link skipEmptyLines}): whatever llhttp would refuse or frame differently is refused, never
 * forwarded nor handed off (node:http accepts several Host fields, the fast path does not).
 */
export function stepRequestHead(
  buf: Buffer,
  clientIp: string,
  mirror: boolean,
  mutating: ReadonlySet<string>,
): HeadStep {
  const end = buf.indexOf(CRLFCRLF);
  const facts = checkRequestHead(buf, end < 0 ? buf.length : end + 4);
  if (facts !== undefined && 'error' in facts) return { kind: 'refuse', reason: facts.error };
  if (end < 0 || facts === undefined) return buf.length > MAX_HEAD ? HANDOFF : WAIT;
  if (facts.end !== end + 4) return { kind: 'refuse', reason: 'malformed head' };
  const req = parseRequest(buf.toString('latin1', 0, end), clientIp, mirror, mutating);
  return req === undefined ? HANDOFF : { kind: 'fast', end: end + 4, req };
}

/** `buf` without the empty lines (CRLF) a client may send before a request line (RFC 9112 §2.2). */
export function skipEmptyLines(buf: Buffer): Buffer {
  let i = 0;
  while (i + 1 < buf.length && buf[i] === 13 && buf[i + 1] === 10) i += 2;
  return i === 0 ? buf : buf.subarray(i);
}
