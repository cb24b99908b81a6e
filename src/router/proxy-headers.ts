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

const CANDIDATE_LENGTHS = new Set([2, 4, 6, 7, 10, 14, 15, 16, 17, 19]);

/**
 * Copies the client's raw headers for the upstream request: hop-by-hop headers (and any named by
 * `Connection`) stripped, X-Forwarded-For appended with the client address, X-Forwarded-Proto and
 * X-Forwarded-Host set, the client's Host kept.
 */
export function upstreamRequestHeaders(
  raw: readonly string[],
  clientIp: string,
  proto: string,
): UpstreamHeaders {
  const out: string[] = [];
  let contentLength = -1;
  let chunked = false;
  let xff = '';
  let host = '';
  let hostIndex = -1;
  let connectionTokens: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (CANDIDATE_LENGTHS.has(name.length)) {
      const lower = name.toLowerCase();
      if (isHopByHopRequest(lower)) {
        if (lower === 'connection') {
          for (const t of value.split(',')) {
            const tok = t.trim().toLowerCase();
            if (tok !== '' && tok !== 'close' && tok !== 'keep-alive') (connectionTokens ??= []).push(tok);
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
      if (lower === 'host') {
        host = value;
        hostIndex = out.length + 1;
      }
    }
    out.push(name, value);
  }
  out.push('x-forwarded-for', xff === '' ? clientIp : `${xff}, ${clientIp}`, 'x-forwarded-proto', proto);
  if (host !== '') out.push('x-forwarded-host', host);
  if (connectionTokens) {
    const drop = new Set(connectionTokens);
    const filtered: string[] = [];
    hostIndex = -1;
    for (let i = 0; i < out.length; i += 2) {
      const n = out[i] as string;
      if (drop.has(n.toLowerCase())) continue;
      if (n.length === 4 && n.toLowerCase() === 'host') hostIndex = filtered.length + 1;
      filtered.push(n, out[i + 1] as string);
    }
    return { headers: filtered, host, hostIndex, contentLength, chunked };
  }
  return { headers: out, host, hostIndex, contentLength, chunked };
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
