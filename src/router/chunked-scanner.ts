import { isFieldValueByte, isTokenByte } from './http-syntax.js';

const enum S {
  Size,
  /** After `;`: the first byte of an extension name. */
  ExtName,
  ExtNameMore,
  /** After `=`: a token or a quoted string. */
  ExtValue,
  ExtToken,
  ExtQuoted,
  ExtQuotedPair,
  ExtQuotedEnd,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  /** The start of a trailer line, or the empty line that ends the message. */
  Trailer,
  TrailerLf,
  TrailerName,
  TrailerValue,
  TrailerLineLf,
  Done,
}

const CR = 13;
const LF = 10;
const SEMI = 59;
const EQ = 61;
const DQUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;

/** `qdtext` of RFC 9110 §5.6.4: HTAB, SP, VCHAR except `"` and `\`, obs-text. */
function isQdText(c: number): boolean {
  return (
    c === 9 || c === 32 || c === 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80
  );
}

/**
 * Finds where a chunked (RFC 9112 §7.1) message body ends, without decoding it: the fast path forwards
 * chunked bodies byte for byte and only needs to know when the message is complete. As strict as
 * llhttp or stricter (checked differentially in chunked-scanner.test.ts): a chunk size is 1 to 12 hex
 * digits with nothing before its CRLF but extensions `;name[=token|"quoted"]` (no whitespace), every line
 * ends with CRLF, and a trailer line is a field line (`token ":" value`, no controls, no obs-fold).
 */
export class ChunkedScanner {
  #s: S = S.Size;
  #size = 0;
  #sizeDigits = 0;
  #left = 0;
  /** Set when the framing is malformed. */
  error = false;

  get done(): boolean {
    return this.#s === S.Done;
  }

  /**
   * Scans `buf` from `start`; returns the index just past the end of the body when it ends inside `buf`,
   * or -1 when more bytes are needed (or the framing is malformed: see {@link error}).
   */
  scan(buf: Buffer, start = 0): number {
    if (this.error) return -1;
    let i = start;
    const n = buf.length;
    while (i < n) {
      if (this.#s === S.Data) {
        const take = Math.min(this.#left, n - i);
        this.#left -= take;
        i += take;
        if (this.#left === 0) this.#s = S.DataCr;
        continue;
      }
      if (this.#s === S.Done) return i;
      const c = buf[i] as number;
      i++;
      switch (this.#s) {
        case S.Size: {
          const d =
            c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (d >= 0) {
            if (++this.#sizeDigits > 12) return this.#fail();
            this.#size = this.#size * 16 + d;
          } else if (this.#sizeDigits === 0) return this.#fail();
          else if (c === CR) this.#s = S.SizeLf;
          else if (c === SEMI) this.#s = S.ExtName;
          else return this.#fail();
          break;
        }
        case S.ExtName:
          if (!isTokenByte(c)) return this.#fail();
          this.#s = S.ExtNameMore;
          break;
        case S.ExtNameMore:
          if (c === EQ) this.#s = S.ExtValue;
          else if (!this.#afterExtension(c)) return this.#fail();
          break;
        case S.ExtValue:
          if (c === DQUOTE) this.#s = S.ExtQuoted;
          else if (isTokenByte(c)) this.#s = S.ExtToken;
          else return this.#fail();
          break;
        case S.ExtToken:
          if (!this.#afterExtension(c)) return this.#fail();
          break;
        case S.ExtQuoted:
          if (c === DQUOTE) this.#s = S.ExtQuotedEnd;
          else if (c === BACKSLASH) this.#s = S.ExtQuotedPair;
          else if (!isQdText(c)) return this.#fail();
          break;
        case S.ExtQuotedPair:
          if (c !== 9 && c < 32) return this.#fail();
          if (c === 127) return this.#fail();
          this.#s = S.ExtQuoted;
          break;
        case S.ExtQuotedEnd:
          if (c === SEMI) this.#s = S.ExtName;
          else if (c === CR) this.#s = S.SizeLf;
          else return this.#fail();
          break;
        case S.SizeLf:
          if (c !== LF) return this.#fail();
          if (this.#size === 0) this.#s = S.Trailer;
          else {
            this.#left = this.#size;
            this.#s = S.Data;
          }
          this.#size = 0;
          this.#sizeDigits = 0;
          break;
        case S.DataCr:
          if (c !== CR) return this.#fail();
          this.#s = S.DataLf;
          break;
        case S.DataLf:
          if (c !== LF) return this.#fail();
          this.#s = S.Size;
          break;
        case S.Trailer:
          if (c === CR) this.#s = S.TrailerLf;
          else if (isTokenByte(c)) this.#s = S.TrailerName;
          else return this.#fail();
          break;
        case S.TrailerLf:
          if (c !== LF) return this.#fail();
          this.#s = S.Done;
          return i;
        case S.TrailerName:
          if (c === COLON) this.#s = S.TrailerValue;
          else if (!isTokenByte(c)) return this.#fail();
          break;
        case S.TrailerValue:
          if (c === CR) this.#s = S.TrailerLineLf;
          else if (!isFieldValueByte(c)) return this.#fail();
          break;
        case S.TrailerLineLf:
          if (c !== LF) return this.#fail();
          this.#s = S.Trailer;
          break;
      }
    }
    return this.#s === S.Done ? i : -1;
  }

  /** Within a token (extension name or value): another token byte, `;` or the CR ending the size line. */
  #afterExtension(c: number): boolean {
    if (c === SEMI) this.#s = S.ExtName;
    else if (c === CR) this.#s = S.SizeLf;
    else if (!isTokenByte(c)) return false;
    return true;
  }

  #fail(): number {
    this.error = true;
    return -1;
  }
}
