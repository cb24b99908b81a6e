import { createCipheriv, createDecipheriv, createHmac, timingSafeEqual } from 'node:crypto';
import { UnderstudyError, ErrorCode } from '../errors/index.js';

/**
 * Wire protocol version spoken by this build (3: key confirmation before the primary acts on a
 * hello; session frames encrypted with AES-256-GCM). A peer speaking another version is refused.
 */
export const PROTOCOL_VERSION = 3;
/** Bytes of the fixed frame header: magic(2) version(1) type(1) seq(8) length(4). */
export const FRAME_HEADER_BYTES = 16;
/** Bytes of the largest authentication trailer (HMAC-SHA256). */
export const FRAME_MAC_BYTES = 32;

/**
 * How frames are protected. The handshake uses HMAC-SHA256 under the per-service key (no nonce to
 * manage; the handshake frames carry nothing secret). A session then uses AES-256-GCM under a fresh
 * key per connection and direction, the frame's header as additional data and its sequence number as
 * nonce (unique per key by construction): the payload travels encrypted and the 16-byte tag
 * authenticates header and payload.
 */
export class FrameAuth {
  private constructor(
    private readonly kind: 'hmac' | 'gcm',
    private readonly key: Buffer,
  ) {}

  /** HMAC-SHA256 (32-byte trailer, payload in clear) under `key`. */
  static hmac(key: Buffer): FrameAuth {
    return new FrameAuth('hmac', key);
  }

  /** AES-256-GCM (encrypted payload, 16-byte tag) under a 32-byte key used for one direction of one connection. */
  static gcm(key: Buffer): FrameAuth {
    if (key.length !== 32) throw new RangeError('GCM key must be 32 bytes');
    return new FrameAuth('gcm', key);
  }

  /** Bytes of this authentication's trailer. */
  get macBytes(): number {
    return this.kind === 'hmac' ? 32 : 16;
  }

  /**
   * Protects the frame `seq` whose header is `header` and payload `parts`: the parts to send after
   * the header (the payload, encrypted under GCM, piece by piece), then the trailer.
   */
  seal(seq: number, header: Uint8Array, parts: readonly Uint8Array[]): Uint8Array[] {
    if (this.kind === 'hmac') {
      const h = createHmac('sha256', this.key).update(header);
      for (const p of parts) h.update(p);
      return [...parts, h.digest()];
    }
    const c = createCipheriv('aes-256-gcm', this.key, nonceOf(seq), { authTagLength: 16 });
    c.setAAD(header);
    const out: Uint8Array[] = [];
    for (const p of parts) if (p.length > 0) out.push(c.update(p));
    c.final();
    out.push(c.getAuthTag());
    return out;
  }

  /**
   * The payload of the frame `seq` (header `header`, payload as received in `parts`, trailer `mac`),
   * decrypted piece by piece into pieces of the same lengths; null if it is not authentic.
   */
  open(seq: number, header: Uint8Array, parts: readonly Buffer[], mac: Uint8Array): Buffer[] | null {
    if (mac.length !== this.macBytes) return null;
    if (this.kind === 'hmac') {
      const h = createHmac('sha256', this.key).update(header);
      for (const p of parts) h.update(p);
      return timingSafeEqual(h.digest(), mac) ? [...parts] : null;
    }
    const d = createDecipheriv('aes-256-gcm', this.key, nonceOf(seq), { authTagLength: 16 });
    d.setAAD(header);
    d.setAuthTag(mac);
    // Nothing decrypted is handed out before the tag has been checked by final().
    const out = parts.map((p) => d.update(p));
    try {
      d.final();
      return out;
    } catch {
      return null;
    }
  }
}

/** 96-bit GCM nonce of frame `seq`: four zero bytes, then the sequence number. */
function nonceOf(seq: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 4);
  iv.writeUInt32BE(seq >>> 0, 8);
  return iv;
}

const asAuth = (key: Buffer | FrameAuth): FrameAuth => (key instanceof FrameAuth ? key : FrameAuth.hmac(key));
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
  /** The echo proves it holds the session keys (the first frame it protects with them). */
  Confirm: 9,
  /** The primary's decision (resume or reset), sent once the echo has confirmed the keys. */
  Welcome: 10,
} as const;
export type FrameTypeValue = (typeof FrameType)[keyof typeof FrameType];
const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

