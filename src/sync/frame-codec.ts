import { createHmac, timingSafeEqual } from 'node:crypto';
import { UnderstudyError, ErrorCode } from '../errors/index.js';

/** Wire protocol version spoken by this build. */
export const PROTOCOL_VERSION = 1;
/** Bytes of the fixed frame header: magic(2) version(1) type(1) seq(8) length(4). */
export const FRAME_HEADER_BYTES = 16;
/** Bytes of the HMAC-SHA256 trailer. */
export const FRAME_MAC_BYTES = 32;
const MAGIC0 = 0x55; // 'U'
const MAGIC1 = 0x53; // 'S'

/** Frame types of the sync protocol. */
export const FrameType = {
  HelloTarget: 1,
  HelloSource: 2,
  Manifest: 3,
  Batch: 4,
  Data: 5,
  BatchEnd: 6,
  Ack: 7,
  Error: 8,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];
const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/** A decoded, authenticated frame. */
export interface Frame {
  readonly type: FrameTypeValue;
  readonly seq: number;
  readonly payload: Buffer;
}

function frameError(message: string, details: Record<string, unknown> = {}): UnderstudyError {
  return new UnderstudyError(ErrorCode.SyncFrame, message, { details });
}

/**
 * Encodes one frame: header, payload and an HMAC-SHA256 over both under `key`.
 * `seq` is the per-connection, per-direction frame counter the peer checks for replay. The payload
 * may be given in two parts (`payload` then `more`).
 */
export function encodeFrame(
  key: Buffer,
  type: FrameTypeValue,
  seq: number,
  payload: Uint8Array,
  more?: Uint8Array,
): Buffer {
  const len = payload.length + (more?.length ?? 0);
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + len + FRAME_MAC_BYTES);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = PROTOCOL_VERSION;
  out[3] = type;
  out.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 4);
  out.writeUInt32BE(seq >>> 0, 8);
  out.writeUInt32BE(len, 12);
  out.set(payload, FRAME_HEADER_BYTES);
  if (more) out.set(more, FRAME_HEADER_BYTES + payload.length);
  const mac = createHmac('sha256', key)
    .update(out.subarray(0, FRAME_HEADER_BYTES + len))
    .digest();
  mac.copy(out, FRAME_HEADER_BYTES + len);
  return out;
}

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Key the next frames are authenticated with (changeable with `setKey`). */
  readonly key: Buffer;
  /** Largest payload accepted; larger frames are rejected before they are buffered. */
  readonly maxPayloadBytes: number;
}

/**
 * Incremental decoder: feed it arbitrary chunks of a byte stream; it calls `onFrame` for each complete,
 * authenticated frame in order. Throws `UNDERSTUDY_ERR_SYNC_FRAME` on a bad magic, version, type,
 * oversized length, wrong MAC, or an out-of-order sequence number (replay); the stream is then unusable.
 */
export class FrameDecoder {
  #key: Buffer;
  readonly #max: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #expectedSeq = 0;
  #failed = false;

  constructor(
    options: FrameDecoderOptions,
    private readonly onFrame: (frame: Frame) => void,
  ) {
    this.#key = options.key;
    this.#max = options.maxPayloadBytes;
  }

  /** Switches the key for all following frames (after the handshake). */
  setKey(key: Buffer): void {
    this.#key = key;
  }

  /** Bytes buffered and not yet decoded. */
  get buffered(): number {
    return this.#buffered;
  }

  push(chunk: Buffer): void {
    if (this.#failed) throw frameError('decoder already failed');
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      this.#drain();
    } catch (err) {
      this.#failed = true;
      this.#chunks = [];
      this.#buffered = 0;
      throw err;
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first && first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.#chunks);
    this.#chunks = [joined];
    return joined.subarray(0, n);
  }

  #take(n: number): Buffer {
    const joined = this.#peek(n);
    const first = this.#chunks[0] as Buffer;
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return joined;
  }

  #drain(): void {
    while (this.#buffered >= FRAME_HEADER_BYTES) {
      const h = this.#peek(FRAME_HEADER_BYTES);
      if (h[0] !== MAGIC0 || h[1] !== MAGIC1) throw frameError('bad frame magic');
      if (h[2] !== PROTOCOL_VERSION)
        throw frameError(`unsupported protocol version ${h[2]}`, { version: h[2] });
      const type = h[3] as number;
      if (!KNOWN_TYPES.has(type)) throw frameError(`unknown frame type ${type}`, { type });
      const len = h.readUInt32BE(12);
      if (len > this.#max)
        throw frameError(`frame of ${len} bytes exceeds the ${this.#max}-byte limit`, { length: len });
      const total = FRAME_HEADER_BYTES + len + FRAME_MAC_BYTES;
      if (this.#buffered < total) return;
      const raw = this.#take(total);
      const body = raw.subarray(0, FRAME_HEADER_BYTES + len);
      const mac = createHmac('sha256', this.#key).update(body).digest();
      if (!timingSafeEqual(mac, raw.subarray(FRAME_HEADER_BYTES + len)))
        throw frameError('frame authentication failed');
      const seq = raw.readUInt32BE(4) * 0x1_0000_0000 + raw.readUInt32BE(8);
      if (seq !== this.#expectedSeq)
        throw frameError(`frame sequence ${seq} out of order (expected ${this.#expectedSeq})`, { seq });
      this.#expectedSeq++;
      this.onFrame({
        type: type as FrameTypeValue,
        seq,
        payload: raw.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len),
      });
    }
  }
}

/** Derives the per-connection session key from the per-service key and both handshake nonces. */
export function deriveSessionKey(
  serviceKey: Buffer,
  targetNonce: Uint8Array,
  sourceNonce: Uint8Array,
): Buffer {
  return createHmac('sha256', serviceKey)
    .update('understudy-sync-v1')
    .update(targetNonce)
    .update(sourceNonce)
    .digest();
}
