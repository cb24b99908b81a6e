import type { Socket } from 'node:net';
import {
  encodeFrameParts,
  FrameAuth,
  FrameDecoder,
  FRAME_HEADER_BYTES,
  type Frame,
  type FrameTypeValue,
} from './frame-codec.js';
import type { TokenBucket } from './token-bucket.js';
import { UnderstudyError, ErrorCode } from '../errors/index.js';

/** Options of {@link FramedConnection} (resolved by its owner: every field is required but the cap). */
export interface FramedConnectionOptions {
  /** The per-service key the handshake frames are authenticated with. */
  readonly key: Buffer;
  /** Largest frame payload accepted once the peer is authenticated. */
  readonly maxPayloadBytes: number;
  /** Largest frame payload accepted until the peer is authenticated (see `authenticated`). */
  readonly maxHandshakeBytes: number;
  /** The connection is closed if the peer is not authenticated within this many milliseconds. */
  readonly handshakeTimeoutMs: number;
  readonly bucket?: TokenBucket | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * A socket speaking the frame protocol: authenticated frames out with write backpressure and an
 * optional bandwidth cap, decoded frames in. Any decode error closes the connection with that error.
 * Until its owner declares the peer authenticated, frames are limited to `maxHandshakeBytes` and the
 * handshake has `handshakeTimeoutMs` to complete.
 */
export class FramedConnection {
  #sendKey: FrameAuth;
  #outSeq = 0;
  readonly #decoder: FrameDecoder;
  #closed = false;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #authenticated = false;
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    readonly socket: Socket,
    private readonly options: FramedConnectionOptions,
    onFrame: (frame: Frame) => void,
    private readonly onClose: (err: Error | undefined) => void,
  ) {
    this.#sendKey = FrameAuth.hmac(options.key);
    this.#decoder = new FrameDecoder(
      { key: options.key, maxPayloadBytes: Math.min(options.maxHandshakeBytes, options.maxPayloadBytes) },
      onFrame,
    );
    this.#handshakeTimer = setTimeout(() => {
      this.close(
        new UnderstudyError(
          ErrorCode.SyncTransport,
          `sync handshake not completed within ${options.handshakeTimeoutMs} ms`,
          { details: { timeoutMs: options.handshakeTimeoutMs } },
        ),
      );
    }, options.handshakeTimeoutMs);
    this.#handshakeTimer.unref();
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

  /** Whether the owner declared the peer authenticated (it proved it holds this connection's keys). */
  get isAuthenticated(): boolean {
    return this.#authenticated;
  }

  /** The peer proved it holds the session keys: lifts the handshake's frame limit and deadline. */
  authenticated(): void {
    this.#authenticated = true;
    clearTimeout(this.#handshakeTimer);
    this.#decoder.setMaxPayloadBytes(this.options.maxPayloadBytes);
  }

  /** Switches to the session's authentications, one per direction (call between handshake frames). */
  setSessionKeys(send: FrameAuth, receive: FrameAuth): void {
    this.#sendKey = send;
    this.#decoder.setKey(receive);
  }

  /** Writes one frame's parts in one go (a gathered write: the payload is not copied). */
  #write(type: FrameTypeValue, payload: Uint8Array, more?: Uint8Array): boolean {
    const parts = encodeFrameParts(this.#sendKey, type, this.#outSeq++, payload, more);
    let ok = true;
    this.socket.cork();
    for (const p of parts) {
      this.bytesOut += p.length;
      ok = this.socket.write(p);
    }
    this.socket.uncork();
    return ok;
  }

  /** Encodes and writes one frame at once (handshake, acks), bypassing the bandwidth cap. */
  sendNow(type: FrameTypeValue, payload: Uint8Array): void {
    if (this.#closed) return;
    this.#write(type, payload);
  }

  /** Sends one frame, waiting for the bandwidth cap and for the socket to drain. */
  async send(type: FrameTypeValue, payload: Uint8Array, more?: Uint8Array): Promise<void> {
    if (this.#closed) return;
    const size = FRAME_HEADER_BYTES + payload.length + (more?.length ?? 0) + this.#sendKey.macBytes;
    if (this.options.bucket) await this.options.bucket.take(size, this.options.signal);
    if (this.#closed) return;
    if (!this.#write(type, payload, more)) {
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
    clearTimeout(this.#handshakeTimer);
    this.socket.destroy();
    this.onClose(err);
  }
}