/** A decoded, authenticated frame. */
export interface Frame {
  readonly type: FrameTypeValue;
  readonly seq: number;
  /** The payload (for a frame given in `parts`, joined on first use). */
  readonly payload: Buffer;
  /**
   * A large frame's payload as the pieces it arrived in (views of the socket's reads, no copy),
   * the first holding at least its first {@link PARTS_HEAD_BYTES} bytes.
   */
  readonly parts?: readonly Buffer[];
}

/** Frames larger than this that arrived in several reads are delivered in `parts`. */
const PARTS_FROM = 64 * 1024;
/** The first part of a frame given in parts holds at least this much of the payload. */
export const PARTS_HEAD_BYTES = 32;

/** `parts` from byte `start` to byte `end` (views, no copy). */
function sliceParts(parts: readonly Buffer[], start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const p of parts) {
    const a = Math.max(start, at);
    const b = Math.min(end, at + p.length);
    if (a < b) out.push(p.subarray(a - at, b - at));
    at += p.length;
    if (at >= end) break;
  }
  return out;
}

function frameError(message: string, details: Record<string, unknown> = {}): UnderstudyError {
  return new UnderstudyError(ErrorCode.SyncFrame, message, { details });
}

/**
 * Encodes one frame as the parts to write in order (header, payload, `more`, trailer) under `key` (a
 * plain key is HMAC-SHA256, payload in clear and not copied; a session's GCM encrypts it piece by
 * piece). `seq` is the per-connection, per-direction frame counter the peer checks for replay.
 */
export function encodeFrameParts(
  key: Buffer | FrameAuth,
  type: FrameTypeValue,
  seq: number,
  payload: Uint8Array,
  more?: Uint8Array,
): Uint8Array[] {
  const len = payload.length + (more?.length ?? 0);
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = MAGIC0;
  header[1] = MAGIC1;
  header[2] = PROTOCOL_VERSION;
  header[3] = type;
  header.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 4);
  header.writeUInt32BE(seq >>> 0, 8);
  header.writeUInt32BE(len, 12);
  return [header, ...asAuth(key).seal(seq, header, more && more.length > 0 ? [payload, more] : [payload])];
}

/** {@link encodeFrameParts} as one buffer. */
export function encodeFrame(
  key: Buffer | FrameAuth,
  type: FrameTypeValue,
  seq: number,
  payload: Uint8Array,
  more?: Uint8Array,
): Buffer {
  return Buffer.concat(encodeFrameParts(key, type, seq, payload, more));
}

/** Options of {@link FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Key the next frames are authenticated with (changeable with `setKey`; a plain key is HMAC-SHA256). */
  readonly key: Buffer | FrameAuth;
  /**
   * Largest payload accepted (changeable with `setMaxPayloadBytes`, e.g. once the peer is
   * authenticated); larger frames are rejected from their header, before they are buffered.
   */
  readonly maxPayloadBytes: number;
}

/**
 * Incremental decoder: feed it arbitrary chunks of a byte stream; it calls `onFrame` for each complete,
 * authenticated (and, in a session, decrypted) frame in order. Throws `UNDERSTUDY_ERR_SYNC_FRAME` on a
 * bad magic, version, type, oversized length, wrong MAC, or an out-of-order sequence number (replay);
 * the stream is then unusable. It never holds more than one frame of the current limit plus the
 * chunk being pushed.
 */
export class FrameDecoder {
  #auth: FrameAuth;
  #max: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #expectedSeq = 0;
  #failed = false;

  constructor(
    options: FrameDecoderOptions,
    private readonly onFrame: (frame: Frame) => void,
  ) {
    this.#auth = asAuth(options.key);
    this.#max = options.maxPayloadBytes;
  }

  /** Switches the key for all following frames (after the handshake). */
  setKey(key: Buffer | FrameAuth): void {
    this.#auth = asAuth(key);
  }

