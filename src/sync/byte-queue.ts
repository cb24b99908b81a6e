import { UnderstudyError, ErrorCode } from '../errors/index.js';

/**
 * An async FIFO of bytes between the frame handler (producer) and the batch stager (consumer).
 * `end()` marks the end of a batch's data; reading past it throws `UNDERSTUDY_ERR_SYNC_FRAME`.
 */
export class ByteQueue {
  #chunks: Buffer[] = [];
  #size = 0;
  #ended = false;
  #error: Error | undefined;
  #waiter: (() => void) | undefined;

  /** @param onConsume called with the bytes consumed, for receiver backpressure. */
  constructor(private readonly onConsume?: (bytes: number) => void) {}

  get size(): number {
    return this.#size;
  }
  get ended(): boolean {
    return this.#ended;
  }

  push(chunk: Buffer): void {
    if (this.#ended) throw new UnderstudyError(ErrorCode.SyncFrame, 'data after end of batch');
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    this.#wake();
  }
  end(): void {
    this.#ended = true;
    this.#wake();
  }
  fail(err: Error): void {
    this.#error = err;
    this.#wake();
  }
  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }
  async #wait(): Promise<void> {
    if (this.#error) throw this.#error;
    await new Promise<void>((resolve) => (this.#waiter = resolve));
    if (this.#error) throw this.#error;
  }

  /** Reads exactly `n` bytes. */
  async readExact(n: number): Promise<Buffer> {
    while (this.#size < n) {
      if (this.#ended) throw new UnderstudyError(ErrorCode.SyncFrame, 'batch data ended early');
      await this.#wait();
    }
    const first = this.#chunks[0] as Buffer | undefined;
    let out: Buffer;
    if (first && first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      // Join just the chunks the read spans (not everything queued).
      let k = 0;
      for (let got = 0; got < n; k++) got += (this.#chunks[k] as Buffer).length;
      const joined = Buffer.concat(this.#chunks.slice(0, k));
      out = joined.subarray(0, n);
      this.#chunks.splice(0, k, ...(joined.length > n ? [joined.subarray(n)] : []));
    }
    this.#size -= n;
    this.onConsume?.(n);
    return out;
  }

  /** Reads between 1 and `max` bytes (whatever is buffered, waiting if nothing is). */
  async readUpTo(max: number): Promise<Buffer> {
    while (this.#size === 0) {
      if (this.#ended) throw new UnderstudyError(ErrorCode.SyncFrame, 'batch data ended early');
      await this.#wait();
    }
    const first = this.#chunks[0] as Buffer;
    return this.readExact(Math.min(max, first.length));
  }

  /**
   * Reads between 1 and `max` bytes as the queued pieces themselves (no copy), waiting if nothing
   * is buffered.
   */
  async readPiecesUpTo(max: number): Promise<Buffer[]> {
    while (this.#size === 0) {
      if (this.#ended) throw new UnderstudyError(ErrorCode.SyncFrame, 'batch data ended early');
      await this.#wait();
    }
    const out: Buffer[] = [];
    let got = 0;
    while (got < max && this.#chunks.length > 0) {
      const c = this.#chunks[0] as Buffer;
      if (got + c.length <= max) {
        out.push(c);
        this.#chunks.shift();
        got += c.length;
      } else {
        out.push(c.subarray(0, max - got));
        this.#chunks[0] = c.subarray(max - got);
        got = max;
      }
    }
    this.#size -= got;
    this.onConsume?.(got);
    return out;
  }

  async u8(): Promise<number> {
    return (await this.readExact(1))[0] as number;
  }
  async varint(): Promise<number> {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = await this.u8();
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 0x80;
    }
    throw new UnderstudyError(ErrorCode.SyncFrame, 'varint too long');
  }
  async svarint(): Promise<number> {
    const v = await this.varint();
    return v % 2 === 1 ? -(v + 1) / 2 : v / 2;
  }
  /** Waits for the end of the batch; throws `UNDERSTUDY_ERR_SYNC_FRAME` if unread bytes remain. */
  async expectEnd(): Promise<void> {
    while (!this.#ended && this.#size === 0) await this.#wait();
    if (this.#size > 0) throw new UnderstudyError(ErrorCode.SyncFrame, 'batch data longer than its files');
  }

  /** True when the batch ended and every byte was read. */
  get drained(): boolean {
    return this.#ended && this.#size === 0;
  }
}
