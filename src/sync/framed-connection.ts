import type { Socket } from 'node:net';
import {
  encodeFrame,
  FrameDecoder,
  FRAME_HEADER_BYTES,
  FRAME_MAC_BYTES,
  type Frame,
  type FrameTypeValue,
} from './frame-codec.js';
import type { TokenBucket } from './token-bucket.js';

/** Options of {@link FramedConnection}. */
export interface FramedConnectionOptions {
  readonly key: Buffer;
  readonly maxPayloadBytes: number;
  readonly bucket?: TokenBucket | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A socket speaking the frame protocol: authenticated frames out with write backpressure and an
 * optional bandwidth cap, decoded frames in. Any decode error closes the connection with that error.
 */
export class FramedConnection {
  #sendKey: Buffer;
  #outSeq = 0;
  readonly #decoder: FrameDecoder;
  #closed = false;
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    readonly socket: Socket,
    private readonly options: FramedConnectionOptions,
    onFrame: (frame: Frame) => void,
    private readonly onClose: (err: Error | undefined) => void,
  ) {
    this.#sendKey = options.key;
    this.#decoder = new FrameDecoder({ key: options.key, maxPayloadBytes: options.maxPayloadBytes }, onFrame);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      try {
        this.#decoder.push(chunk);
      } catch (err) {
        this.close(err as Error);
      }
    });
    socket.on('error', (err) => this.close(err));
    socket.on('close', () => this.close(undefined));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Switches both directions to the session key (call between handshake frames). */
  setKey(key: Buffer): void {
    this.#sendKey = key;
    this.#decoder.setKey(key);
  }
  /** Switches only the sending key. */
  setSendKey(key: Buffer): void {
    this.#sendKey = key;
  }
  /** Switches only the receiving key. */
  setReceiveKey(key: Buffer): void {
    this.#decoder.setKey(key);
  }

  /** Encodes and writes one frame at once (handshake, acks), bypassing the bandwidth cap. */
  sendNow(type: FrameTypeValue, payload: Uint8Array): void {
    if (this.#closed) return;
    const frame = encodeFrame(this.#sendKey, type, this.#outSeq++, payload);
    this.bytesOut += frame.length;
    this.socket.write(frame);
  }

  /** Sends one frame, waiting for the bandwidth cap and for the socket to drain. */
  async send(type: FrameTypeValue, payload: Uint8Array, more?: Uint8Array): Promise<void> {
    if (this.#closed) return;
    const size = FRAME_HEADER_BYTES + payload.length + (more?.length ?? 0) + FRAME_MAC_BYTES;
    if (this.options.bucket) await this.options.bucket.take(size, this.options.signal);
    if (this.#closed) return;
    const frame = encodeFrame(this.#sendKey, type, this.#outSeq++, payload, more);
    this.bytesOut += frame.length;
    if (!this.socket.write(frame)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.socket.off('drain', done);
          this.socket.off('close', done);
          resolve();
        };
        this.socket.on('drain', done);
        this.socket.on('close', done);
      });
    }
  }

  /** Pauses or resumes reading (receiver-side backpressure). */
  setReading(on: boolean): void {
    if (on) this.socket.resume();
    else this.socket.pause();
  }

  close(err?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
    this.onClose(err);
  }
}
