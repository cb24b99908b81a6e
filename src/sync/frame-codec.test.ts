import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import type { FrameAuth } from './frame-codec.js';
import {
  deriveSessionKeys,
  encodeFrame,
  FrameDecoder,
  FrameType,
  FRAME_HEADER_BYTES,
  FRAME_MAC_BYTES,
  PROTOCOL_VERSION,
  type Frame,
} from './frame-codec.js';
import { isUnderstudyError, ErrorCode } from '../errors/index.js';

const key = randomBytes(32);

function decodeAll(bytes: Buffer, chunk = 7, max = 1 << 20, with_: Buffer | FrameAuth = key): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder({ key: with_, maxPayloadBytes: max }, (f) => out.push(f));
  for (let i = 0; i < bytes.length; i += chunk) d.push(bytes.subarray(i, i + chunk));
  return out;
}

describe('frame codec', () => {
  it('round-trips frames split at arbitrary chunk boundaries', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 3000 }), { maxLength: 8 }),
        fc.integer({ min: 1, max: 5000 }),
        (payloads, chunk) => {
          const wire = Buffer.concat(payloads.map((p, i) => encodeFrame(key, FrameType.Data, i, p)));
          const frames = decodeAll(wire, chunk);
          expect(frames.map((f) => Buffer.from(f.payload).toString('hex'))).toEqual(
            payloads.map((p) => Buffer.from(p).toString('hex')),
          );
        },
      ),
      { numRuns: 50 },
    );
  });

  it('rejects random bytes with a frame error and never crashes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 4000 }), (bytes) => {
        try {
          decodeAll(Buffer.from(bytes), 13);
        } catch (err) {
          expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rejects any single-byte mutation of a valid frame', () => {
    const frame = encodeFrame(key, FrameType.Batch, 0, randomBytes(200));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: frame.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (pos, xor) => {
          const bad = Buffer.from(frame);
          bad[pos] = (bad[pos] as number) ^ xor;
          let frames: Frame[] = [];
          let error: unknown;
          try {
            frames = decodeAll(bad);
          } catch (err) {
            error = err;
          }
          // A mutated length may leave the frame incomplete (nothing decoded); otherwise it is rejected.
          expect(frames).toHaveLength(0);
          if (error) expect(isUnderstudyError(error, ErrorCode.SyncFrame)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('rejects an oversized frame from its header alone', () => {
    const header = encodeFrame(key, FrameType.Data, 0, Buffer.alloc(2000)).subarray(0, FRAME_HEADER_BYTES);
    expect(() => decodeAll(header, 100, 1000)).toThrow(
      expect.objectContaining({ code: ErrorCode.SyncFrame }),
    );
  });

  it('rejects a replayed frame by its sequence number', () => {
    const f = encodeFrame(key, FrameType.Ack, 0, Buffer.from([1]));
    expect(() => decodeAll(Buffer.concat([f, f]))).toThrow(
      expect.objectContaining({ code: ErrorCode.SyncFrame }),
    );
  });

  it('rejects a frame authenticated with another key', () => {
    const f = encodeFrame(randomBytes(32), FrameType.Ack, 0, Buffer.from([1]));
    expect(() => decodeAll(f)).toThrow(expect.objectContaining({ code: ErrorCode.SyncFrame }));
  });

  it('refuses a frame of another protocol version, naming both versions', () => {
    const old = encodeFrame(key, FrameType.HelloTarget, 0, Buffer.from('hello'));
    old[2] = 2;
    let error: unknown;
    try {
      decodeAll(old);
    } catch (err) {
      error = err;
    }
    expect(isUnderstudyError(error, ErrorCode.SyncFrame)).toBe(true);
    expect(error).toMatchObject({ details: { version: 2, expected: PROTOCOL_VERSION } });
    expect((error as Error).message).toMatch(/version 2.*version 3/);
  });

  describe('fuzzing the decoder', () => {
    const session = deriveSessionKeys(key, randomBytes(16), randomBytes(16)).sourceToTarget;
    const max = 4096;
    const limit = FRAME_HEADER_BYTES + max + FRAME_MAC_BYTES;
    const valid = (n: number): Buffer[] =>
      Array.from({ length: n }, (_, i) =>
        encodeFrame(session, FrameType.Data, i, randomBytes((i * 997) % max)),
      );

    /** Feeds `bytes` in `chunk`-byte pieces; only frame errors, and never more than one frame's limit held. */
    function feed(bytes: Buffer, chunk: number): void {
      const d = new FrameDecoder({ key: session, maxPayloadBytes: max }, (f) => {
        expect(f.payload.length).toBeLessThanOrEqual(max);
      });
      try {
        for (let i = 0; i < bytes.length; i += chunk) {
          d.push(bytes.subarray(i, i + chunk));
          expect(d.buffered).toBeLessThan(limit);
        }
      } catch (err) {
        expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
      }
    }

    it('random bytes and mutated session frames only ever raise a frame error, within the limits', () => {
      const wire = Buffer.concat(valid(4));
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ minLength: 1, maxLength: 3 * limit }).map((b) => Buffer.from(b)),
            fc
              .array(fc.tuple(fc.nat(wire.length - 1), fc.integer({ min: 1, max: 255 })), {
                minLength: 1,
                maxLength: 4,
              })
              .map((muts) => {
                const bad = Buffer.from(wire);
                for (const [pos, xor] of muts) bad[pos] = (bad[pos] as number) ^ xor;
                return bad;
              }),
            fc
              .tuple(fc.nat(wire.length), fc.uint8Array({ maxLength: 64 }))
              .map(([cut, junk]) => Buffer.concat([wire.subarray(0, cut), junk])),
          ),
          fc.integer({ min: 1, max: 2 * limit }),
          feed,
        ),
        { numRuns: 300 },
      );
    });
  });

  describe('session frames (AES-256-GCM, one key per direction)', () => {
    const keys = deriveSessionKeys(key, randomBytes(16), randomBytes(16));
    const toTarget = keys.sourceToTarget;

    it('round-trips frames and rejects any single-byte mutation', () => {
      const payloads = [randomBytes(0), randomBytes(1), randomBytes(5000)];
      const wire = Buffer.concat(payloads.map((p, i) => encodeFrame(toTarget, FrameType.Data, i, p)));
      const got = decodeAll(wire, 333, 1 << 20, toTarget).map((f) => Buffer.from(f.payload).toString('hex'));
      expect(got).toEqual(payloads.map((p) => p.toString('hex')));
      const frame = encodeFrame(toTarget, FrameType.Batch, 0, randomBytes(200));
      for (let pos = 0; pos < frame.length; pos += 7) {
        const bad = Buffer.from(frame);
        bad[pos] = (bad[pos] as number) ^ 0x40;
        let frames: Frame[] = [];
        try {
          frames = decodeAll(bad, 7, 1 << 20, toTarget);
        } catch (err) {
          expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
        }
        expect(frames).toHaveLength(0);
      }
    });

    it('rejects a frame reflected back in the other direction, or from another connection', () => {
      const f = encodeFrame(toTarget, FrameType.Ack, 0, Buffer.from([1]));
      expect(() => decodeAll(f, 7, 1 << 20, keys.targetToSource)).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
      const other = deriveSessionKeys(key, randomBytes(16), randomBytes(16)).sourceToTarget;
      expect(() => decodeAll(f, 7, 1 << 20, other)).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
      // Nor does the handshake's HMAC under the service key (its longer trailer: never complete).
      let frames: Frame[] = [];
      try {
        frames = decodeAll(Buffer.concat([f, Buffer.alloc(16)]));
      } catch (err) {
        expect(isUnderstudyError(err, ErrorCode.SyncFrame)).toBe(true);
      }
      expect(frames).toHaveLength(0);
    });

    it('delivers a large frame read in pieces as those pieces, authenticated, head first', () => {
      const payload = randomBytes(300_000);
      const frame = encodeFrame(toTarget, FrameType.Data, 0, payload);
      for (const chunk of [7, 1000, 65_536]) {
        const got = decodeAll(frame, chunk, 1 << 20, toTarget);
        expect(got).toHaveLength(1);
        const f = got[0] as Frame;
        expect(f.parts && f.parts.length > 1).toBe(true);
        expect((f.parts?.[0] as Buffer).length).toBeGreaterThanOrEqual(32);
        expect(Buffer.concat(f.parts ?? []).equals(payload)).toBe(true);
        expect(f.payload.equals(payload)).toBe(true);
      }
      const bad = Buffer.from(frame);
      bad[200_000] = (bad[200_000] as number) ^ 1;
      expect(() => decodeAll(bad, 65_536, 1 << 20, toTarget)).toThrow(
        expect.objectContaining({ code: ErrorCode.SyncFrame }),
      );
    });

    it('encrypts the payload: its bytes do not appear in the frame, whole or split', () => {
      const secret = Buffer.from(`file content ${randomBytes(8).toString('hex')}`.repeat(3000));
      const frame = encodeFrame(toTarget, FrameType.Data, 0, secret.subarray(0, 40), secret.subarray(40));
      expect(frame.length).toBe(FRAME_HEADER_BYTES + secret.length + 16);
      expect(frame.includes(secret.subarray(0, 24))).toBe(false);
      expect(frame.includes(secret.subarray(50_000, 50_024))).toBe(false);
      for (const chunk of [frame.length, 4096]) {
        const got = decodeAll(frame, chunk, 1 << 20, toTarget);
        expect(got.map((f) => f.payload.equals(secret))).toEqual([true]);
      }
    });

    it('uses the sequence number as nonce: the same payload gets a different trailer per frame', () => {
      const a = encodeFrame(toTarget, FrameType.Ack, 0, Buffer.from([1]));
      const b = encodeFrame(toTarget, FrameType.Ack, 1, Buffer.from([1]));
      expect(a.subarray(-16).equals(b.subarray(-16))).toBe(false);
      // ... and a different ciphertext: no keystream is used twice under one key.
      const body = (f: Buffer): Buffer => f.subarray(FRAME_HEADER_BYTES, -16);
      expect(body(a).equals(body(b))).toBe(false);
      expect(toTarget.macBytes).toBe(16);
    });
  });
});
