// Strict HTTP/1.1 syntax (RFC 9112) for the router's raw-socket fast path: whatever llhttp (node's
// parser) would reject or frame differently is refused here, so the fast path never forwards bytes that
// a backend or node:http could read as another message. Checked differentially against llhttp in
// http-syntax.test.ts.

import { METHODS } from 'node:http';

/** `tchar` of RFC 9110 §5.6.2: the bytes of a method, a field name or a transfer coding. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Bytes of a field value: HTAB, SP, VCHAR, obs-text — no other control byte (llhttp rejects those). */
const VCHAR = new Uint8Array(256);
VCHAR[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VCHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VCHAR[c] = 1;

/** Bytes of a request target: visible ASCII (llhttp refuses controls, space and obs-text in a URL). */
const TARGET = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET[c] = 1;

/** The methods llhttp knows (it refuses any other), and their prefixes (a method still arriving). */
const METHOD_SET: ReadonlySet<string> = new Set(METHODS);
const METHOD_PREFIXES: ReadonlySet<string> = new Set(
  METHODS.flatMap((m) => [...m].map((_, k) => m.slice(0, k + 1))),
);

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const VERSION_11 = Buffer.from('HTTP/1.1');
const VERSION_10 = Buffer.from('HTTP/1.0');
/** Longest Content-Length accepted: 15 digits stays within Number's exact integers. */
const MAX_LENGTH_DIGITS = 15;

/** What {@link checkRequestHead} learned of a complete, well-formed request head. */
export interface RequestHeadFacts {
  /** Index just past the empty line that ends the head. */
  readonly end: number;
  readonly http10: boolean;
  readonly hosts: number;
  /** The Content-Length, or -1 without one. */
  readonly contentLength: number;
  /** A Transfer-Encoding field was present (its last coding is then `chunked`). */
  readonly chunked: boolean;
}

/** Why a request head was refused. */
export interface HeadError {
  readonly error: string;
}

/**
 * Checks the request head at the start of `buf[0, len)`, which may be incomplete. Returns the facts of
 * a complete well-formed head, a {@link HeadError} as soon as any byte seen so far is malformed (so a
 * client is refused before it finishes a bad head), or `undefined` when the bytes so far are a valid
 * prefix. Refused, as llhttp refuses them: a method llhttp does not know, a field name that is not a token, a target with
 * a control, space or non-ASCII byte, a version other than HTTP/1.0 or HTTP/1.1, a line not ended by
 * CRLF (bare LF or bare CR), a control byte other than HTAB in a field value, whitespace before a colon,
 * obs-fold, an invalid or repeated Content-Length, Content-Length with Transfer-Encoding, a
 * Transfer-Encoding whose last coding is not `chunked`; and beyond llhttp (RFC 9112 §3.2, §6.1): no
 * Host or several Host fields in HTTP/1.1, several Host fields or Transfer-Encoding in HTTP/1.0.
 */
export function checkRequestHead(buf: Buffer, len: number): RequestHeadFacts | HeadError | undefined {
  // Request line: method SP target SP version CRLF.
  let i = 0;
  while (i < len && TCHAR[buf[i] as number] === 1) i++;
  if (i === len)
    return METHOD_PREFIXES.has(buf.toString('latin1', 0, i)) ? undefined : { error: 'invalid method' };
  if (i === 0 || buf[i] !== SP || !METHOD_SET.has(buf.toString('latin1', 0, i)))
    return { error: 'invalid method' };
  const t = ++i;
  while (i < len && TARGET[buf[i] as number] === 1) i++;
  if (i === len) return undefined;
  if (i === t || buf[i] !== SP) return { error: 'invalid request target' };
  const v = ++i;
  const n = Math.min(len - v, 8);
  const http11 = buf.compare(VERSION_11, 0, n, v, v + n) === 0;
  if (!http11 && buf.compare(VERSION_10, 0, n, v, v + n) !== 0) return { error: 'invalid HTTP version' };
  if (n < 8) return undefined;
  i = v + 8;
  const eol = lineEnd(buf, i, len);
  if (eol !== 0) return eol < 0 ? undefined : { error: 'invalid HTTP version' };
  i += 2;
  let hosts = 0;
  let contentLength = -1;
  let te = '';
  let teSeen = false;
  for (;;) {
    if (i >= len) return undefined;
    if (buf[i] === CR) {
      if (i + 1 >= len) return undefined;
      if (buf[i + 1] !== LF) return { error: 'bare CR' };
      i += 2;
      break;
    }
    const f = fieldLine(buf, i, len);
    if (f === undefined) return undefined;
    if (typeof f === 'string') return { error: f };
    const nameLen = f.colon - i;
    if (nameLen === 4 && buf.toString('latin1', i, f.colon).toLowerCase() === 'host') hosts++;
    else if (nameLen === 14 && buf.toString('latin1', i, f.colon).toLowerCase() === 'content-length') {
      if (contentLength >= 0) return { error: 'repeated Content-Length' };
      const length = contentLengthOf(buf, f);
      if (length === undefined) return { error: 'invalid Content-Length' };
      contentLength = length;
    } else if (nameLen === 17 && buf.toString('latin1', i, f.colon).toLowerCase() === 'transfer-encoding') {
      // Untrimmed at the end: llhttp does not read `chunked<HTAB>` as chunked.
      const value = buf.toString('latin1', f.valueStart, f.next - 2);
      te = teSeen ? `${te}, ${value}` : value;
      teSeen = true;
      // As llhttp: refused at once when a coding follows chunked (the list can no longer end in it).
      if (
        codings(te).some(
          (c, k, all) => c === '' || !isToken(c) || (c.toLowerCase() === 'chunked' && k < all.length - 1),
        )
      )
        return { error: 'Transfer-Encoding not ending in chunked' };
    }
    if (hosts > 1) return { error: 'several Host fields' };
    if (teSeen && contentLength >= 0) return { error: 'Content-Length with Transfer-Encoding' };
    i = f.next;
  }
  const http10 = !http11;
  if (hosts > 1 || (hosts === 0 && http11)) return { error: hosts > 1 ? 'several Host fields' : 'no Host' };
  if (teSeen) {
    if (http10) return { error: 'Transfer-Encoding in HTTP/1.0' };
    if (contentLength >= 0) return { error: 'Content-Length with Transfer-Encoding' };
    if (!endsInChunked(te)) return { error: 'Transfer-Encoding not ending in chunked' };
  }
  return { end: i, http10, hosts, contentLength, chunked: teSeen };
}

/** A field line `name ":" OWS value OWS CRLF` found by {@link fieldLine}. */
export interface FieldLine {
  readonly colon: number;
  /** The value without surrounding whitespace. */
  readonly valueStart: number;
  readonly valueEnd: number;
  /** Index just past the line's CRLF. */
  readonly next: number;
}

/**
 * Checks one field line (a header or a trailer) starting at `i` in `buf[0, len)`: the line, an error,
 * or `undefined` when the bytes so far are a valid prefix of a field line.
 */
export function fieldLine(buf: Buffer, i: number, len: number): FieldLine | string | undefined {
  const first = buf[i];
  if (first === SP || first === HTAB) return 'obs-fold or whitespace before a field name';
  let k = i;
  while (k < len && TCHAR[buf[k] as number] === 1) k++;
  if (k === len) return undefined;
  if (k === i || buf[k] !== COLON) return 'invalid field name';
  const colon = k++;
  while (k < len && (buf[k] === SP || buf[k] === HTAB)) k++;
  const valueStart = k;
  while (k < len && VCHAR[buf[k] as number] === 1) k++;
  const eol = lineEnd(buf, k, len);
  if (eol < 0) return undefined;
  if (eol > 0) return 'invalid byte in a field value';
  let valueEnd = k;
  while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
  return { colon, valueStart, valueEnd, next: k + 2 };
}

/**
 * The value of a Content-Length field line as llhttp reads it: 1 to 15 digits, followed only by spaces
 * (llhttp refuses a tab after the digits); `undefined` when invalid.
 */
export function contentLengthOf(buf: Buffer, f: FieldLine): number | undefined {
  const digits = f.valueEnd - f.valueStart;
  if (digits === 0 || digits > MAX_LENGTH_DIGITS) return undefined;
  for (let k = f.valueStart; k < f.valueEnd; k++) {
    const c = buf[k] as number;
    if (c < 0x30 || c > 0x39) return undefined;
  }
  for (let k = f.valueEnd; k < f.next - 2; k++) if (buf[k] === HTAB) return undefined;
  return Number(buf.toString('latin1', f.valueStart, f.valueEnd));
}

/** 0 when `buf[k, k+2)` is CRLF, -1 when `len` cuts it short (so far valid), 1 otherwise. */
function lineEnd(buf: Buffer, k: number, len: number): number {
  if (k >= len) return -1;
  if (buf[k] !== CR) return 1;
  if (k + 1 >= len) return -1;
  return buf[k + 1] === LF ? 0 : 1;
}

/**
 * True when a Transfer-Encoding value is a list of tokens (separated by commas and spaces) whose last
 * is `chunked` (any case) and that names `chunked` only once (RFC 9112 §6.1).
 */
export function endsInChunked(value: string): boolean {
  const list = codings(value);
  if (!list.every(isToken)) return false;
  const lower = list.map((c) => c.toLowerCase());
  return lower.indexOf('chunked') === lower.length - 1;
}

/** The codings of a Transfer-Encoding value, spaces around commas removed. */
function codings(value: string): string[] {
  return value.split(',').map((c) => c.replace(/^ +| +$/g, ''));
}

/** Whether every byte of `s` is a `tchar`. */
export function isToken(s: string): boolean {
  if (s === '') return false;
  for (let k = 0; k < s.length; k++) if (TCHAR[s.charCodeAt(k)] !== 1) return false;
  return true;
}

/** Whether `c` may appear in a field value (HTAB, SP, VCHAR, obs-text). */
export function isFieldValueByte(c: number): boolean {
  return VCHAR[c] === 1;
}

/** Whether `c` is a `tchar`. */
export function isTokenByte(c: number): boolean {
  return TCHAR[c] === 1;
}