  /** Sets the largest payload accepted from the next frame on. */
  setMaxPayloadBytes(max: number): void {
    this.#max = max;
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

  /** The next `n` bytes as the queued chunks themselves (views, no copy). */
  #takeParts(n: number): Buffer[] {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.#chunks[0] as Buffer;
      if (c.length <= need) {
        out.push(c);
        this.#chunks.shift();
        need -= c.length;
      } else {
        out.push(c.subarray(0, need));
        this.#chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    this.#buffered -= n;
    return out;
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
        throw frameError(
          `the peer speaks sync protocol version ${h[2]}, this build speaks version ${PROTOCOL_VERSION}: upgrade both sides`,
          { version: h[2], expected: PROTOCOL_VERSION },
        );
      const type = h[3] as number;
      if (!KNOWN_TYPES.has(type)) throw frameError(`unknown frame type ${type}`, { type });
      const len = h.readUInt32BE(12);
      if (len > this.#max)
        throw frameError(`frame of ${len} bytes exceeds the ${this.#max}-byte limit`, { length: len });
      const total = FRAME_HEADER_BYTES + len + this.#auth.macBytes;
      if (this.#buffered < total) return;
      const seq = h.readUInt32BE(4) * 0x1_0000_0000 + h.readUInt32BE(8);
      if (len > PARTS_FROM && (this.#chunks[0] as Buffer).length < total) {
        this.#deliverParts(type, seq, len, total);
        continue;
      }
      const raw = this.#take(total);
      const header = raw.subarray(0, FRAME_HEADER_BYTES);
      const body = [raw.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len)];
      const [payload] = this.#open(seq, header, body, raw.subarray(FRAME_HEADER_BYTES + len));
      this.onFrame({ type: type as FrameTypeValue, seq, payload: payload as Buffer });
    }
  }

  /**
   * Checks a frame's authentication (over header and payload) and its place in the sequence; returns
   * the payload, decrypted in a session, in pieces of the lengths of `body`.
   */
  #open(seq: number, header: Buffer, body: readonly Buffer[], mac: Uint8Array): Buffer[] {
    const payload = this.#auth.open(seq, header, body, mac);
    if (payload === null) throw frameError('frame authentication failed');
    if (seq !== this.#expectedSeq)
      throw frameError(`frame sequence ${seq} out of order (expected ${this.#expectedSeq})`, { seq });
    this.#expectedSeq++;
    return payload;
  }

  /** Verifies and delivers a large frame spanning several reads piece by piece, without joining its payload. */
  #deliverParts(type: number, seq: number, len: number, total: number): void {
    const all = this.#takeParts(total);
    const header = Buffer.concat(sliceParts(all, 0, FRAME_HEADER_BYTES));
    const body = sliceParts(all, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len);
    const mac = Buffer.concat(sliceParts(all, FRAME_HEADER_BYTES + len, total));
    const parts = this.#open(seq, header, body, mac);
    if ((parts[0] as Buffer).length < PARTS_HEAD_BYTES) {
      // The first part holds the payload's head (its own header), so a reader can parse it there.
      let k = 0;
      for (let got = 0; got < PARTS_HEAD_BYTES && k < parts.length; k++) got += (parts[k] as Buffer).length;
      parts.splice(0, k, Buffer.concat(parts.slice(0, k)));
    }
    let joined: Buffer | undefined;
    this.onFrame({
      type: type as FrameTypeValue,
      seq,
      parts,
      get payload(): Buffer {
        return (joined ??= Buffer.concat(parts));
      },
    });
  }
}

/**
 * Derives a connection's session authentications from the per-service key and both handshake
 * nonces: one key per direction, so a sequence number is never a nonce twice under one key.
 */
export function deriveSessionKeys(
  serviceKey: Buffer,
  targetNonce: Uint8Array,
  sourceNonce: Uint8Array,
): { sourceToTarget: FrameAuth; targetToSource: FrameAuth } {
  const key = (direction: string): FrameAuth =>
    FrameAuth.gcm(
      createHmac('sha256', serviceKey)
        .update(`understudy-sync-v3 ${direction}`)
        .update(targetNonce)
        .update(sourceNonce)
        .digest(),
    );
  return { sourceToTarget: key('source-to-target'), targetToSource: key('target-to-source') };
}
