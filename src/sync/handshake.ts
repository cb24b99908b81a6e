// The sync handshake (protocol 3), both sides. Nothing about a peer is decided or changed before it
// has proved that it holds the per-service key for THIS connection:
//
//   echo    → primary  HelloTarget {id, nonceT, lineage, lastApplied}   HMAC-SHA256, service key
//   primary → echo     HelloSource {nonceT, nonceS}                      HMAC-SHA256, service key
//   echo    → primary  Confirm {SHA-256 of both hello payloads}          AES-256-GCM, session key
//   primary → echo     Welcome {lineage, resume}                         AES-256-GCM, session key
//
// The session keys are derived from the service key and both nonces. A replayed HelloTarget meets a
// fresh nonceS, so only a holder of the key can answer it with a Confirm; likewise only the primary
// can answer the echo's fresh nonceT with a Welcome. The primary acts on the hello (resets or
// resumes the echo's stream) only after the Confirm; the echo acts only on the Welcome.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { UnderstudyError, ErrorCode } from '../errors/index.js';
import { deriveSessionKeys, FrameType, type Frame } from './frame-codec.js';
import type { FramedConnection } from './framed-connection.js';
import {
  decodeConfirm,
  decodeHelloSource,
  decodeHelloTarget,
  decodeWelcome,
  encodeConfirm,
  encodeHelloSource,
  encodeHelloTarget,
  encodeWelcome,
  type HelloTarget,
  type Welcome,
} from './messages.js';

const NONCE_BYTES = 16;

function handshakeError(message: string): UnderstudyError {
  return new UnderstudyError(ErrorCode.SyncFrame, `sync handshake: ${message}`);
}

/** What both sides confirm: a SHA-256 over both hello payloads, each length-prefixed. */
export function transcriptHash(helloTarget: Uint8Array, helloSource: Uint8Array): Buffer {
  const h = createHash('sha256').update('understudy-sync-v3 transcript');
  for (const p of [helloTarget, helloSource]) {
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(p.length);
    h.update(len).update(p);
  }
  return h.digest();
}

/**
 * The primary's side of the handshake on one connection. Feed it every frame until it returns the
 * echo's hello: that hello is then confirmed (the echo holds the key and the hello is its own, for
 * this connection) and the connection is marked authenticated. Throws `UNDERSTUDY_ERR_SYNC_FRAME`.
 */
export class SourceHandshake {
  #hello: HelloTarget | undefined;
  #transcript: Buffer | undefined;
  #done = false;

  constructor(
    private readonly key: Buffer,
    private readonly conn: FramedConnection,
  ) {}

  /** Handles one handshake frame; the confirmed hello once the echo has proved the key, else undefined. */
  onFrame(f: Frame): HelloTarget | undefined {
    if (this.#done) throw handshakeError('already complete');
    if (this.#hello === undefined) {
      if (f.type !== FrameType.HelloTarget) throw handshakeError('expected hello');
      const hello = decodeHelloTarget(f.payload);
      const nonce = randomBytes(NONCE_BYTES);
      const answer = encodeHelloSource({ targetNonce: hello.nonce, nonce });
      this.conn.sendNow(FrameType.HelloSource, answer);
      const keys = deriveSessionKeys(this.key, hello.nonce, nonce);
      this.conn.setSessionKeys(keys.sourceToTarget, keys.targetToSource);
      this.#hello = hello;
      this.#transcript = transcriptHash(f.payload, answer);
      return undefined;
    }
    // This frame was authenticated under the session key: only a holder of the service key who saw
    // this connection's fresh nonce could have sealed it. The transcript binds it to the hello.
    if (f.type !== FrameType.Confirm) throw handshakeError('expected key confirmation');
    const { transcript } = decodeConfirm(f.payload);
    const mine = this.#transcript as Buffer;
    if (transcript.length !== mine.length || !timingSafeEqual(Buffer.from(transcript), mine))
      throw handshakeError('key confirmation does not match this handshake');
    this.#done = true;
    this.conn.authenticated();
    return this.#hello;
  }

  /** Sends the primary's decision (call once, after `onFrame` returned the hello). */
  welcome(w: Welcome): void {
    if (!this.#done) throw handshakeError('welcome before key confirmation');
    this.conn.sendNow(FrameType.Welcome, encodeWelcome(w));
  }
}

/**
 * The echo's side of the handshake on one connection: `start` sends the hello; feed it every frame
 * until it returns the primary's decision, which is then authenticated (the primary answered this
 * connection's fresh nonce under the key) and the connection is marked authenticated.
 */
export class TargetHandshake {
  readonly #nonce = randomBytes(NONCE_BYTES);
  #hello: Buffer | undefined;
  #confirmed = false;
  #done = false;

  constructor(
    private readonly key: Buffer,
    private readonly conn: FramedConnection,
  ) {}

  /** Sends the echo's hello (its nonce is fresh for this connection). */
  async start(hello: Omit<HelloTarget, 'nonce'>): Promise<void> {
    this.#hello = encodeHelloTarget({ ...hello, nonce: this.#nonce });
    await this.conn.send(FrameType.HelloTarget, this.#hello);
  }

  /** Handles one handshake frame; the primary's decision once it has proved the key, else undefined. */
  onFrame(f: Frame): Welcome | undefined {
    if (this.#done || this.#hello === undefined) throw handshakeError('unexpected frame');
    if (!this.#confirmed) {
      if (f.type !== FrameType.HelloSource) throw handshakeError('expected hello');
      const m = decodeHelloSource(f.payload);
      if (m.targetNonce.length !== NONCE_BYTES || !timingSafeEqual(Buffer.from(m.targetNonce), this.#nonce))
        throw handshakeError('hello does not answer our nonce');
      const keys = deriveSessionKeys(this.key, this.#nonce, m.nonce);
      this.conn.setSessionKeys(keys.targetToSource, keys.sourceToTarget);
      this.conn.sendNow(
        FrameType.Confirm,
        encodeConfirm({ transcript: transcriptHash(this.#hello, f.payload) }),
      );
      this.#confirmed = true;
      return undefined;
    }
    // Authenticated under the session key derived from our fresh nonce: the primary holds the key.
    if (f.type !== FrameType.Welcome) throw handshakeError('expected welcome');
    const w = decodeWelcome(f.payload);
    this.#done = true;
    this.conn.authenticated();
    return w;
  }
}
