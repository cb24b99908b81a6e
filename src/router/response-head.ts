// Response heads of the HTTP fast path: parsed and rewritten for the client (hop-by-hop headers
// removed), and remembered per upstream connection, since a backend sends the same head bytes again and
// again (only Date changes, once a second): a repeated head costs one byte comparison.

import { contentLengthOf, endsInChunked, fieldLine, isToken } from './http-syntax.js';

/** What the fast path needs of a backend's response head. */
export interface ParsedResponse {
  informational: boolean;
  /** The head to send to the client, latin1 bytes. */
  head: Buffer;
  mode: 'length' | 'chunked' | 'close' | 'none';
  length: number;
  close: boolean;
}

/** The last head parsed on one upstream connection, and for which request kind. */
export interface ResponseHeadMemo {
  raw: Buffer;
  isHead: boolean;
  clientClose: boolean;
  parsed: ParsedResponse;
}

/**
 * Parses the head `buf[0, end)`, or returns the memo's result when the bytes and the request kind are
 * the same; updates the memo holder. `undefined` when the head is malformed.
 */
export function responseHead(
  buf: Buffer,
  end: number,
  isHead: boolean,
  clientClose: boolean,
  holder: { headMemo: ResponseHeadMemo | undefined },
): ParsedResponse | undefined {
  const m = holder.headMemo;
  if (
    m !== undefined &&
    m.raw.length === end &&
    m.isHead === isHead &&
    m.clientClose === clientClose &&
    buf.compare(m.raw, 0, end, 0, end) === 0
  )
    return m.parsed;
  const parsed = parseResponseHead(buf.toString('latin1', 0, end), isHead, clientClose);
  if (parsed !== undefined && !parsed.informational)
    holder.headMemo = { raw: Buffer.from(buf.subarray(0, end)), isHead, clientClose, parsed };
  return parsed;
}

const EMPTY = Buffer.alloc(0);

/**
 * Parses a backend response head and rewrites it for the client (hop-by-hop headers removed).
 * `undefined` when the head is malformed — as strict as llhttp's response parser or stricter, so the
 * client never receives a message that llhttp would refuse or frame differently: a status line other
 * than `HTTP/1.x NNN[ reason]` (status 100..599), a field line that is not `token ":" value CRLF` (bare
 * CR or LF, controls, obs-fold, whitespace before the colon), an invalid or repeated Content-Length,
 * Transfer-Encoding that is not a plain list of codings, and Content-Length together with
 * Transfer-Encoding (RFC 9112 §6.3 calls it a possible smuggling attempt; llhttp refuses it too).
 */
export function parseResponseHead(
  text: string,
  isHead: boolean,
  clientClose: boolean,
): ParsedResponse | undefined {
  const buf = Buffer.from(`${text}\r\n\r\n`, 'latin1');
  const lineEnd = text.indexOf('\r\n');
  const first = lineEnd < 0 ? text : text.slice(0, lineEnd);
  const m = /^HTTP\/1\.([01]) ([1-5]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/.exec(first);
  if (!m) return undefined;
  const status = Number(m[2]);
  let out = `HTTP/1.1 ${m[2] as string} ${m[3] ?? ''}\r\n`;
  let length = -1;
  let te: string | undefined;
  let close = m[1] === '0';
  let i = first.length + 2;
  while (i < buf.length - 2) {
    const f = fieldLine(buf, i, buf.length);
    if (f === undefined || typeof f === 'string') return undefined;
    const line = text.slice(i, f.next - 2);
    const nameLen = f.colon - i;
    const lower = nameLen <= 17 ? text.slice(i, f.colon).toLowerCase() : '';
    const value = text.slice(f.valueStart, f.valueEnd);
    i = f.next;
    if (lower === 'connection') {
      for (const t of value.split(',')) {
        const tok = t.trim().toLowerCase();
        if (tok === 'close') close = true;
        else if (tok === 'keep-alive') close = false;
        else if (tok !== '') return undefined; // headers named by Connection: let nothing unusual through
      }
      continue;
    }
    if (lower === 'keep-alive' || lower === 'proxy-connection') continue;
    if (lower === 'content-length') {
      const n = length >= 0 ? undefined : contentLengthOf(buf, f);
      if (n === undefined) return undefined;
      length = n;
    } else if (lower === 'transfer-encoding') {
      // Untrimmed at the end: llhttp does not read `chunked<HTAB>` as chunked (then it is refused here).
      const raw = text.slice(f.valueStart, f.next - 2);
      te = te === undefined ? raw : `${te}, ${raw}`;
    }
    out += `${line}\r\n`;
  }
  if (status < 200) return { informational: true, head: EMPTY, mode: 'none', length: 0, close: false };
  let chunked = false;
  if (te !== undefined) {
    // RFC 9112 §6.1: with HTTP/1.0 the framing is faulty; with Content-Length it may be smuggling.
    if (m[1] === '0' || length >= 0 || !isCodingList(te)) return undefined;
    chunked = endsInChunked(te);
  }
  if (clientClose) out += 'connection: close\r\n';
  let mode: ParsedResponse['mode'];
  if (isHead || status === 204 || status === 304) mode = 'none';
  else if (te !== undefined) mode = chunked ? 'chunked' : 'close';
  else if (length >= 0) mode = length === 0 ? 'none' : 'length';
  else mode = 'close';
  if (mode === 'close' && !clientClose) out += 'connection: close\r\n';
  out += '\r\n';
  return { informational: false, head: Buffer.from(out, 'latin1'), mode, length: Math.max(0, length), close };
}

/**
 * A comma-separated list of tokens (spaces around commas allowed), as Transfer-Encoding must be, that
 * names `chunked` at most as its last coding (elsewhere llhttp and RFC 9112 §6.3 part ways).
 */
function isCodingList(value: string): boolean {
  const list = value.split(',').map((c) => c.replace(/^ +| +$/g, ''));
  return list.every((c, k) => isToken(c) && (k === list.length - 1 || c.toLowerCase() !== 'chunked'));
}
