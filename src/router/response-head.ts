// Response heads of the HTTP fast path: parsed and rewritten for the client (hop-by-hop headers
// removed), and remembered per upstream connection, since a backend sends the same head bytes again and
// again (only Date changes, once a second): a repeated head costs one byte comparison.

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

/** Parses a backend response head and rewrites it for the client (hop-by-hop headers removed). */
export function parseResponseHead(
  text: string,
  isHead: boolean,
  clientClose: boolean,
): ParsedResponse | undefined {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] as string);
  if (!m) return undefined;
  const status = Number(m[1]);
  if (status >= 100 && status < 200)
    return { informational: true, head: EMPTY, mode: 'none', length: 0, close: false };
  let out = `HTTP/1.1 ${m[1]} ${m[2] ?? ''}\r\n`;
  let length = -1;
  let chunked = false;
  let te = false;
  let close = (lines[0] as string).startsWith('HTTP/1.0');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    const colon = line.indexOf(':');
    if (colon <= 0) return undefined;
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    const lower = name.length <= 17 ? name.toLowerCase() : '';
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
      const n = Number(value);
      if (!/^\d+$/.test(value) || (length >= 0 && length !== n)) return undefined;
      length = n;
    } else if (lower === 'transfer-encoding') {
      te = true;
      chunked = /(?:^|,)\s*chunked\s*$/i.test(value);
    }
    out += `${line}\r\n`;
  }
  if (clientClose) out += 'connection: close\r\n';
  let mode: ParsedResponse['mode'];
  if (isHead || status === 204 || status === 304) mode = 'none';
  else if (te) mode = chunked ? 'chunked' : 'close';
  else if (length >= 0) mode = length === 0 ? 'none' : 'length';
  else mode = 'close';
  if (mode === 'close' && !clientClose) out += 'connection: close\r\n';
  out += '\r\n';
  return { informational: false, head: Buffer.from(out, 'latin1'), mode, length: Math.max(0, length), close };
}
