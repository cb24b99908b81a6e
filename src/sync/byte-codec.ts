import { UnderstudyError, ErrorCode } from '../errors/index.js';

/** Growable byte writer with unsigned LEB128 varints (numbers up to 2^53). */
export class ByteWriter {
  #buf: Buffer;
  #len = 0;
  constructor(initial = 256) {
    this.#buf = Buffer.allocUnsafe(initial);
  }
  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }
  get length(): number {
    return this.#len;
  }
  u8(v: number): this {
    this.#ensure(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }
  varint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.#ensure(8);
    while (v >= 0x80) {
      this.#buf[this.#len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.#buf[this.#len++] = v;
    return this;
  }
  /** Zig-zag signed varint. */
  svarint(v: number): this {
    return this.varint(v < 0 ? -2 * v - 1 : 2 * v);
  }
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  /** Length-prefixed bytes. */
  lbytes(b: Uint8Array): this {
    return this.varint(b.length).bytes(b);
  }
  str(s: string): this {
    return this.lbytes(Buffer.from(s, 'utf8'));
  }
  finish(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

function malformed(what: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.SyncFrame, `malformed sync payload: ${what}`);
}

/** Bounds-checked reader matching {@link ByteWriter}; throws `UNDERSTUDY_ERR_SYNC_FRAME` on short or bad input. */
export class ByteReader {
  #pos = 0;
  constructor(readonly buf: Uint8Array) {}
  get pos(): number {
    return this.#pos;
  }
  get remaining(): number {
    return this.buf.length - this.#pos;
  }
  u8(): number {
    if (this.#pos >= this.buf.length) throw malformed('truncated');
    return this.buf[this.#pos++] as number;
  }
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(result)) throw malformed('varint overflow');
        return result;
      }
      mul *= 0x80;
    }
    throw malformed('varint too long');
  }
  svarint(): number {
    const v = this.varint();
    return v % 2 === 1 ? -(v + 1) / 2 : v / 2;
  }
  bytes(n: number): Uint8Array {
    if (n < 0 || this.#pos + n > this.buf.length) throw malformed('truncated');
    const out = this.buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }
  lbytes(max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const n = this.varint();
    if (n > max) throw malformed('field too long');
    return this.bytes(n);
  }
  str(max = 65536): string {
    const b = this.lbytes(max);
    const s = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');
    if (Buffer.byteLength(s, 'utf8') !== b.length) throw malformed('invalid UTF-8');
    return s;
  }
  end(): void {
    if (this.#pos !== this.buf.length) throw malformed('trailing bytes');
  }
}
