const enum S {
  Size,
  SizeExt,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  TrailerLine,
  TrailerLineLf,
  Done,
}

/**
 * Finds where a chunked (RFC 9112 §7.1) message body ends, without decoding it: the fast path forwards
 * chunked bodies byte for byte and only needs to know when the message is complete.
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
    let i = start;
    const n = buf.length;
    while (i < n) {
      switch (this.#s) {
        case S.Size: {
          const c = buf[i] as number;
          const d =
            c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
          if (d >= 0) {
            if (++this.#sizeDigits > 12) return this.#fail();
            this.#size = this.#size * 16 + d;
          } else if (c === 13 && this.#sizeDigits > 0) this.#s = S.SizeLf;
          else if ((c === 59 || c === 32 || c === 9) && this.#sizeDigits > 0) this.#s = S.SizeExt;
          else return this.#fail();
          i++;
          break;
        }
        case S.SizeExt:
          if (buf[i] === 13) this.#s = S.SizeLf;
          i++;
          break;
        case S.SizeLf:
          if (buf[i] !== 10) return this.#fail();
          i++;
          if (this.#size === 0) this.#s = S.Trailer;
          else {
            this.#left = this.#size;
            this.#s = S.Data;
          }
          this.#size = 0;
          this.#sizeDigits = 0;
          break;
        case S.Data: {
          const take = Math.min(this.#left, n - i);
          this.#left -= take;
          i += take;
          if (this.#left === 0) this.#s = S.DataCr;
          break;
        }
        case S.DataCr:
          if (buf[i] !== 13) return this.#fail();
          this.#s = S.DataLf;
          i++;
          break;
        case S.DataLf:
          if (buf[i] !== 10) return this.#fail();
          this.#s = S.Size;
          i++;
          break;
        case S.Trailer:
          // Either the empty line that ends the message, or a trailer field line.
          this.#s = buf[i] === 13 ? S.TrailerLf : S.TrailerLine;
          i++;
          break;
        case S.TrailerLf:
          if (buf[i] !== 10) return this.#fail();
          this.#s = S.Done;
          return i + 1;
        case S.TrailerLine:
          if (buf[i] === 13) this.#s = S.TrailerLineLf;
          i++;
          break;
        case S.TrailerLineLf:
          if (buf[i] !== 10) return this.#fail();
          this.#s = S.Trailer;
          i++;
          break;
        case S.Done:
          return i;
      }
    }
    return -1;
  }

  #fail(): number {
    this.error = true;
    return -1;
  }
}
