import type { IncomingHttpHeaders } from 'node:http';
import { isMethodOverrideHeader } from './request-target.js';

// Header rewriting on the hot path: flat string arrays in and out, names lower-cased only when their
// length makes them a candidate, so the common header costs one switch on its length.

/** Headers of the request as sent upstream, plus what the proxy learned while copying them. */
export interface UpstreamHeaders {
  /** Flat `[name, value, name, value, …]` for undici. */
  headers: string[];
  /** The client's Host header ('' when absent). */
  host: string;
  /** Index in `headers` of the Host value, or -1. */
  hostIndex: number;
  /** How many Host headers the client sent (HTTP/1.1 requires exactly one, RFC 9112 §3.2). */
  hostCount: number;
  /** Methods asked for through a method-override header (upper-case), or undefined when none. */
  methodOverrides: string[] | undefined;
  /** Header names (lower-case) the client named in `Connection` and that were dropped, or undefined. */
  dropped: ReadonlySet<string> | undefined;
  /** True when the client sent `x-understudy-*` headers (stripped). */
  strippedInternal: boolean;
  /** The client's Content-Length, or -1 when absent. */
  contentLength: number;
  /** True when the client sent a Transfer-Encoding (a body of unknown length). */
  chunked: boolean;
}

/** Header names removed on every hop (RFC 9110 §7.6.1), plus those undici refuses to send. */
function isHopByHopRequest(lower: string): boolean {
  switch (lower.length) {
    case 2:
      return lower === 'te';
    case 6:
      return lower === 'expect';
    case 7:
      return lower === 'trailer' || lower === 'upgrade';
    case 10:
      return lower === 'connection' || lower === 'keep-alive';
    case 16:
      return lower === 'proxy-connection';
    case 17:
      return lower === 'transfer-encoding';
    case 19:
      return lower === 'proxy-authorization';
    default:
      return false;
  }
}

const CANDIDATE_LENGTHS = new Set([2, 4, 6, 7, 10, 13, 14, 15, 16, 17, 19, 22]);

/** Prefix of the headers the router and the replication layer send to instances (epoch, seq, replay). */
export const INTERNAL_HEADER_PREFIX = 'x-understudy-';

/**
 * Whether a client header is one of Understudy's own (`x-understudy-*`): those are stripped from every
 * client request in both router paths — only the router and the replication layer set them (an instance
 * trusts them for fencing and deduplication).
 */
export function isInternalHeader(name: string): boolean {
  return (
    name.length >= 13 &&
    (name.charCodeAt(0) | 0x20) === 0x78 &&
    name.charCodeAt(12) === 0x2d &&
    name.slice(0, 13).toLowerCase() === INTERNAL_HEADER_PREFIX
  );
}

/**
 * Whether the client named header `lower` (lower-case) in `Connection` and it is to be dropped. Host is
 * never dropped (mandatory in HTTP/1.1); the router's forwarding headers are added after the client's
 * headers were filtered, so a client cannot remove them this way.
 */
function droppable(lower: string, named: ReadonlySet<string>): boolean {
  return lower !== 'host' && named.has(lower);
}

/** The X-Forwarded-For value sent upstream: the client's chain (if any) followed by the client's address. */
export function forwardedFor(clientChain: string, clientIp: string): string {
  return clientChain === '' ? clientIp : `${clientChain}, ${clientIp}`;
}

/**
 * Copies the client's raw headers for the upstream request: hop-by-hop headers, any header the client
 * named in `Connection`, and `x-understudy-*` stripped from the client's headers; then X-Forwarded-For
 * (the client's chain, unless named in `Connection`, plus the client address), X-Forwarded-Proto and
 * X-Forwarded-Host added. The client's Host is kept, or replaced by `authority` (the authority of an
 * absolute-form target, RFC 9112 §3.2.2).
 */
export function upstreamRequestHeaders(
  raw: readonly string[],
  clientIp: string,
  proto: string,
  authority?: string,
): UpstreamHeaders {
  let out: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let xff = '';
  let host = '';
  let hostIndex = -1;
  let hostCount = 0;
  let connectionTokens: Set<string> | undefined;
  let strippedInternal = false;
  /** Method-override headers seen: flat `[lowerName, value, …]`. */
  let overrideValues: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (isInternalHeader(name)) {
      strippedInternal = true;
      continue;
    }
    if (CANDIDATE_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (isHopByHopRequest(lower)) {
        if (lower === 'connection') {
          for (const t of value.split(',')) {
            const tok = t.trim().toLowerCase();
            if (tok !== '' && tok !== 'close' && tok !== 'keep-alive')
              (connectionTokens ??= new Set()).add(tok);
          }
        } else if (lower === 'transfer-encoding') chunked = true;
        continue;
      }
      if (lower === 'content-length') contentLength = Number(value);
      else if (lower === 'x-forwarded-for') {
        xff = xff === '' ? value : `${xff}, ${value}`;
        continue;
      }
      if (lower === 'x-forwarded-host' || lower === 'x-forwarded-proto') continue;
      if (isMethodOverrideHeader(lower)) (overrideValues ??= []).push(lower, value);
      if (lower === 'host') {
        hostCount++;
        host = value;
        hostIndex = out.length + 1;
      }
    }
    out.push(name, value);
  }
  if (connectionTokens) {
    // Only the client's own headers: the router's forwarding headers are added below.
    const named = connectionTokens;
    if (named.has('x-forwarded-for')) xff = '';
    const filtered: string[] = [];
    hostIndex = -1;
    for (let i = 0; i < out.length; i += 2) {
      const n = out[i] as string;
      const lower = n.toLowerCase();
      if (droppable(lower, named)) continue;
      if (lower === 'host') hostIndex = filtered.length + 1;
      filtered.push(n, out[i + 1] as string);
    }
    out = filtered;
    named.delete('host');
  }
  if (authority !== undefined) {
    host = authority;
    if (hostIndex >= 0) out[hostIndex] = authority;
    else {
      out.push('host', authority);
      hostIndex = out.length - 1;
    }
  }
  out.push('x-forwarded-for', forwardedFor(xff, clientIp), 'x-forwarded-proto', proto);
  if (host !== '') out.push('x-forwarded-host', host);
  // An override counts only when the backend receives it (one the client named in Connection is dropped).
  let overrides: string[] | undefined;
  if (overrideValues !== undefined)
    for (let i = 0; i < overrideValues.length; i += 2) {
      if (connectionTokens?.has(overrideValues[i] as string) === true) continue;
      for (const m of (overrideValues[i + 1] as string).split(','))
        if (m.trim() !== '') (overrides ??= []).push(m.trim().toUpperCase());
    }
  return {
    headers: out,
    host,
    hostIndex,
    hostCount,
    methodOverrides: overrides,
    dropped: connectionTokens,
    strippedInternal,
    contentLength,
    chunked,
  };
}

function isHopByHopResponse(lower: string): boolean {
  switch (lower.length) {
    case 7:
      return lower === 'trailer' || lower === 'upgrade';
    case 10:
      return lower === 'connection' || lower === 'keep-alive';
    case 16:
      return lower === 'proxy-connection';
    case 17:
      return lower === 'transfer-encoding';
    default:
      return false;
  }
}

/** The backend's raw response headers as a flat string array for `writeHead`, hop-by-hop headers removed. */
export function downstreamResponseHeaders(raw: readonly Buffer[]): string[] {
  const out: string[] = [];
  let connectionTokens: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as Buffer).toString('latin1');
    const value = (raw[i + 1] as Buffer).toString('latin1');
    const len = name.length;
    if (len === 7 || len === 10 || len === 16 || len === 17) {
      const lower = name.toLowerCase();
      if (isHopByHopResponse(lower)) {
        if (lower === 'connection') {
          for (const t of value.split(',')) {
            const tok = t.trim().toLowerCase();
            if (tok !== '' && tok !== 'close' && tok !== 'keep-alive')
              (connectionTokens ??= new Set()).add(tok);
          }
        }
        continue;
      }
    }
    out.push(name, value);
  }
  if (connectionTokens) {
    const drop = connectionTokens;
    const filtered: string[] = [];
    for (let i = 0; i < out.length; i += 2)
      if (!drop.has((out[i] as string).toLowerCase())) filtered.push(out[i] as string, out[i + 1] as string);
    return filtered;
  }
  return out;
}

/**
 * The client's headers (node's lower-case object) as the backend receives them, for the interceptor:
 * `x-understudy-*` and those the client named in `Connection` removed, Host replaced by an absolute-form
 * authority. Returns `headers` itself when nothing changes.
 */
export function headersAsForwarded(
  headers: IncomingHttpHeaders,
  authority: string | undefined,
  up: Pick<UpstreamHeaders, 'dropped' | 'strippedInternal'>,
): IncomingHttpHeaders {
  const { dropped, strippedInternal } = up;
  if (authority === undefined && !strippedInternal && (dropped === undefined || dropped.size === 0))
    return headers;
  const out: IncomingHttpHeaders = { ...headers };
  if (dropped) for (const n of dropped) delete out[n];
  if (strippedInternal) for (const n of Object.keys(out)) if (isInternalHeader(n)) delete out[n];
  if (authority !== undefined) out.host = authority;
  return out;
}

/** Envoy's mirror Host rewrite: `example.com:8080` → `example.com-shadow:8080`. */
export function shadowHost(host: string): string {
  if (host === '') return 'shadow';
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? `${host}-shadow` : `${host.slice(0, end + 1)}-shadow${host.slice(end + 1)}`;
  }
  const colon = host.lastIndexOf(':');
  return colon < 0 ? `${host}-shadow` : `${host.slice(0, colon)}-shadow${host.slice(colon)}`;
}

/** Bytes of a head's header lines (`name: value\r\n` each, flat name/value list) and its closing blank line. */
export function headBytes(flat: ReadonlyArray<string | Buffer>): number {
  let n = 2;
  for (const x of flat) n += x.length + 2;
  return n;
}

/** Bytes of a response's status line (`HTTP/1.1 200 OK\r\n`, the reason phrase taken as 2 bytes). */
export const STATUS_LINE_BYTES = 17;

/** Bytes of a body chunk undici reports sent (a chunk, a string, or its size). */
export function sentBytes(chunk: unknown): number {
  if (typeof chunk === 'number') return chunk;
  if (typeof chunk === 'string') return Buffer.byteLength(chunk);
  return chunk instanceof Uint8Array ? chunk.byteLength : 0;
}
